import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runSaga, tempDir } from '../support/cli.js';

// Every kind of bad input: a usage error (exit 2), or 1 for a file that is not a database; one
// line on stderr saying what is wrong, no stack trace, and not one file created or changed.

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Setup = 'fresh' | 'seeded' | 'text-file';

async function prepare(setup: Setup): Promise<string> {
  const dir = tempDir('saga-bad-input-');
  dirs.push(dir);
  if (setup === 'seeded') {
    const seed = await runSaga(['seed'], { cwd: dir });
    expect(seed.code).toBe(0);
    // A completed checkout, so there is a saga.log and saga rows to leave alone too.
    expect((await runSaga(['checkout', '--product', '101', '--qty', '1'], { cwd: dir })).code).toBe(0);
  }
  if (setup === 'text-file') writeFileSync(join(dir, 'notes.txt'), 'shopping list\n- milk\n- eggs\n');
  return dir;
}

/** Names, sizes, modification times and contents of everything under `dir`. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, prefix: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      const st = statSync(path);
      if (st.isDirectory()) {
        out[`${prefix}${name}/`] = 'dir';
        walk(path, `${prefix}${name}/`);
      } else {
        out[`${prefix}${name}`] = `${st.size} ${st.mtimeMs} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
      }
    }
  };
  walk(dir, '');
  return out;
}

interface Case {
  readonly name: string;
  readonly args: string;
  readonly env?: Record<string, string>;
  /** 2 for a usage error, 1 for a file that is not a database. */
  readonly code: number;
  /** The stable code `--json` reports (docs/errors.md). */
  readonly error: string;
  /** What the one line on stderr must say. */
  readonly says: RegExp;
}

const CHECKOUT = 'checkout --product 101 --qty 1';

// Bad values of the command's own options: refused alike on a fresh and on a seeded directory.
const INPUT_CASES: readonly Omit<Case, 'code'>[] = [
  { name: 'qty 0', args: 'checkout --product 101 --qty 0', error: 'invalid_value', says: /^saga: --qty 0 is invalid: must be a whole number of units from 1 to 10000 \(see `saga checkout --help`\)$/ },
  { name: 'qty -1', args: 'checkout --product 101 --qty -1', error: 'invalid_value', says: /--qty -1 is invalid: must be a whole number/ },
  { name: 'qty 1.5', args: 'checkout --product 101 --qty 1.5', error: 'invalid_value', says: /--qty 1.5 is invalid: must be a whole number/ },
  { name: 'qty abc', args: 'checkout --product 101 --qty abc', error: 'invalid_value', says: /--qty abc is invalid: must be a whole number/ },
  { name: 'qty absurdly large', args: 'checkout --product 101 --qty 99999999999999999999', error: 'invalid_value', says: /--qty 99999999999999999999 is invalid: must be a whole number/ },
  { name: 'product abc', args: 'checkout --product abc --qty 1', error: 'invalid_value', says: /--product abc is invalid: must be a positive whole-number id/ },
  { name: 'product 1.5', args: 'checkout --product 1.5 --qty 1', error: 'invalid_value', says: /--product 1.5 is invalid: must be a positive whole-number id/ },
  { name: 'product -3', args: 'checkout --product -3 --qty 1', error: 'invalid_value', says: /--product -3 is invalid: must be a positive whole-number id/ },
  { name: 'unknown product 999', args: 'checkout --product 999 --qty 1', error: 'unknown_product', says: /unknown product 999/ },
  { name: 'unknown customer', args: `${CHECKOUT} --customer 999`, error: 'unknown_customer', says: /unknown customer 999/ },
  { name: '--fail-at bogus', args: `${CHECKOUT} --fail-at bogus`, error: 'invalid_value', says: /--fail-at bogus is invalid: must be one of inventory, payment, order, shipping/ },
  { name: 'missing --product', args: 'checkout --qty 1', error: 'invalid_usage', says: /required option '--product <id>' not specified/ },
  { name: 'missing --qty', args: 'checkout --product 101', error: 'invalid_usage', says: /required option '--qty <n>' not specified/ },
  { name: 'SAGA_FAIL_AT=bogus', args: CHECKOUT, env: { SAGA_FAIL_AT: 'bogus' }, error: 'invalid_value', says: /SAGA_FAIL_AT=bogus is invalid/ },
  { name: '--db in a missing directory', args: `${CHECKOUT} --db missing/dir/saga.db`, error: 'bad_path', says: /the directory of --db missing\/dir\/saga\.db does not exist/ },
  { name: 'seed --db in a missing directory', args: 'seed --db missing/saga.db', error: 'bad_path', says: /the directory of --db missing\/saga\.db does not exist/ },
  { name: '--db is a directory', args: `${CHECKOUT} --db .`, error: 'bad_path', says: /--db \. is a directory/ },
  { name: 'unknown option', args: `${CHECKOUT} --quantity 2`, error: 'invalid_usage', says: /^saga: unknown option '--quantity' \(see `saga checkout --help`\)$/ },
  { name: 'SAGA_DELAY_AT=key:unused=soon', args: CHECKOUT, env: { SAGA_DELAY_AT: 'key:unused=soon' }, error: 'invalid_value', says: /SAGA_DELAY_AT=key:unused=soon is invalid: give <point>=<milliseconds>/ },
  { name: 'a typo of a required option', args: 'checkout --prodcut 101 --qty 1', error: 'invalid_usage', says: /^saga: unknown option '--prodcut' \(did you mean --product\?\) \(see `saga checkout --help`\)$/ },
  { name: 'conflicting fault options', args: `${CHECKOUT} --fail-mode transient`, error: 'conflicting_options', says: /^saga: --fail-mode transient needs a step to fail: add --fail-at <step> \(or SAGA_FAIL_AT\)$/ },
  { name: 'LOG_LEVEL=loud', args: CHECKOUT, env: { LOG_LEVEL: 'loud' }, error: 'invalid_value', says: /LOG_LEVEL=loud is invalid/ },
];

const CASES: readonly (Case & { setup: Setup })[] = [
  ...INPUT_CASES.map((c) => ({ ...c, code: 2, setup: 'fresh' as const })),
  ...INPUT_CASES.map((c) => ({ ...c, code: 2, name: `${c.name} (existing database)`, setup: 'seeded' as const })),
  { name: 'checkout --db on a text file', setup: 'text-file', args: `${CHECKOUT} --db notes.txt`, code: 1, error: 'database_unusable', says: /notes\.txt is not a saga database/ },
  { name: 'seed --db on a text file', setup: 'text-file', args: 'seed --db notes.txt', code: 1, error: 'database_unusable', says: /notes\.txt is not a saga database/ },
  { name: 'SAGA_DB on a text file', setup: 'text-file', args: CHECKOUT, env: { SAGA_DB: 'notes.txt' }, code: 1, error: 'database_unusable', says: /notes\.txt is not a saga database/ },
];

describe('bad input', () => {
  it.each(CASES)('$name: exit $code, one line, nothing touched', async (c) => {
    const dir = await prepare(c.setup);
    const before = snapshot(dir);

    const r = await runSaga(c.args.split(' '), { cwd: dir, ...(c.env === undefined ? {} : { env: c.env }) });

    expect(r.code).toBe(c.code);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(c.says);
    expect(r.stderr).not.toContain('    at ');
    expect(r.stdout).toBe('');
    expect(snapshot(dir)).toEqual(before);
  });

  // A script that asked for --json gets exactly one JSON object on stdout, errors included, and
  // the same line on stderr for the human reading the CI log.
  it.each(CASES)('$name --json: one JSON object on stdout with code $error', async (c) => {
    const dir = await prepare(c.setup);
    const before = snapshot(dir);

    const r = await runSaga([...c.args.split(' '), '--json'], { cwd: dir, ...(c.env === undefined ? {} : { env: c.env }) });

    expect(r.code).toBe(c.code);
    const stdoutLines = r.stdout.split('\n').filter((l) => l !== '');
    expect(stdoutLines).toHaveLength(1);
    const body = JSON.parse(stdoutLines[0]!) as { error: { code: string; message: string }; exitCode: number };
    expect(body).toEqual({ error: { code: c.error, message: expect.any(String) }, exitCode: c.code });
    expect(`saga: ${body.error.message}`).toMatch(c.says);
    expect(r.stderr.trimEnd()).toBe(`saga: ${body.error.message}`);
    expect(snapshot(dir)).toEqual(before);
  });
});
