import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULTS, readDotEnv, setting, type Sources } from '../../src/config.js';
import { resolveGlobals } from '../../src/cli/settings.js';
import type { ExternalStep, LocalStep, RetryPolicy, SagaDefinition } from '../../src/engine/definition.js';
import { PermanentError, TransientError } from '../../src/engine/errors.js';
import { faultInjector, type FaultInjector } from '../../src/engine/faults.js';
import { backoffDelay, validateRetryPolicy } from '../../src/engine/retry.js';
import { SimulatedCrashError } from '../../src/engine/attempt.js';
import type { Clock } from '../../src/engine/clock.js';
import { startSaga, type EngineDeps } from '../../src/engine/runner.js';
import { compensationOrder, foldEvents, initialStepState, planRecovery, type StepState } from '../../src/engine/step-state.js';
import type { SagaStore, StepEvent } from '../../src/engine/store.js';
import { UsageError } from '../../src/errors.js';
import type { SqlDatabase } from '../../src/store/sql.js';
import { BACKENDS, type OpenedBackend } from '../support/backends.js';
import { tempDir } from '../support/cli.js';

// ---- a small saga of our own: local `first`, external `remote`, local `last` (with a guard) ----

interface Input {
  readonly units: number;
}

/** How the fake remote service answers each attempt; the last entry repeats. */
type Behaviour = 'ok' | 'permanent' | 'transient' | 'plain-error' | 'hang';

interface RemoteCall {
  readonly kind: 'apply' | 'undo';
  readonly key: string;
  readonly actionKey: string;
  readonly attempt: number;
  /** How many write-ahead `started` records the log held when the call arrived (rule 1). */
  readonly startedRecordsAtCall: number;
}

/** A remote service that deduplicates by idempotency key, scripted per attempt. */
function fakeRemote(db: SqlDatabase, script: { action?: Behaviour[]; compensation?: Behaviour[] } = {}) {
  const effects = new Map<string, 'applied' | 'undone'>();
  const calls: RemoteCall[] = [];
  const startedRecords = async (key: string) =>
    (await db.get<{ n: number }>(`SELECT count(*) AS n FROM saga_events WHERE idempotency_key = ? AND event = 'started'`, [key]))!.n;
  const pick = (list: Behaviour[] | undefined, attempt: number): Behaviour =>
    list === undefined || list.length === 0 ? 'ok' : (list[Math.min(attempt, list.length) - 1] as Behaviour);

  async function behave(b: Behaviour, signal: AbortSignal, effect: () => void): Promise<void> {
    if (b === 'permanent') throw new PermanentError('remote said no');
    if (b === 'transient') throw new TransientError('remote busy');
    if (b === 'plain-error') throw new Error('connection reset');
    effect();
    // Took effect, but the answer never arrives within the step's timeout.
    if (b === 'hang') await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  }

  return {
    effects,
    calls,
    async apply(ctx: { idempotencyKey: string; actionKey: string; attempt: number; signal: AbortSignal }) {
      const n = await startedRecords(ctx.idempotencyKey);
      calls.push({ kind: 'apply', key: ctx.idempotencyKey, actionKey: ctx.actionKey, attempt: ctx.attempt, startedRecordsAtCall: n });
      await behave(pick(script.action, ctx.attempt), ctx.signal, () => {
        if (!effects.has(ctx.idempotencyKey)) effects.set(ctx.idempotencyKey, 'applied');
      });
      return { ref: `ref-${ctx.idempotencyKey}` };
    },
    async undo(ctx: { idempotencyKey: string; actionKey: string; attempt: number; signal: AbortSignal }) {
      const n = await startedRecords(ctx.idempotencyKey);
      calls.push({ kind: 'undo', key: ctx.idempotencyKey, actionKey: ctx.actionKey, attempt: ctx.attempt, startedRecordsAtCall: n });
      await behave(pick(script.compensation, ctx.attempt), ctx.signal, () => {
        if (effects.has(ctx.actionKey)) effects.set(ctx.actionKey, 'undone');
      });
      return { undone: effects.get(ctx.actionKey) === 'undone' };
    },
  };
}
type FakeRemote = ReturnType<typeof fakeRemote>;

const RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 10, maxDelayMs: 100 };
const COMPENSATION_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 10, maxDelayMs: 100 };

function testSaga(remote: FakeRemote, overrides: { remoteTimeoutMs?: number; remoteRetry?: Partial<RetryPolicy> } = {}): SagaDefinition<Input> {
  const undo = (step: string, sagaId: string) => [
    { sql: `UPDATE things SET status = 'undone' WHERE saga_id = ? AND step = ? AND status = 'done'`, params: [sagaId, step] },
  ];
  const first: LocalStep<Input> = {
    name: 'first',
    kind: 'local',
    action: (_, sagaId) => [{ sql: `INSERT INTO things (saga_id, step, status) VALUES (?, 'first', 'done')`, params: [sagaId] }],
    compensation: (_, sagaId) => undo('first', sagaId),
  };
  const remoteStep: ExternalStep<Input, { ref: string }, { undone: boolean }> = {
    name: 'remote',
    kind: 'external',
    ...(overrides.remoteTimeoutMs === undefined ? {} : { timeoutMs: overrides.remoteTimeoutMs }),
    ...(overrides.remoteRetry === undefined ? {} : { retry: overrides.remoteRetry }),
    action: (_, ctx) => remote.apply(ctx),
    record: (_, sagaId, r) => [{ sql: `INSERT INTO things (saga_id, step, status, ref) VALUES (?, 'remote', 'done', ?)`, params: [sagaId, r.ref] }],
    compensation: (_, ctx) => remote.undo(ctx),
    recordCompensation: (_, sagaId) => undo('remote', sagaId),
  };
  const last: LocalStep<Input> = {
    name: 'last',
    kind: 'local',
    // The insert runs before the guard, so a failed guard must undo it too (rule 2).
    action: (input, sagaId) => [
      { sql: `INSERT INTO things (saga_id, step, status) VALUES (?, 'last', 'done')`, params: [sagaId] },
      { sql: 'UPDATE stock SET units = units - ? WHERE id = 1 AND units >= ?', params: [input.units, input.units], expectChanges: { count: 1, failure: 'not enough units' } },
    ],
    compensation: (input, sagaId) => [
      { sql: `UPDATE stock SET units = units + ? WHERE id = 1 AND EXISTS (SELECT 1 FROM things WHERE saga_id = ? AND step = 'last' AND status = 'done')`, params: [input.units, sagaId] },
      ...undo('last', sagaId),
    ],
  };
  return {
    name: 'test-saga',
    steps: [first, remoteStep, last],
    retry: RETRY,
    compensationRetry: COMPENSATION_RETRY,
    timeoutMs: 1_000,
    parseInput: (raw) => raw as Input,
  };
}

// ---- engine wiring: a real database (each backend), a recording logger, a clock whose sleep returns at once ----

interface LogRecord {
  readonly level: 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/** The test saga's own tables, in DDL both SQLite and PostgreSQL accept. */
const TEST_TABLES = `CREATE TABLE things (saga_id TEXT NOT NULL, step TEXT NOT NULL, status TEXT NOT NULL, ref TEXT, PRIMARY KEY (saga_id, step));
  CREATE TABLE stock (id INTEGER PRIMARY KEY, units INTEGER NOT NULL CHECK (units >= 0));
  INSERT INTO stock (id, units) VALUES (1, 10);`;

function engine(store: SagaStore, faults?: FaultInjector) {
  const logs: LogRecord[] = [];
  const sleeps: number[] = [];
  const clock: Clock = {
    now: () => Date.now(),
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  };
  const record = (level: LogRecord['level']) => (fields: object, msg: string) => logs.push({ level, fields: fields as Record<string, unknown>, msg });
  const deps: EngineDeps = {
    store,
    logger: { info: record('info'), warn: record('warn'), error: record('error') },
    clock,
    random: () => 0.5,
    owner: { id: 'test-owner', host: 'test-host', pid: process.pid, pidScope: null, startedAt: null },
    leaseMs: 30_000,
    ...(faults === undefined ? {} : { faults }),
  };
  return { deps, logs, sleeps };
}

/** The saga log as short strings, in commit order: `remote action failed #2`. */
async function transitions(db: SqlDatabase, sagaId: string): Promise<string[]> {
  const rows = await db.all<{ step: string; phase: string; event: string; attempt: number }>('SELECT step, phase, event, attempt FROM saga_events WHERE saga_id = ? ORDER BY event_id', [sagaId]);
  return rows.map((e) => `${e.step} ${e.phase} ${e.event} #${e.attempt}`);
}

/** The same shape from the pino-style records the engine logged. */
function loggedTransitions(logs: readonly LogRecord[]): string[] {
  return logs
    .filter((l) => ['started', 'succeeded', 'failed', 'retrying'].includes(String(l.fields.event)))
    .map((l) => `${String(l.fields.step)} ${String(l.fields.phase)} ${String(l.fields.event)} #${String(l.fields.attempt)}`);
}

async function things(db: SqlDatabase, sagaId: string): Promise<Record<string, string>> {
  const rows = await db.all<{ step: string; status: string }>('SELECT step, status FROM things WHERE saga_id = ? ORDER BY step', [sagaId]);
  return Object.fromEntries(rows.map((r) => [r.step, r.status]));
}

function sagaRow(db: SqlDatabase, sagaId: string) {
  return db.get<{ status: string; failed_step: string | null; error: string | null; owner_id: string | null; lease_until: number | null; ended_at: number | null }>(
    'SELECT status, failed_step, error, owner_id, lease_until, ended_at FROM sagas WHERE saga_id = ?',
    [sagaId],
  );
}

const units = async (db: SqlDatabase) => (await db.get<{ units: number }>('SELECT units FROM stock WHERE id = 1'))!.units;

const actions = (step: string, ...events: string[]) => events.map((e) => `${step} action ${e}`);
const compensations = (step: string, ...events: string[]) => events.map((e) => `${step} compensation ${e}`);

describe.each(BACKENDS)('engine runner on $name', (backend) => {
  let dir: string;
  let opened: OpenedBackend;
  let db: SqlDatabase;
  beforeEach(async () => {
    dir = tempDir('saga-engine-');
    opened = await backend.open(dir);
    db = opened.db;
    await opened.exec(TEST_TABLES);
  });
  afterEach(async () => {
    await opened.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(remote: FakeRemote, input: Input, opts: { def?: SagaDefinition<Input>; faults?: FaultInjector } = {}) {
    const sagaId = randomUUID();
    const env = engine(opened.store, opts.faults);
    const outcome = await startSaga(opts.def ?? testSaga(remote), input, env.deps, { sagaId });
    return { sagaId, outcome, ...env };
  }

  it('happy path: every step commits its writes and its started/succeeded records, logged in the same order', async () => {
    const remote = fakeRemote(db);
    const { sagaId, outcome, logs } = await run(remote, { units: 4 });

    expect(outcome.status).toBe('completed');
    expect(outcome.failedStep).toBeUndefined();
    expect(await things(db, sagaId)).toEqual({ first: 'done', remote: 'done', last: 'done' });
    expect(await units(db)).toBe(6);
    const expected = [
      ...actions('first', 'started #1', 'succeeded #1'),
      ...actions('remote', 'started #1', 'succeeded #1'),
      ...actions('last', 'started #1', 'succeeded #1'),
    ];
    expect(await transitions(db, sagaId)).toEqual(expected);
    expect(loggedTransitions(logs)).toEqual(expected);
    // Terminal: no owner, no lease.
    expect(await sagaRow(db, sagaId)).toMatchObject({ status: 'completed', owner_id: null, lease_until: null, ended_at: expect.any(Number) });
    // Every transition record carries the fields docs/guarantees.md names; one more line says how the saga ended.
    const transitionLogs = logs.filter((l) => l.fields.phase !== undefined);
    expect(transitionLogs).toHaveLength(expected.length);
    for (const l of transitionLogs) expect(l.fields).toMatchObject({ sagaId, saga: 'test-saga', step: expect.any(String), phase: 'action', attempt: 1 });
    for (const l of logs.filter((x) => x.fields.event === 'succeeded')) expect(l.fields.durationMs).toEqual(expect.any(Number));
    expect(logs.filter((l) => l.fields.phase === undefined)).toEqual([{ level: 'info', fields: { sagaId, saga: 'test-saga', event: 'completed' }, msg: `saga ${sagaId} completed` }]);
  });

  it('writes ahead: the external call finds its started record, with the idempotency key, already committed', async () => {
    const remote = fakeRemote(db);
    const { sagaId } = await run(remote, { units: 1 });
    expect(remote.calls).toEqual([{ kind: 'apply', key: `${sagaId}:remote`, actionKey: `${sagaId}:remote`, attempt: 1, startedRecordsAtCall: 1 }]);
    const started = await db.get(`SELECT idempotency_key FROM saga_events WHERE saga_id = ? AND step = 'remote' AND event = 'started'`, [sagaId]);
    expect(started).toEqual({ idempotency_key: `${sagaId}:remote` });
  });

  it('a failed guard in a local step undoes that step entirely and compensates the earlier steps in reverse order', async () => {
    const remote = fakeRemote(db);
    const { sagaId, outcome, logs } = await run(remote, { units: 11 });

    expect(outcome).toMatchObject({ status: 'compensated', failedStep: 'last', error: 'last: not enough units', interrupted: false });
    // The insert before the guard was rolled back with it: no `last` row at all.
    expect(await things(db, sagaId)).toEqual({ first: 'undone', remote: 'undone' });
    expect(await units(db)).toBe(10);
    const expected = [
      ...actions('first', 'started #1', 'succeeded #1'),
      ...actions('remote', 'started #1', 'succeeded #1'),
      ...actions('last', 'started #1', 'failed #1'),
      ...compensations('remote', 'started #1', 'succeeded #1'),
      ...compensations('first', 'started #1', 'succeeded #1'),
    ];
    expect(await transitions(db, sagaId)).toEqual(expected);
    expect(loggedTransitions(logs)).toEqual(expected);
    expect(await db.get(`SELECT error, error_kind, uncertain FROM saga_events WHERE saga_id = ? AND event = 'failed'`, [sagaId])).toEqual({
      error: 'not enough units',
      error_kind: 'permanent',
      uncertain: 0,
    });
    // The remote compensation used its own key and named the action it undoes (rule 3).
    expect(remote.calls.at(-1)).toMatchObject({ kind: 'undo', key: `${sagaId}:remote:compensate`, actionKey: `${sagaId}:remote`, startedRecordsAtCall: 1 });
    expect(remote.effects.get(`${sagaId}:remote`)).toBe('undone');
    expect(await sagaRow(db, sagaId)).toMatchObject({ status: 'compensated', failed_step: 'last', owner_id: null });
    const failed = logs.find((l) => l.fields.event === 'failed');
    expect(failed).toMatchObject({ level: 'warn', fields: { step: 'last', durationMs: expect.any(Number), err: { message: 'not enough units' } } });
  });

  // How the remote fails decides retries (rule 6) and whether it is compensated (rules 4 and 5).
  it.each([
    { behaviour: 'permanent', attempts: 1, errorKind: 'permanent', uncertain: 0, compensated: false },
    { behaviour: 'transient', attempts: 3, errorKind: 'transient', uncertain: 0, compensated: false },
    { behaviour: 'plain-error', attempts: 3, errorKind: 'transient', uncertain: 1, compensated: true },
    { behaviour: 'hang', attempts: 2, errorKind: 'timeout', uncertain: 1, compensated: true },
  ] as const)('remote fails with $behaviour every time: $attempts attempt(s), compensated: $compensated', async (c) => {
    const remote = fakeRemote(db, { action: [c.behaviour] });
    // Only the hang is meant to time out; the others get a timeout a loaded machine always meets.
    const def = testSaga(remote, { remoteTimeoutMs: c.behaviour === 'hang' ? 40 : 5_000, remoteRetry: c.behaviour === 'hang' ? { attempts: 2 } : {} });
    const { sagaId, outcome, sleeps } = await run(remote, { units: 1 }, { def });

    expect(outcome.status).toBe('compensated');
    expect(outcome.failedStep).toBe('remote');
    const remoteActions = await db.all<{ event: string; attempt: number; error_kind: string | null; uncertain: number | null }>(
      `SELECT event, attempt, error_kind, uncertain FROM saga_events WHERE saga_id = ? AND step = 'remote' AND phase = 'action' ORDER BY event_id`,
      [sagaId],
    );
    expect(remoteActions.filter((e) => e.event === 'started').map((e) => e.attempt)).toEqual(Array.from({ length: c.attempts }, (_, i) => i + 1));
    expect(remoteActions.filter((e) => e.event === 'retrying')).toHaveLength(c.attempts - 1);
    expect(sleeps).toHaveLength(c.attempts - 1);
    for (const f of remoteActions.filter((e) => e.event === 'failed')) expect(f).toMatchObject({ error_kind: c.errorKind, uncertain: c.uncertain });
    expect(remote.calls.filter((x) => x.kind === 'apply')).toHaveLength(c.attempts);

    const compensated = (await transitions(db, sagaId)).filter((t) => t.includes('compensation'));
    expect(compensated).toEqual([
      ...(c.compensated ? compensations('remote', 'started #1', 'succeeded #1') : []),
      ...compensations('first', 'started #1', 'succeeded #1'),
    ]);
    expect(await things(db, sagaId)).toEqual({ first: 'undone' });
    if (c.behaviour === 'hang') expect(remote.effects.get(`${sagaId}:remote`)).toBe('undone');
    expect(remote.effects.get(`${sagaId}:remote`)).not.toBe('applied');
  });

  it('a transient failure is retried with backoff, each attempt logged, and then completes', async () => {
    const remote = fakeRemote(db, { action: ['transient', 'transient', 'ok'] });
    const { sagaId, outcome, logs, sleeps } = await run(remote, { units: 1 });

    expect(outcome.status).toBe('completed');
    expect((await transitions(db, sagaId)).filter((t) => t.startsWith('remote'))).toEqual(
      actions('remote', 'started #1', 'failed #1', 'retrying #1', 'started #2', 'failed #2', 'retrying #2', 'started #3', 'succeeded #3'),
    );
    const delays = await db.all<{ delay_ms: number }>(`SELECT delay_ms FROM saga_events WHERE saga_id = ? AND event = 'retrying' ORDER BY event_id`, [sagaId]);
    // The engine waited exactly what it logged, growing within the policy's bounds.
    expect(sleeps).toEqual(delays.map((d) => d.delay_ms));
    expect(sleeps[0]).toBeGreaterThanOrEqual(RETRY.baseDelayMs / 2);
    expect(sleeps[1]).toBeGreaterThan(sleeps[0]!);
    const retrying = logs.filter((l) => l.fields.event === 'retrying');
    expect(retrying.map((l) => [l.level, l.fields.attempt, l.fields.delayMs])).toEqual([
      ['warn', 1, sleeps[0]],
      ['warn', 2, sleeps[1]],
    ]);
    // Same key on every attempt; the remote applied the effect once.
    expect(new Set(remote.calls.map((x) => x.key))).toEqual(new Set([`${sagaId}:remote`]));
    expect([...remote.effects.values()]).toEqual(['applied']);
  });

  it('a compensation that always fails spends its own retry budget, then the saga is stuck and said so at error level', async () => {
    const remote = fakeRemote(db, { compensation: ['transient'] });
    const { sagaId, outcome, logs } = await run(remote, { units: 11 });

    expect(outcome.status).toBe('stuck');
    expect((await transitions(db, sagaId)).filter((t) => t.includes('compensation'))).toEqual(
      compensations(
        'remote',
        ...['started #1', 'failed #1', 'retrying #1', 'started #2', 'failed #2', 'retrying #2', 'started #3', 'failed #3', 'retrying #3', 'started #4', 'failed #4'],
      ),
    );
    // The budget is the compensation's (4), not the action's (3).
    expect(remote.calls.filter((x) => x.kind === 'undo')).toHaveLength(COMPENSATION_RETRY.attempts);
    expect(await sagaRow(db, sagaId)).toMatchObject({ status: 'stuck', failed_step: 'last', owner_id: null, lease_until: null, ended_at: null });
    // The saga's error stays the failure that started the rollback; why it is stuck is logged.
    expect((await sagaRow(db, sagaId))?.error).toBe('last: not enough units');
    // Rollback stopped at the stuck step: `first` still awaits its compensation.
    expect(await things(db, sagaId)).toEqual({ first: 'done', remote: 'done' });
    const errors = logs.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.fields).toMatchObject({ sagaId, saga: 'test-saga', step: 'remote', phase: 'compensation' });
    expect(errors[0]!.msg).toContain(sagaId);
    expect(errors[0]!.msg).toContain('saga recover');
  });

  it.each([
    {
      point: 'action:first:after-effect',
      // The crash hits the very first batch: not even the saga row exists.
      saga: undefined,
      things: {},
      log: [] as string[],
    },
    {
      point: 'action:last:after-effect',
      // The remote's outcome was pending in the same batch as `last`: it is lost too, so the log
      // shows `remote` started without an outcome (uncertain), which recovery re-runs.
      saga: 'running',
      things: { first: 'done' },
      log: [...actions('first', 'started #1', 'succeeded #1'), ...actions('remote', 'started #1')],
    },
  ])('a crash at $point rolls back the uncommitted local step and its records', async (c) => {
    const crash = (point: string): never => {
      throw new SimulatedCrashError(point);
    };
    const remote = fakeRemote(db);
    const sagaId = randomUUID();
    const { deps, logs } = engine(opened.store, faultInjector({ crashAt: [c.point] }, crash));
    const error = await startSaga(testSaga(remote), { units: 3 }, deps, { sagaId }).catch((err: unknown) => err);

    expect(error).toBeInstanceOf(SimulatedCrashError);
    expect((error as SimulatedCrashError).point).toBe(c.point);
    expect((await sagaRow(db, sagaId))?.status).toBe(c.saga);
    expect(await things(db, sagaId)).toEqual(c.things);
    expect(await units(db)).toBe(10);
    expect(await transitions(db, sagaId)).toEqual(c.log);
    // A log line never runs ahead of the database.
    expect(loggedTransitions(logs)).toEqual(c.log);
    if (c.saga === 'running') {
      const events = await deps.store.getEvents(sagaId);
      expect(planRecovery('running', foldEvents(3, events))).toEqual({ direction: 'forward', fromStep: 1 });
    }
  });
});

// ---- pure functions, table-driven ----

function ev(stepIndex: number, phase: StepEvent['phase'], event: StepEvent['event'], attempt = 1, extra: Partial<StepEvent> = {}): StepEvent {
  return { sagaId: 's', step: `step${stepIndex}`, stepIndex, phase, event, attempt, at: 0, ...extra };
}

function state(partial: Partial<StepState>): StepState {
  return { ...initialStepState(), ...partial };
}

describe('foldEvents', () => {
  it.each([
    { name: 'no records', events: [], expected: { action: 'pending', actionAttempts: 0, compensation: 'none', sawUncertainFailure: false } },
    { name: 'started with no outcome (a crash)', events: [ev(0, 'action', 'started')], expected: { action: 'uncertain', actionAttempts: 1 } },
    { name: 'started, succeeded', events: [ev(0, 'action', 'started'), ev(0, 'action', 'succeeded')], expected: { action: 'succeeded', actionAttempts: 1 } },
    {
      name: 'started, failed permanently',
      events: [ev(0, 'action', 'started'), ev(0, 'action', 'failed', 1, { uncertain: false, error: 'no' })],
      expected: { action: 'failed', sawUncertainFailure: false, lastError: 'no' },
    },
    {
      name: 'timed out (uncertain)',
      events: [ev(0, 'action', 'started'), ev(0, 'action', 'failed', 1, { uncertain: true, error: 'timeout' })],
      expected: { action: 'uncertain', sawUncertainFailure: true },
    },
    {
      name: 'timed out, retried, then failed cleanly: still may have an effect',
      events: [
        ev(0, 'action', 'started'),
        ev(0, 'action', 'failed', 1, { uncertain: true }),
        ev(0, 'action', 'retrying', 1),
        ev(0, 'action', 'started', 2),
        ev(0, 'action', 'failed', 2, { uncertain: false, error: 'declined' }),
      ],
      expected: { action: 'failed', sawUncertainFailure: true, actionAttempts: 2, lastError: 'declined' },
    },
    {
      name: 'compensation started, no outcome',
      events: [ev(0, 'action', 'started'), ev(0, 'action', 'succeeded'), ev(0, 'compensation', 'started')],
      expected: { action: 'succeeded', compensation: 'running', compensationAttempts: 1 },
    },
    {
      name: 'compensation failed twice, then succeeded',
      events: [
        ev(0, 'action', 'started'),
        ev(0, 'action', 'succeeded'),
        ev(0, 'compensation', 'started', 1),
        ev(0, 'compensation', 'failed', 1),
        ev(0, 'compensation', 'started', 2),
        ev(0, 'compensation', 'failed', 2, { error: 'busy' }),
        ev(0, 'compensation', 'started', 3),
        ev(0, 'compensation', 'succeeded', 3),
      ],
      expected: { action: 'succeeded', compensation: 'succeeded', compensationAttempts: 3, lastError: 'busy' },
    },
    {
      name: 'compensation failed last',
      events: [ev(0, 'action', 'started'), ev(0, 'action', 'succeeded'), ev(0, 'compensation', 'started'), ev(0, 'compensation', 'failed')],
      expected: { compensation: 'failed' },
    },
  ])('$name', ({ events, expected }) => {
    expect(foldEvents(1, events)[0]).toMatchObject(expected);
  });

  it('keeps steps apart and rejects a record for a step the definition does not have', () => {
    const states = foldEvents(2, [ev(0, 'action', 'started'), ev(0, 'action', 'succeeded'), ev(1, 'action', 'started')]);
    expect(states.map((s) => s.action)).toEqual(['succeeded', 'uncertain']);
    expect(() => foldEvents(2, [ev(2, 'action', 'started')])).toThrow(/unknown step index 2/);
  });
});

describe('compensationOrder', () => {
  const ok = state({ action: 'succeeded' });
  it.each([
    { name: 'nothing ran', states: [state({}), state({})], order: [] },
    { name: 'failed permanently before any effect', states: [state({ action: 'failed' })], order: [] },
    { name: 'succeeded steps in reverse; the failed one skipped', states: [ok, ok, state({ action: 'failed' }), state({})], order: [1, 0] },
    { name: 'an uncertain step is compensated too', states: [ok, state({ action: 'uncertain' }), state({})], order: [1, 0] },
    { name: 'failed cleanly after an uncertain attempt', states: [ok, state({ action: 'failed', sawUncertainFailure: true })], order: [1, 0] },
    { name: 'already compensated steps are done', states: [state({ action: 'succeeded', compensation: 'succeeded' }), ok, state({ action: 'failed' })], order: [1] },
    { name: 'a failed or interrupted compensation is run again', states: [state({ action: 'succeeded', compensation: 'running' }), state({ action: 'succeeded', compensation: 'failed' })], order: [1, 0] },
  ])('$name -> $order', ({ states, order }) => {
    expect(compensationOrder(states)).toEqual(order);
  });
});

describe('planRecovery', () => {
  const ok = state({ action: 'succeeded' });
  it.each([
    { name: 'running, all succeeded: nothing left but to finish', status: 'running', states: [ok, ok, ok], plan: { direction: 'forward', fromStep: 3 } },
    { name: 'running, nothing ran', status: 'running', states: [state({}), state({})], plan: { direction: 'forward', fromStep: 0 } },
    { name: 'running, uncertain step: re-run it', status: 'running', states: [ok, state({ action: 'uncertain' }), state({})], plan: { direction: 'forward', fromStep: 1 } },
    { name: 'running, next step pending', status: 'running', states: [ok, state({}), state({})], plan: { direction: 'forward', fromStep: 1 } },
    { name: 'running, a step failed permanently', status: 'running', states: [ok, state({ action: 'failed', failedPermanently: true })], plan: { direction: 'backward' } },
    { name: 'running, a step caught between transient retries: retry it', status: 'running', states: [ok, state({ action: 'failed', failedPermanently: false }), state({})], plan: { direction: 'forward', fromStep: 1 } },
    { name: 'compensating', status: 'compensating', states: [ok, state({})], plan: { direction: 'backward' } },
    { name: 'stuck', status: 'stuck', states: [ok, ok], plan: { direction: 'backward' } },
  ] as const)('$name -> $plan.direction', ({ status, states, plan }) => {
    expect(planRecovery(status, states)).toEqual(plan);
  });
});

describe('backoffDelay', () => {
  const policy: RetryPolicy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 1_000 };
  it.each([
    { failedAttempt: 0, capped: 100 },
    { failedAttempt: 1, capped: 100 },
    { failedAttempt: 2, capped: 200 },
    { failedAttempt: 3, capped: 400 },
    { failedAttempt: 4, capped: 800 },
    { failedAttempt: 5, capped: 1_000 },
    { failedAttempt: 30, capped: 1_000 },
  ])('after attempt $failedAttempt: between $capped/2 and $capped', ({ failedAttempt, capped }) => {
    expect(backoffDelay(policy, failedAttempt, () => 0)).toBe(capped / 2);
    expect(backoffDelay(policy, failedAttempt, () => 0.999_999)).toBe(capped);
  });

  it('stays within [capped/2, capped] for any jitter and never exceeds maxDelayMs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000 }), fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (base, extra, attempt, r) => {
        const p = { attempts: 5, baseDelayMs: base, maxDelayMs: base + extra };
        const capped = Math.min(p.maxDelayMs, base * 2 ** (attempt - 1));
        const d = backoffDelay(p, attempt, () => r);
        return d >= Math.floor(capped / 2) && d <= Math.ceil(capped) && d <= p.maxDelayMs;
      }),
    );
  });

  it.each([
    { policy: { attempts: 0, baseDelayMs: 1, maxDelayMs: 1 }, error: /attempts/ },
    { policy: { attempts: 1.5, baseDelayMs: 1, maxDelayMs: 1 }, error: /attempts/ },
    { policy: { attempts: 2, baseDelayMs: -1, maxDelayMs: 1 }, error: /baseDelayMs/ },
    { policy: { attempts: 2, baseDelayMs: 10, maxDelayMs: 5 }, error: /maxDelayMs/ },
  ])('validateRetryPolicy refuses $policy', ({ policy: p, error }) => {
    expect(() => validateRetryPolicy(p, 'step x')).toThrow(error);
  });
});

// ---- settings: flags > environment > .env > defaults ----

describe('settings precedence', () => {
  const sources = (flags: Record<string, unknown>, env: Sources['env'], dotenv: Sources['dotenv']): Sources => ({ flags, env, dotenv });

  it.each([
    { name: 'default', env: {}, dotenv: {}, expected: DEFAULTS.SAGA_DB },
    { name: '.env beats default', env: {}, dotenv: { SAGA_DB: 'dotenv.db' }, expected: 'dotenv.db' },
    { name: 'environment beats .env', env: { SAGA_DB: 'env.db' }, dotenv: { SAGA_DB: 'dotenv.db' }, expected: 'env.db' },
    { name: 'an empty environment value falls through to .env', env: { SAGA_DB: '' }, dotenv: { SAGA_DB: 'dotenv.db' }, expected: 'dotenv.db' },
    { name: 'an empty .env value falls through to default', env: {}, dotenv: { SAGA_DB: '' }, expected: './saga.db' },
  ])('setting: $name', ({ env, dotenv, expected }) => {
    expect(setting(sources({}, env, dotenv), 'SAGA_DB')).toBe(expected);
  });

  it('setting: a key with no default and no value is undefined', () => {
    expect(setting(sources({}, {}, {}), 'SAGA_FAIL_AT')).toBeUndefined();
    expect(setting(sources({}, {}, { SAGA_FAIL_AT: 'order' }), 'SAGA_FAIL_AT')).toBe('order');
  });

  it.each([
    { name: 'defaults', flags: {}, env: {}, dotenv: {}, db: './saga.db', logFile: './saga.log', logLevel: 'info' },
    { name: '.env', flags: {}, env: {}, dotenv: { SAGA_DB: 'd.db', SAGA_LOG_FILE: 'd.log', LOG_LEVEL: 'debug' }, db: 'd.db', logFile: 'd.log', logLevel: 'debug' },
    {
      name: 'environment over .env',
      flags: {},
      env: { SAGA_DB: 'e.db', SAGA_LOG_FILE: 'e.log', LOG_LEVEL: 'warn' },
      dotenv: { SAGA_DB: 'd.db', SAGA_LOG_FILE: 'd.log', LOG_LEVEL: 'debug' },
      db: 'e.db',
      logFile: 'e.log',
      logLevel: 'warn',
    },
    {
      name: 'flags over environment and .env',
      flags: { db: 'f.db', logFile: 'f.log' },
      env: { SAGA_DB: 'e.db', SAGA_LOG_FILE: 'e.log' },
      dotenv: { SAGA_DB: 'd.db', SAGA_LOG_FILE: 'd.log' },
      db: 'f.db',
      logFile: 'f.log',
      logLevel: 'info',
    },
  ])('resolveGlobals: $name', ({ flags, env, dotenv, db, logFile, logLevel }) => {
    expect(resolveGlobals(sources(flags, env, dotenv))).toMatchObject({ db, logFile, logLevel });
  });

  it.each([
    { where: 'environment', env: { LOG_LEVEL: 'loud' }, dotenv: {}, message: /LOG_LEVEL=loud is invalid/ },
    { where: '.env', env: {}, dotenv: { SAGA_SYNC: 'sometimes' }, message: /SAGA_SYNC=sometimes is invalid/ },
    { where: 'environment', env: { SAGA_STEP_TIMEOUT_MS: '1.5' }, dotenv: {}, message: /SAGA_STEP_TIMEOUT_MS=1.5 is invalid/ },
  ])('resolveGlobals names a bad value from the $where by its variable', ({ env, dotenv, message }) => {
    expect(() => resolveGlobals(sources({}, env, dotenv))).toThrow(UsageError);
    expect(() => resolveGlobals(sources({}, env, dotenv))).toThrow(message);
  });

  it('readDotEnv reads ./.env from the directory given, and nothing when there is none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'saga-dotenv-'));
    try {
      expect(readDotEnv(dir)).toEqual({});
      writeFileSync(join(dir, '.env'), '# comment\nSAGA_DB=from-file.db\nLOG_LEVEL="debug"\n');
      expect(readDotEnv(dir)).toEqual({ SAGA_DB: 'from-file.db', LOG_LEVEL: 'debug' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
