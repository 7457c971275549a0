import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { runSaga, tempDir } from '../support/cli.js';

// docs/errors.md is where scripts look up what `error.code` can be: it lists every code the CLI
// can print, with the exit code that comes with it, and nothing else.

const ROOT = join(import.meta.dirname, '..', '..');

function documentedCodes(): Record<string, string> {
  const text = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  const table = text.slice(text.indexOf('## Error codes'));
  const rows: Record<string, string> = {};
  for (const match of table.matchAll(/^\| `([a-z_]+)` \| ([0-9, ]+) \|/gm)) rows[match[1]!] = match[2]!;
  return rows;
}

describe('docs/errors.md', () => {
  it('lists every error code with its exit code, and no code that does not exist', () => {
    const documented = documentedCodes();
    const actual = Object.fromEntries(Object.entries(ERROR_CODES).map(([code, exit]) => [code, code === 'interrupted' ? '129, 130, 143' : String(exit)]));
    expect(documented).toEqual(actual);
  });
});

describe('the --json error example in docs/errors.md', () => {
  it('is what `saga checkout --product 999 --qty 1 --json` prints', async () => {
    const text = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
    const example = /```json\n(.*)\n```/.exec(text)![1]!;
    const r = await runSaga(['checkout', '--product', '999', '--qty', '1', '--json'], { cwd: tempDir('saga-errors-doc-') });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe(`${example}\n`);
  });
});
