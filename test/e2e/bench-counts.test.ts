import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { readLog, runSaga, tempDir } from '../support/cli.js';
import { openReader } from '../support/reader.js';

/**
 * `saga bench` accounts for every checkout exactly once: its outcomes add up to --n, and each
 * counter is what the database holds. `--n 10 --fail-rate 1 --seed 8` gives, at concurrency 1
 * (deterministic), every kind of outcome: completed, compensated, a stuck saga (which the bench
 * once "recovered" at the end and counted twice), a crash before the first commit (no row) and a
 * crash after it (recovered). With concurrency the mix varies from run to run; the sums may not.
 */
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

interface BenchJson {
  n: number;
  outcomes: { completed: number; compensated: number; stuck: number; crashedBeforeFirstCommit: number };
  crashedAndRecovered: number;
  violations: number;
}

describe.each(BACKENDS)('saga bench counts ($name)', (backend) => {
  it.each([
    { label: '--n 10 --fail-rate 1 --seed 8', args: ['--n', '10', '--fail-rate', '1', '--seed', '8'], everyKind: true },
    { label: '--n 12 --concurrency 4 --fail-rate 1 --seed 3', args: ['--n', '12', '--concurrency', '4', '--fail-rate', '1', '--seed', '3'], everyKind: false },
  ])('bench $label: outcomes add up to n and each matches the database', async ({ args, everyKind }) => {
    const dir = tempDir();
    dirs.push(dir);
    const db = await backend.freshDb(dir);
    const run = await runSaga(['bench', '--json', ...args], { cwd: dir, env: { SAGA_DB: db } });
    expect(run.code, run.stderr).toBe(0);
    const r = JSON.parse(run.stdout) as BenchJson;
    const n = Number(args[1]);

    expect(r.n).toBe(n);
    expect(r.outcomes.completed + r.outcomes.compensated + r.outcomes.stuck + r.outcomes.crashedBeforeFirstCommit).toBe(n);
    const reader = await openReader(db);
    try {
      const rows = await reader.all<{ status: string; n: number | string }>('SELECT status, count(*) AS n FROM sagas GROUP BY status');
      const inDb = Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
      expect({ completed: inDb.completed ?? 0, compensated: inDb.compensated ?? 0, stuck: inDb.stuck ?? 0, unfinished: (inDb.running ?? 0) + (inDb.compensating ?? 0) }).toEqual({
        completed: r.outcomes.completed, compensated: r.outcomes.compensated, stuck: r.outcomes.stuck, unfinished: 0,
      });
      // A crash before the first commit leaves no row at all.
      expect(n - rows.reduce((sum, row) => sum + Number(row.n), 0)).toBe(r.outcomes.crashedBeforeFirstCommit);
    } finally {
      await reader.close();
    }
    // Each crash after the first commit was taken over once by the bench's recovery, and logged.
    expect(readLog(join(dir, 'saga.log')).filter((l) => l.event === 'taken-over')).toHaveLength(r.crashedAndRecovered);
    expect(r.violations).toBe(0);
    if (everyKind) {
      expect(r.outcomes).toEqual({ completed: expect.any(Number), compensated: expect.any(Number), stuck: 1, crashedBeforeFirstCommit: 1 });
      expect(r.outcomes.completed * r.outcomes.compensated * r.crashedAndRecovered).toBeGreaterThan(0);
    }
  });
});
