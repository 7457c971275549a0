import { idempotencyKey, retryPolicyOf, type ExternalStep, type LocalStep, type Phase, type SagaDefinition, type Step } from './definition.js';
import { attemptWithTimeout, elapsedSince, injectedError, type AttemptResult } from './attempt.js';
import { StepTimeoutError, type StepFailure } from './errors.js';
import { logStepEvent } from './log-event.js';
import { noFaults, type FaultInjector, type FaultMode } from './faults.js';
import { backoffDelay } from './retry.js';
import { applyEvent, compensationOrder, foldEvents, initialStepState, type StepState } from './step-state.js';
import type { Clock } from './clock.js';
import { noTracing, type SagaTrace, type SagaTracer } from './tracing.js';
import type { BatchOp, BatchResult, CancelRequest, NewSaga, Owner, SagaStatus, SagaStore, StepEvent } from './store.js';

/** How often a saga waiting out a back-off looks for a cancel request (docs/guarantees.md, rule 11). */
const CANCEL_POLL_MS = 200;

/** The subset of pino the engine uses, so tests can pass their own. */
export interface EngineLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  /** Optional: the lines `write` logs go out in one piece (one write() for a commit's records), before it returns. */
  together?(write: () => void): void;
}

export interface EngineDeps {
  readonly store: SagaStore;
  readonly logger: EngineLogger;
  readonly clock: Clock;
  readonly random: () => number;
  readonly owner: Owner;
  readonly leaseMs: number;
  readonly faults?: FaultInjector;
  /** Sees every saga as a trace (src/engine/tracing.ts); none by default. */
  readonly tracer?: SagaTracer;
}

export interface SagaOutcome {
  readonly sagaId: string;
  readonly status: Extract<SagaStatus, 'completed' | 'compensated' | 'stuck'>;
  readonly steps: readonly StepState[];
  readonly failedStep?: string;
  readonly error?: string;
  /** Rolled back because the caller's signal aborted (Ctrl-C, SIGTERM), not because a step failed. */
  readonly interrupted: boolean;
  /** Rolled back because of this cancel request (`saga cancel`), not because a step failed. */
  readonly cancelled?: CancelRequest;
}

/** Run a new saga from its first step. */
export async function startSaga<I>(
  def: SagaDefinition<I>,
  input: I,
  deps: EngineDeps,
  opts: { sagaId: string; idempotencyKey?: string; requestHash?: string; signal?: AbortSignal; traceParent?: string },
): Promise<SagaOutcome> {
  const trace = (deps.tracer ?? noTracing).startSaga({ sagaId: opts.sagaId, definition: def.name, resumed: false, ...(opts.traceParent === undefined ? {} : { parent: opts.traceParent }) });
  const create: NewSaga = {
    sagaId: opts.sagaId,
    definition: def.name,
    input,
    createdAt: deps.clock.now(),
    ...(opts.idempotencyKey === undefined ? {} : { idempotencyKey: opts.idempotencyKey }),
    ...(opts.requestHash === undefined ? {} : { requestHash: opts.requestHash }),
    ...(trace.context === undefined ? {} : { traceContext: trace.context }),
  };
  const run = new SagaRun(def, input, opts.sagaId, deps, foldEvents(def.steps.length, []), 'running', opts.signal, undefined, trace);
  return run.drive({ direction: 'forward', fromStep: 0 }, create);
}

/** Drive a saga this process has just taken over (see recovery.ts). */
export async function resumeSaga<I>(
  def: SagaDefinition<I>,
  saga: { sagaId: string; input: unknown; status: SagaStatus; cancelRequestedAt?: number | null; cancelRequestedBy?: string | null; traceContext?: string | null },
  events: readonly StepEvent[],
  plan: { direction: 'forward'; fromStep: number } | { direction: 'backward' },
  deps: EngineDeps,
  signal?: AbortSignal,
): Promise<SagaOutcome> {
  const input = def.parseInput(saga.input);
  const cancel = saga.cancelRequestedAt === null || saga.cancelRequestedAt === undefined ? undefined : { at: saga.cancelRequestedAt, by: saga.cancelRequestedBy ?? 'unknown' };
  // The trace goes on where the saga's first owner started it (its context is stored with the saga).
  const parent = saga.traceContext ?? undefined;
  const trace = (deps.tracer ?? noTracing).startSaga({ sagaId: saga.sagaId, definition: def.name, resumed: true, ...(parent === undefined ? {} : { parent }) });
  const run = new SagaRun(def, input, saga.sagaId, deps, foldEvents(def.steps.length, events), saga.status, signal, cancel, trace);
  return run.drive(plan);
}

type LocalWrites = ReturnType<LocalStep<unknown>['action']>;

/** How one attempt of an action or compensation ended. */
type StepAttempt =
  | { kind: 'done' }
  | { kind: 'guard-failed'; failed: NonNullable<BatchResult['failed']> }
  | { kind: 'failed'; error: StepFailure; durationMs: number };

/**
 * One saga being driven by this process. Log records and business writes are gathered in
 * `pending` and committed together by `flush`: consecutive local steps, and the write-ahead
 * record of the external step after them, share one transaction. Nothing is committed across
 * an await: a batch is data until `store.commit` runs it in one synchronous transaction.
 */
class SagaRun<I> {
  private pending: BatchOp[] = [];
  private create: NewSaga | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private interrupted = false;
  /**
   * Whether the saga's cancel request may have changed since this process last read it: after an
   * await that was not a commit (a commit reads it in its transaction). While nothing was awaited,
   * no decision point can have been missed, so consecutive local steps cost no read.
   */
  private cancelStale = true;
  /** This run rolled back because of `cancel`. */
  private cancelHonoured = false;
  /** Attempts made by this process, per step and phase: a recovered saga gets a fresh budget. */
  private readonly attemptsThisRun = new Map<string, number>();
  private failedStep: string | undefined;
  private failure: string | undefined;
  private readonly faults: FaultInjector;
  /** The engine's logger, through the trace: lines logged while the saga runs carry its span's ids. */
  private readonly log: EngineLogger;

  constructor(
    private readonly def: SagaDefinition<I>,
    private readonly input: I,
    private readonly sagaId: string,
    private readonly deps: EngineDeps,
    private readonly states: StepState[],
    private status: SagaStatus,
    private readonly signal: AbortSignal | undefined,
    /** The saga's cancel request, once known (from its row, or read at a decision point). */
    private cancel: CancelRequest | undefined,
    private readonly trace: SagaTrace,
  ) {
    this.faults = deps.faults ?? noFaults;
    this.log = trace.logger(deps.logger);
  }

  async drive(plan: { direction: 'forward'; fromStep: number } | { direction: 'backward' }, create?: NewSaga): Promise<SagaOutcome> {
    this.create = create;
    // Counted (and its lease renewed) from here to the `finally` that undoes both, whatever throws.
    this.deps.store.inFlight?.enter();
    try {
      this.startLeaseRenewal();
      // Recovery drives a cancelled running saga backward (recovery.ts): say why once.
      if (plan.direction === 'backward' && this.status === 'running' && this.cancel !== undefined) this.honourCancel(undefined, this.cancel);
      let status: SagaOutcome['status'];
      if (plan.direction === 'forward' && (await this.forward(plan.fromStep)) === 'completed') {
        status = 'completed';
      } else {
        status = await this.backward();
      }
      // One line per saga that says how it ended, so saga.log alone tells each outcome
      // (`stuck` has its own error-level line).
      if (status !== 'stuck') {
        const fields = { sagaId: this.sagaId, saga: this.def.name, event: status, ...(this.failedStep === undefined ? {} : { failedStep: this.failedStep, err: { message: this.failure } }) };
        this.log.info(fields, status === 'completed' ? `saga ${this.sagaId} completed` : `saga ${this.sagaId} compensated: ${this.failure ?? 'rolled back'}`);
      }
      this.trace.end({
        status,
        interrupted: this.interrupted,
        ...(this.cancelHonoured && this.cancel !== undefined ? { cancelledBy: this.cancel.by } : {}),
        ...(this.failedStep === undefined ? {} : { failedStep: this.failedStep }),
        ...(this.failure === undefined ? {} : { error: this.failure }),
      });
      return {
        sagaId: this.sagaId,
        status,
        steps: this.states,
        interrupted: this.interrupted,
        ...(this.cancelHonoured && this.cancel !== undefined ? { cancelled: this.cancel } : {}),
        ...(this.failedStep === undefined ? {} : { failedStep: this.failedStep }),
        ...(this.failure === undefined ? {} : { error: this.failure }),
      };
    } catch (err) {
      // Lost to a recoverer, a database that failed, a simulated crash: the saga is left to recovery.
      this.trace.end({ status: 'unfinished', error: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      clearInterval(this.leaseTimer);
      this.deps.store.inFlight?.leave();
    }
  }

  // ---- forward --------------------------------------------------------------------------

  private async forward(fromStep: number): Promise<'completed' | 'rollback'> {
    const steps = this.def.steps;
    for (let i = fromStep; i < steps.length; i++) {
      for (;;) {
        if (this.signal?.aborted) return this.interruptedBefore(steps[i]!.name, this.signal);
        // A local step queued behind an external call's outcome commits with it, and that commit
        // reads the cancel request in its own transaction and leaves the step out when there is one
        // (store.ts, `unlessCancelled`): the decision is made there, with no read of its own here.
        const decidedAtCommit = steps[i]!.kind === 'local' && this.pending.length > 0 && this.cancel === undefined;
        const cancel = decidedAtCommit ? undefined : await this.cancelRequested();
        if (cancel !== undefined) return this.honourCancel(steps[i]!.name, cancel);
        const attempt = this.states[i]!.actionAttempts + 1;
        const result = await this.attempt(i, 'action', attempt, decidedAtCommit);
        if (result.kind === 'done') break;
        if (result.kind === 'guard-failed') return 'rollback';
        if ((await this.afterFailure(i, 'action', attempt, result.error, result.durationMs)) === 'give-up') return 'rollback';
      }
    }
    // A test fault point: holds the saga just before the commit that completes it.
    const hold = this.faults.delayMs('complete:before');
    if (hold > 0) await this.deps.clock.sleep(hold);
    this.pending.push({ op: 'status', status: 'completed' });
    const committed = await this.flush();
    if (committed.failed) return 'rollback';
    // A cancel recorded before this commit: the store left the saga running, and out the steps
    // queued to be decided here (rule 11).
    if (committed.cancel !== undefined) return this.honourCancel(committed.leftOut?.step, committed.cancel);
    this.status = 'completed';
    return 'completed';
  }

  /**
   * The saga's cancel request, if one was recorded: read from the database only when something
   * was awaited since the last read (see `cancelStale`), and never before the saga's row exists.
   */
  private async cancelRequested(): Promise<CancelRequest | undefined> {
    if (this.cancel !== undefined || this.create !== undefined || !this.cancelStale) return this.cancel;
    this.cancel = await this.deps.store.getCancelRequest(this.sagaId);
    this.cancelStale = false;
    return this.cancel;
  }

  /** A cancel request seen at a decision point (before `step`, or at completion when undefined): roll back. */
  private honourCancel(step: string | undefined, cancel: CancelRequest): 'rollback' {
    this.cancelHonoured = true;
    const why = `cancelled by ${cancel.by} at ${new Date(cancel.at).toISOString()}`;
    this.failedStep ??= step;
    const tried = step === undefined ? 0 : (this.states[this.def.steps.findIndex((st) => st.name === step)]?.actionAttempts ?? 0);
    this.failure ??= step === undefined ? `${why}, before it could complete` : tried === 0 ? `${why}, before ${step} ran` : `${why}, before ${step}'s attempt #${tried + 1}`;
    this.log.warn(
      { sagaId: this.sagaId, saga: this.def.name, ...(step === undefined ? {} : { step }), event: 'cancelled', cancelledBy: cancel.by, cancelRequestedAt: cancel.at },
      `saga ${this.sagaId} ${this.failure}: rolling back`,
    );
    return 'rollback';
  }

  /** The caller's signal aborted (Ctrl-C, SIGTERM) before this step's next attempt: roll back. */
  private interruptedBefore(step: string, signal: AbortSignal): 'rollback' {
    this.interrupted = true;
    const why = `interrupted by ${String(signal.reason ?? 'a signal')} before this step ran`;
    this.noteFailure(step, why);
    this.log.warn({ sagaId: this.sagaId, saga: this.def.name, step, event: 'interrupted' }, `saga ${this.sagaId} ${why}: rolling back`);
    return 'rollback';
  }

  // ---- backward -------------------------------------------------------------------------

  private async backward(): Promise<'compensated' | 'stuck'> {
    if (this.status !== 'compensating') {
      this.pending.push({
        op: 'status',
        status: 'compensating',
        ...(this.failedStep === undefined ? {} : { failedStep: this.failedStep }),
        ...(this.failure === undefined ? {} : { error: this.failure }),
      });
      this.status = 'compensating';
    }
    // What to undo is decided from the log, so everything pending (the failure, steps batched
    // before it) is committed first.
    let committed = await this.flush();
    if (committed.failed) return this.stuckOnGuard(committed.failed);
    for (const i of compensationOrder(this.states)) {
      for (;;) {
        const attempt = this.states[i]!.compensationAttempts + 1;
        const result = await this.attempt(i, 'compensation', attempt);
        if (result.kind === 'done') break;
        if (result.kind === 'guard-failed') return this.stuckOnGuard(result.failed);
        if ((await this.afterFailure(i, 'compensation', attempt, result.error, result.durationMs)) === 'give-up') {
          return this.becomeStuck(this.def.steps[i]!.name, attempt, result.error.message);
        }
      }
    }
    this.pending.push({ op: 'status', status: 'compensated' });
    committed = await this.flush();
    if (committed.failed) return this.stuckOnGuard(committed.failed);
    this.status = 'compensated';
    return 'compensated';
  }

  /**
   * Queue a local action or compensation for the next commit. Committed at once only when a
   * crash is armed inside it (the crash happens in its open transaction); returns that commit.
   */
  private async queueLocal(i: number, phase: Phase, attempt: number, writes: LocalWrites, unlessCancelled: boolean): Promise<BatchResult | undefined> {
    const step = this.def.steps[i]!.name;
    this.pending.push({ op: 'local', step, stepIndex: i, phase, attempt, at: this.deps.clock.now(), writes, ...(unlessCancelled ? { unlessCancelled } : {}) });
    const point = `${phase}:${step}:after-effect`;
    return this.faults.armed(point) ? this.flush(point) : undefined;
  }

  /** A local compensation's guard failed in a batch: the store already marked the saga stuck. */
  private stuckOnGuard(failed: NonNullable<BatchResult['failed']>): 'stuck' {
    this.status = 'stuck';
    this.logStuck(failed.step, this.states[failed.stepIndex]?.compensationAttempts ?? 1, failed.error);
    return 'stuck';
  }

  private async becomeStuck(step: string, attempts: number, error: string): Promise<'stuck'> {
    // The step whose failure started the rollback stays the saga's failed step (kept by the store
    // when none is given, as after a recovery).
    // The saga's error stays what started the rollback; why it is stuck is in its log.
    this.pending.push({ op: 'status', status: 'stuck', ...(this.failedStep === undefined ? {} : { failedStep: this.failedStep }) });
    await this.flush();
    this.status = 'stuck';
    this.logStuck(step, attempts, error);
    return 'stuck';
  }

  private logStuck(step: string, attempts: number, error: string): void {
    this.log.error(
      { sagaId: this.sagaId, saga: this.def.name, step, phase: 'compensation', event: 'stuck', attempt: attempts, err: { message: error } },
      `saga ${this.sagaId} is stuck: the compensation of ${step} failed ${attempts} time(s); fix the cause, then run \`saga recover\` to retry it`,
    );
  }

  // ---- attempts ---------------------------------------------------------------------------

  /**
   * One attempt of step `i`'s action or compensation, the same for both directions. A local
   * step's writes are queued for the next commit (`done`); an external step's write-ahead record
   * is committed before the call and its outcome queued after it. `guard-failed`: a commit on the
   * way failed a guard of a step batched before this one (the store recorded that failure).
   */
  private async attempt(i: number, phase: Phase, attempt: number, unlessCancelled = false): Promise<StepAttempt> {
    const step = this.def.steps[i]!;
    const fault = this.faults.forAttempt(phase, step.name, attempt);
    if (step.kind === 'local') {
      this.faults.point(`${phase}:${step.name}:before`);
      if (fault !== undefined) return this.injectedLocalFailure(i, phase, attempt, fault);
      const writes = phase === 'action' ? step.action(this.input, this.sagaId) : step.compensation(this.input, this.sagaId);
      const failed = (await this.queueLocal(i, phase, attempt, writes, unlessCancelled))?.failed;
      return failed === undefined ? { kind: 'done' } : { kind: 'guard-failed', failed };
    }
    this.pending.push({ op: 'event', event: this.event(i, phase, 'started', attempt, { idempotencyKey: idempotencyKey(this.sagaId, step.name, phase) }) });
    const { failed } = await this.flush();
    if (failed !== undefined) return { kind: 'guard-failed', failed };
    this.faults.point(`${phase}:${step.name}:before`);
    const outcome = await this.callExternal(step, phase, attempt, fault);
    this.cancelStale = true;
    if (!outcome.ok) return { kind: 'failed', error: outcome.error, durationMs: outcome.durationMs };
    const writes = phase === 'action' ? step.record(this.input, this.sagaId, outcome.result) : step.recordCompensation(this.input, this.sagaId, outcome.result);
    this.pending.push(
      { op: 'event', event: this.event(i, phase, 'succeeded', attempt, { durationMs: outcome.durationMs }) },
      { op: 'writes', writes },
    );
    return { kind: 'done' };
  }

  /**
   * Record a failed attempt; retry after a backoff if the failure is transient and the budget
   * allows, else give up (an action's caller rolls back, a compensation's leaves the saga stuck).
   */
  private async afterFailure(i: number, phase: Phase, attempt: number, error: StepFailure, durationMs: number): Promise<'retry' | 'give-up'> {
    const step = this.def.steps[i]!;
    const policy = retryPolicyOf(this.def, step, phase);
    this.pending.push({
      op: 'event',
      event: this.event(i, phase, 'failed', attempt, {
        durationMs,
        error: error.message,
        errorKind: error instanceof StepTimeoutError ? 'timeout' : error.transient ? 'transient' : 'permanent',
        uncertain: error.uncertain,
      }),
    });
    const budgetKey = `${phase}:${i}`;
    const used = (this.attemptsThisRun.get(budgetKey) ?? 0) + 1;
    this.attemptsThisRun.set(budgetKey, used);
    // Once interrupted, an action is not retried: the command rolls back promptly instead.
    const mayRetry = error.transient && used < policy.attempts && !(phase === 'action' && this.signal?.aborted);
    // A cancel recorded while this attempt ran (its outcome is now known, or uncertain): no retry.
    const cancel = mayRetry && phase === 'action' ? await this.cancelRequested() : undefined;
    if (cancel !== undefined) {
      this.honourCancel(step.name, cancel);
      return 'give-up';
    }
    if (!mayRetry) {
      if (phase === 'action') {
        if (error.transient && this.signal?.aborted) this.interrupted = true;
        this.noteFailure(step.name, error.message);
      }
      return 'give-up';
    }
    const delayMs = backoffDelay(policy, attempt, this.deps.random);
    this.pending.push({ op: 'event', event: this.event(i, phase, 'retrying', attempt, { delayMs, error: error.message }) });
    if ((await this.flush()).failed) return 'give-up';
    if (phase === 'action') await this.backOff(delayMs);
    else await this.deps.clock.sleep(delayMs);
    return 'retry';
  }

  /**
   * An action's back-off, cut short by the caller's signal or by a cancel request (polled while
   * waiting, so a long back-off does not keep a cancelled saga going). The next attempt's
   * decision point then rolls back.
   */
  private async backOff(delayMs: number): Promise<void> {
    const stop = new AbortController();
    const poll = setInterval(() => {
      this.deps.store.getCancelRequest(this.sagaId).then((c) => c !== undefined && stop.abort(), () => undefined);
    }, CANCEL_POLL_MS);
    poll.unref();
    try {
      await this.deps.clock.sleep(delayMs, this.signal === undefined ? stop.signal : AbortSignal.any([this.signal, stop.signal]));
    } finally {
      clearInterval(poll);
      this.cancelStale = true;
    }
  }

  private noteFailure(step: string, message: string): void {
    this.failedStep ??= step;
    this.failure ??= `${step}: ${message}`;
  }

  /** An injected failure of a local step: it never reaches the database. */
  private async injectedLocalFailure(i: number, phase: Phase, attempt: number, fault: FaultMode): Promise<Extract<StepAttempt, { kind: 'failed' }>> {
    const step = this.def.steps[i]!;
    const startedAt = performance.now();
    this.pending.push({ op: 'event', event: this.event(i, phase, 'started', attempt) });
    if (fault === 'timeout') await this.deps.clock.sleep(this.timeoutOf(step));
    this.cancelStale = true;
    return { kind: 'failed', error: injectedError(step, phase, fault, this.timeoutOf(step)), durationMs: elapsedSince(startedAt) };
  }

  private async callExternal(step: ExternalStep<I>, phase: Phase, attempt: number, fault: FaultMode | undefined): Promise<AttemptResult> {
    const timeoutMs = this.timeoutOf(step);
    return attemptWithTimeout(step.name, timeoutMs, async (signal) => {
      if (fault === 'error' || fault === 'transient') throw injectedError(step, phase, fault, timeoutMs);
      const ctx = { sagaId: this.sagaId, step: step.name, attempt, idempotencyKey: idempotencyKey(this.sagaId, step.name, phase), actionKey: idempotencyKey(this.sagaId, step.name, 'action'), signal };
      const result = phase === 'action' ? await step.action(this.input, ctx) : await step.compensation(this.input, ctx);
      this.faults.point(`${phase}:${step.name}:after-effect`);
      // The injected hang comes after the effect: the caller cannot know whether it happened.
      if (fault === 'timeout') await this.deps.clock.sleep(timeoutMs * 2, signal);
      return result;
    });
  }

  private timeoutOf(step: Step<I>): number {
    return step.timeoutMs ?? this.def.timeoutMs;
  }

  // ---- the log --------------------------------------------------------------------------

  private event(i: number, phase: Phase, event: StepEvent['event'], attempt: number, extra: Partial<StepEvent> = {}): StepEvent {
    return { sagaId: this.sagaId, step: this.def.steps[i]!.name, stepIndex: i, phase, event, attempt, at: this.deps.clock.now(), ...extra };
  }

  /** Commit what is pending in one transaction, then log it (a log line never runs ahead of the database). */
  private async flush(crashPoint?: string): Promise<BatchResult> {
    const { store, clock, owner, leaseMs } = this.deps;
    const ops = this.pending;
    this.pending = [];
    const create = this.create;
    this.create = undefined;
    const result = await store.commit({
      sagaId: this.sagaId,
      owner,
      leaseUntil: clock.now() + leaseMs,
      ops,
      ...(create === undefined ? {} : { create }),
      ...(crashPoint === undefined ? {} : { beforeCommit: () => this.faults.point(crashPoint) }),
    });
    // The batch read the cancel request in its transaction: fresh as of this commit.
    if (create === undefined) this.cancelStale = false;
    if (result.cancel !== undefined) this.cancel = result.cancel;
    const record = () => {
      for (const ev of result.events) {
        this.states[ev.stepIndex] = applyEvent(this.states[ev.stepIndex] ?? initialStepState(), ev);
        this.trace.recorded(ev);
        logStepEvent(this.log, this.def.name, ev);
      }
    };
    if (this.log.together === undefined || result.events.length < 2) record();
    else this.log.together(record);
    if (result.failed) {
      this.noteFailure(result.failed.step, result.failed.error);
      this.status = 'compensating';
    }
    return result;
  }

  // ---- ownership ------------------------------------------------------------------------

  /** While the saga waits on a slow call or a backoff, keep its lease alive (docs/guarantees.md, rule 7). */
  private startLeaseRenewal(): void {
    const { store, owner, clock, leaseMs } = this.deps;
    this.leaseTimer = setInterval(() => {
      store.renewLease(this.sagaId, owner, clock.now() + leaseMs).catch(() => undefined);
    }, Math.max(50, Math.floor(leaseMs / 3)));
    this.leaseTimer.unref();
  }
}

