import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openKeptDatabase } from '../../src/store/sqlite/kept-database.js';
import { describe, expect, it } from 'vitest';
import { openDb, runSaga, startSaga } from '../support/cli.js';
import { shell } from '../docs/shop.js';
import { until, workplace, type ExploreJson } from './helpers.js';

// `saga explore` as a user runs it: the real CLI, real SQLite copies, its exit code, its output,
// and proof that it finds a planted bug and that its replay commands reproduce it.

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A seeded database with a bug planted in its data layer: releasing a reservation loses one unit. */
async function buggyDatabase(cwd: string): Promise<string> {
  expect((await runSaga(['seed', '--db', 'buggy.db'], { cwd })).code).toBe(0);
  const db = openKeptDatabase(join(cwd, 'buggy.db'));
  db.exec(`CREATE TRIGGER lose_a_unit AFTER UPDATE OF status ON reservations WHEN NEW.status = 'released'
           BEGIN UPDATE inventory SET stock = stock - 1 WHERE product_id = NEW.product_id; END`);
  db.close();
  return join(cwd, 'buggy.db');
}

describe('saga explore', { concurrent: true }, () => {
  it('depth 1: every fault of every step ends consistent; the matrix, the summary, exit 0, nothing left behind', async () => {
    const w = workplace();
    const r = await runSaga(['explore'], { cwd: w.cwd, env: w.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    for (const row of ['inventory action', 'payment action', 'order action', 'shipping action', 'payment compensation', 'commit 1:', 'rollback commit 1:']) {
      expect(r.stdout).toContain(row);
    }
    expect(r.stdout).toMatch(/^✔ \d+ scenarios, 0 violations, \d+\.\d s \(\d+ scenarios\/s\)$/m);
    // The explored database is a throwaway copy: no file in the working directory, none in TMPDIR.
    expect(readdirSync(w.cwd)).toEqual(['.bin']);
    expect(readdirSync(w.tmp)).toEqual([]);
  });

  it('--json: every step × every mode, each ending as the fault says it must', async () => {
    const w = workplace();
    const r = await runSaga(['explore', '--json'], { cwd: w.cwd, env: w.env });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as ExploreJson;
    expect(out.violations).toBe(0);
    expect(out.results).toHaveLength(out.scenarios);
    const cell = (id: string) => out.results.find((x) => x.id === id)?.cell;
    for (const step of ['inventory', 'payment', 'order', 'shipping']) {
      expect(cell(`${step}.action.error`)).toBe('compensated');
      expect(cell(`${step}.action.transient-below`)).toBe('completed');
      expect(cell(`${step}.action.transient-at`)).toBe('compensated');
      expect(cell(`${step}.action.timeout-below`)).toBe('completed');
      expect(cell(`${step}.action.timeout-at`)).toBe('compensated');
      expect(cell(`${step}.action.crash-before`)).toBe('recovered');
      expect(cell(`${step}.action.crash-after-effect`)).toBe('recovered');
      expect(cell(`${step}.compensation.transient-below`)).toBe('compensated');
      expect(cell(`${step}.compensation.transient-at`)).toBe('stuck-then-recovered');
      expect(cell(`${step}.compensation.crash-before`)).toBe('recovered');
    }
    // Every commit boundary of a completed and of a rolled-back run, before and after.
    expect(out.results.filter((x) => /^commit-\d+\.(before|after)$/.test(x.id)).length).toBeGreaterThanOrEqual(4);
    expect(out.results.filter((x) => /^rolled-back\.commit-\d+\.(before|after)$/.test(x.id)).length).toBeGreaterThanOrEqual(6);
    // A crash after the effect of the payment is finished by recovery, and not charged twice.
    expect(out.results.find((x) => x.id === 'payment.action.crash-after-effect')).toMatchObject({ run: { crashedAt: 'action:payment:after-effect' }, finalStatus: 'completed' });
  });

  it('finds a planted bug: names the broken invariant, exits 5, and its replays reproduce it; the database given is never written', async () => {
    const w = workplace();
    const db = await buggyDatabase(w.cwd);
    const before = sha(db);
    const r = await runSaga(['explore', '--json', '--db', db], { cwd: w.cwd, env: w.env });
    expect(r.code, r.stderr).toBe(5);
    const out = JSON.parse(r.stdout) as ExploreJson;
    const broken = out.results.find((x) => x.id === 'payment.action.error')!;
    expect(broken.cell).toBe('violation');
    expect(broken.violations.map((v) => v.invariant)).toContain('stock-conserved');
    // Only the scenarios that release stock find it: a completed checkout never releases.
    expect(out.results.find((x) => x.id === 'payment.action.transient-below')!.cell).toBe('completed');
    expect(sha(db)).toBe(before);

    const [viaExplore, viaCheckout] = broken.replay as [string, string];
    expect(viaExplore).toBe(`saga explore --case payment.action.error --db ${db}`);
    const again = await shell(viaExplore, { cwd: w.cwd, env: w.shellEnv });
    expect(again.code, again.stderr).toBe(5);
    expect(again.stdout).toContain('stock-conserved');
    // The plain commands, on a copy: the checkout rolls back, and verify sees the lost unit.
    const plain = await shell(viaCheckout, { cwd: w.cwd, env: w.shellEnv });
    expect(plain.code, plain.stderr).toBe(5);
    expect(plain.stdout).toMatch(/stock-conserved: product 101: seeded \d+ <> available \d+/);
    expect(sha(db)).toBe(before);
  });

  it('a crash simulated in process ends exactly as the same crash by a real SIGKILL', async () => {
    const w = workplace();
    for (const id of ['payment.action.crash-after-effect', 'commit-2.before', 'rolled-back.commit-3.after', 'payment.compensation.crash-after-effect']) {
      const sim = await runSaga(['explore', '--case', id, '--json'], { cwd: w.cwd, env: w.env });
      expect(sim.code, sim.stderr).toBe(0);
      const result = JSON.parse(sim.stdout) as ExploreJson['results'][number];
      const plain = result.replay[1]!;
      expect(plain).toMatch(/SAGA_CRASH_AT=/);
      const real = await shell(`rm -f replay.db*; ${plain}`, { cwd: w.cwd, env: w.shellEnv });
      expect(real.code, `${id}: ${real.stdout}${real.stderr}`).toBe(0);
      expect(real.stderr, id).toMatch(/Killed/);
      const rows = openDb(join(w.cwd, 'replay.db'));
      const sagas = rows.prepare('SELECT status FROM sagas').all() as { status: string }[];
      rows.close();
      expect(sagas.map((s) => s.status), id).toEqual(result.finalStatus === undefined ? [] : [result.finalStatus]);
    }
  });

  it('--jobs 2 covers the same scenarios with the same outcomes as one process', async () => {
    const w = workplace();
    const one = JSON.parse((await runSaga(['explore', '--json'], { cwd: w.cwd, env: w.env })).stdout) as ExploreJson;
    const two = JSON.parse((await runSaga(['explore', '--json', '--jobs', '2'], { cwd: w.cwd, env: w.env })).stdout) as ExploreJson;
    const cells = (o: ExploreJson) => o.results.map((x) => `${x.id} ${x.cell}`);
    expect(cells(two)).toEqual(cells(one));
    expect(readdirSync(w.tmp)).toEqual([]);
  });

  it('--markdown writes the matrix as a Markdown table with the summary', async () => {
    const w = workplace();
    const r = await runSaga(['explore', '--markdown'], { cwd: w.cwd, env: w.env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('| fault point | error | transient < budget |');
    expect(r.stdout).toMatch(/^\| payment action \| ↩ compensated \| ✓ completed \|/m);
    expect(r.stdout).toMatch(/^\*\*\d+ scenarios, 0 violations, /m);
  });

  it('Ctrl-C stops between scenarios and says what was covered (exit 130)', async () => {
    const w = workplace();
    const run = startSaga(['explore', '--depth', '2'], { cwd: w.cwd, env: w.env });
    // Its handler is installed before the first scenario's copy appears in its workspace.
    await until(() => readdirSync(w.tmp).some((d) => readdirSync(join(w.tmp, d)).some((f) => f.startsWith('scenario-'))));
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toContain('interrupted: finishing the scenarios in flight, then printing what was covered; Ctrl-C again to stop now');
    expect(r.stdout).toMatch(/^! interrupted: \d+ of \d+ scenarios run(, depth 2 not started)?, 0 violations/m);
    expect(r.stdout).toContain("- not run (interrupted)");
    expect(readdirSync(w.tmp)).toEqual([]);
  });

  it.each([
    { args: ['--depth', '3'], says: /--depth 3 is invalid/ },
    { args: ['--case', 'payment.action.explode'], says: /no scenario payment\.action\.explode in the fault space/ },
    { args: ['--json', '--markdown'], says: /--json and --markdown/ },
    { args: ['--db', 'missing.db'], says: /no saga database at missing\.db/ },
  ])('bad input $args: one line, exit 2', async ({ args, says }) => {
    const w = workplace();
    const r = await runSaga(['explore', ...args], { cwd: w.cwd, env: w.env });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(says);
    expect(readdirSync(w.tmp)).toEqual([]);
  });
});


