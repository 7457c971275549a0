import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { BACKENDS } from '../support/backends.js';
import { runSaga, tempDir } from '../support/cli.js';

/** `saga list`, `saga show` and `saga inventory` on a history with every kind of outcome. */
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe.each(BACKENDS)('inspecting sagas on $name', (backend) => {
  let opts: { cwd: string; env: Record<string, string> };
  const ids: Record<'completed' | 'compensated' | 'stuck' | 'retried', string> = { completed: '', compensated: '', stuck: '', retried: '' };

  beforeAll(async () => {
    const dir = tempDir();
    dirs.push(dir);
    opts = { cwd: dir, env: { SAGA_DB: await backend.freshDb(dir) } };
    const run = async (args: string[], code: number) => {
      const r = await runSaga(['checkout', '--json', ...args], opts);
      expect(r.code, r.stderr).toBe(code);
      return JSON.parse(r.stdout).sagaId as string;
    };
    ids.completed = await run(['--product', '101', '--qty', '2'], 0);
    ids.compensated = await run(['--product', '102', '--qty', '1', '--fail-at', 'payment'], 3);
    ids.stuck = await run(['--product', '103', '--qty', '3', '--fail-at', 'shipping', '--fail-compensation', 'inventory'], 4);
    ids.retried = await run(['--product', '101', '--qty', '1', '--fail-at', 'payment', '--fail-mode', 'transient', '--fail-times', '2'], 0);
  });

  it('list: most recent first, with --status, --limit and --json', async () => {
    const all = JSON.parse((await runSaga(['list', '--json'], opts)).stdout) as { sagaId: string; status: string; createdAt: string; productId: number; qty: number; failedStep: string | null; durationMs: number }[];
    expect(all.map((s) => s.sagaId)).toEqual([ids.retried, ids.stuck, ids.compensated, ids.completed]);
    expect(all[1]).toMatchObject({ status: 'stuck', productId: 103, qty: 3, failedStep: 'shipping' });
    expect(all[2]).toMatchObject({ status: 'compensated', failedStep: 'payment' });
    expect(Date.parse(all[0]!.createdAt)).toBeGreaterThan(Date.parse(all[3]!.createdAt));
    expect(all.every((s) => s.durationMs >= 0)).toBe(true);
    const stuck = JSON.parse((await runSaga(['list', '--status', 'stuck', '--json'], opts)).stdout) as { sagaId: string }[];
    expect(stuck.map((s) => s.sagaId)).toEqual([ids.stuck]);
    const two = JSON.parse((await runSaga(['list', '--limit', '2', '--json'], opts)).stdout) as unknown[];
    expect(two).toHaveLength(2);
    const human = await runSaga(['list'], opts);
    expect(human.code).toBe(0);
    const lines = human.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^SAGA\s+CREATED \(UTC\)\s+ITEMS\s+STATUS\s+FAILED\s+TOOK$/);
    expect(lines.find((l) => l.startsWith(ids.stuck))).toMatch(/3 × 103\s+STUCK\s+failed at shipping/);
    expect(lines.find((l) => l.startsWith(ids.completed))).toMatch(/2 × 101\s+completed/);
  });

  it('show: the timeline of every attempt, the input and the rows, as a table and as JSON', async () => {
    const r = await runSaga(['show', ids.retried, '--json'], opts);
    expect(r.code).toBe(0);
    const shown = JSON.parse(r.stdout) as { sagaId: string; status: string; input: { productId: number; qty: number }; events: { step: string; phase: string; event: string; attempt: number }[]; order: { status: string }; payment: { status: string }; shipment: { status: string } };
    expect(shown).toMatchObject({ sagaId: ids.retried, status: 'completed', input: { productId: 101, qty: 1 }, order: { status: 'confirmed' }, payment: { status: 'charged' }, shipment: { status: 'scheduled' } });
    const payment = shown.events.filter((e) => e.step === 'payment').map((e) => `${e.event}#${e.attempt}`);
    expect(payment).toEqual(['started#1', 'failed#1', 'retrying#1', 'started#2', 'failed#2', 'retrying#2', 'started#3', 'succeeded#3']);
    const human = await runSaga(['show', ids.stuck], opts);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/saga \S+ {2}STUCK/);
    expect(human.stdout).toMatch(/↩ inventory\s+compensation\s+#5\s+failed/);
    expect(human.stdout).toMatch(/↩ payment\s+compensation\s+#1\s+succeeded/);
    expect(human.stdout).toMatch(/shipping\s+action\s+#1\s+failed\s+\S+\s+injected permanent failure in shipping/);
    expect(human.stdout).toContain('saga recover');
    expect(human.stdout).toMatch(/order\s+#\d+ cancelled/);
  });

  it('show: an unknown id is exit 2 with one line', async () => {
    const r = await runSaga(['show', 'no-such-saga'], opts);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/no saga no-such-saga .*saga list/)]);
  });

  it('show: a short id, pasted with a space, is found; one too short to tell sagas apart says so (exit 2)', async () => {
    const found = await runSaga(['show', ` ${ids.stuck.slice(-8)} `], opts);
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout).toContain(ids.stuck);
    const short = await runSaga(['show', ids.stuck.slice(-4)], opts);
    expect(short.code).toBe(2);
    expect(short.stderr).toBe(`saga: ${ids.stuck.slice(-4)} is too short to find a saga by: give at least 6 characters of its id (the 8 that \`saga list\` and the log lines show will do)\n`);
  });

  it('inventory: seeded, available, reserved (stuck holds its stock) and sold', async () => {
    const rows = JSON.parse((await runSaga(['inventory', '--json'], opts)).stdout) as { productId: number; seeded: number; available: number; reserved: number; sold: number }[];
    expect(rows.find((p) => p.productId === 101)).toMatchObject({ seeded: 25, available: 22, reserved: 0, sold: 3 });
    expect(rows.find((p) => p.productId === 102)).toMatchObject({ seeded: 60, available: 60, reserved: 0, sold: 0 });
    expect(rows.find((p) => p.productId === 103)).toMatchObject({ seeded: 12, available: 9, reserved: 3, sold: 0 });
  });
});
