import type { SagaDefinition } from './definition.js';
import { DuplicateSagaKeyError, LostOwnershipError } from './errors.js';
import { localMachine } from './process-identity.js';
import { isAbandoned, recoverSaga, type DefinitionRegistry } from './recovery.js';
import { startSaga, type EngineDeps, type SagaOutcome } from './runner.js';
import { foldEvents } from './step-state.js';
import { isTerminal, type SagaRecord } from './store.js';

/**
 * Starting a saga at most once per idempotency key, and the other ways a caller can end up
 * waiting on a saga it did not finish itself. Domain-free: a key and a hash of the request are
 * all it knows.
 */
export class IdempotencyConflictError extends Error {
  constructor(readonly key: string, readonly previousRequest: string | null) {
    super(`idempotency key ${key} was already used for another request (${previousRequest ?? 'unknown'})`);
    this.name = 'IdempotencyConflictError';
  }
}

/** The caller's signal aborted while it waited on a saga another process is driving. */
export class WaitInterruptedError extends Error {
  constructor(readonly sagaId: string) {
    super(`stopped waiting for saga ${sagaId}; its owner goes on driving it (see \`saga show ${sagaId}\`)`);
    this.name = 'WaitInterruptedError';
  }
}

/** The saga was deleted while this process waited on it (a reset of the database). */
export class SagaVanishedError extends Error {
  constructor(readonly sagaId: string) {
    super(`saga ${sagaId} no longer exists (was the database reset while it ran?)`);
    this.name = 'SagaVanishedError';
  }
}

/** The saga this call waits on was abandoned and this process cannot drive it (a damaged row). */
export class SagaUndrivableError extends Error {
  constructor(readonly sagaId: string, readonly reason: string) {
    super(`saga ${sagaId} cannot be driven: ${reason}; see \`saga show ${sagaId}\``);
    this.name = 'SagaUndrivableError';
  }
}

export interface RunOnceOptions {
  readonly sagaId: string;
  readonly signal?: AbortSignal;
  readonly idempotencyKey?: string;
  /** What the key stands for; the same key with another request is refused. */
  readonly requestHash?: string;
  /** Told when this process lost its saga to a recoverer and now waits for the outcome. */
  readonly onTakenOver?: (sagaId: string) => void;
  /** Told which saga this call is about once it knows (an earlier one's, for a replayed key). */
  readonly onSaga?: (sagaId: string) => void;
  /** Told once when this call starts waiting for a saga another live process drives. */
  readonly onWaiting?: (sagaId: string) => void;
  /** A W3C traceparent for the new saga's trace to continue (an incoming request's), when tracing is on. */
  readonly traceParent?: string;
}

export interface RunOnceResult {
  readonly outcome: SagaOutcome;
  /** The key matched an earlier saga: this call did nothing new and reports that one. */
  readonly replayed: boolean;
}

/**
 * Runs a new saga, or, when its key was seen before with the same request, reports that saga's
 * outcome: waiting while its owner lives, taking it over (without this call's injected faults)
 * when it was abandoned. Two callers racing with one key get one saga (the store's unique key
 * decides). A caller whose lease was taken while it stalled waits for the new owner's outcome.
 */
export async function runSagaOnce<I>(def: SagaDefinition<I>, input: I, definitions: DefinitionRegistry, deps: EngineDeps, opts: RunOnceOptions): Promise<RunOnceResult> {
  const { idempotencyKey: key, requestHash } = opts;
  const earlier = key === undefined ? undefined : await sagaForKey(deps, key, requestHash);
  if (earlier !== undefined) return { outcome: await outcomeOf(def, earlier, definitions, deps, opts), replayed: true };
  // A test fault point: widens the race between this lookup and the insert below.
  const hold = key === undefined ? 0 : (deps.faults?.delayMs('key:unused') ?? 0);
  if (hold > 0) await deps.clock.sleep(hold, opts.signal);
  try {
    const outcome = await startSaga(def, input, deps, {
      sagaId: opts.sagaId,
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      ...(key === undefined ? {} : { idempotencyKey: key }),
      ...(requestHash === undefined ? {} : { requestHash }),
      ...(opts.traceParent === undefined ? {} : { traceParent: opts.traceParent }),
    });
    return { outcome, replayed: false };
  } catch (err) {
    if (err instanceof DuplicateSagaKeyError && key !== undefined) {
      const winner = await sagaForKey(deps, key, requestHash);
      if (winner === undefined) throw err;
      return { outcome: await outcomeOf(def, winner, definitions, deps, opts), replayed: true };
    }
    if (err instanceof LostOwnershipError) {
      opts.onTakenOver?.(opts.sagaId);
      const current = await deps.store.getSaga(opts.sagaId);
      if (current === undefined) throw new SagaVanishedError(opts.sagaId);
      return { outcome: await outcomeOf(def, current, definitions, deps, opts), replayed: false };
    }
    throw err;
  }
}

async function sagaForKey(deps: EngineDeps, key: string, requestHash: string | undefined): Promise<SagaRecord | undefined> {
  const existing = await deps.store.findByIdempotencyKey(key);
  if (existing !== undefined && existing.requestHash !== (requestHash ?? null)) throw new IdempotencyConflictError(key, existing.requestHash);
  return existing;
}

/**
 * Until the saga ends: wait while someone owns it, take it over when nobody does (then a signal
 * rolls it back like any checkout of ours). A signal while another process drives it stops the
 * wait, not the saga.
 */
async function outcomeOf<I>(def: SagaDefinition<I>, saga: SagaRecord, definitions: DefinitionRegistry, deps: EngineDeps, opts: RunOnceOptions): Promise<SagaOutcome> {
  const { faults: _theirs, ...withoutFaults } = deps;
  opts.onSaga?.(saga.sagaId);
  const machine = localMachine(deps.owner);
  let current = saga;
  let saidWaiting = false;
  while (!isTerminal(current.status) && current.status !== 'stuck') {
    if (opts.signal?.aborted) throw new WaitInterruptedError(saga.sagaId);
    if (isAbandoned(current, deps.clock.now(), machine)) {
      const result = await recoverSaga(current, definitions, { ...withoutFaults, machine }, opts.signal);
      if (result.action === 'recovered') return result.outcome;
      if (result.action === 'damaged' || result.action === 'unknown-definition') throw new SagaUndrivableError(saga.sagaId, result.error);
    }
    // Owned, or another waiter won the take-over (or holds the row for a moment): wait.
    if (!saidWaiting) opts.onWaiting?.(saga.sagaId);
    saidWaiting = true;
    await deps.clock.sleep(100, opts.signal);
    const latest = await deps.store.getSaga(saga.sagaId);
    if (latest === undefined) throw new SagaVanishedError(saga.sagaId);
    current = latest;
  }
  return {
    sagaId: current.sagaId,
    status: current.status === 'completed' || current.status === 'compensated' ? current.status : 'stuck',
    steps: foldEvents(def.steps.length, await deps.store.getEvents(saga.sagaId)),
    interrupted: false,
    ...(current.cancelRequestedAt !== null && current.status === 'compensated' ? { cancelled: { at: current.cancelRequestedAt, by: current.cancelRequestedBy ?? 'unknown' } } : {}),
    ...(current.failedStep === null ? {} : { failedStep: current.failedStep }),
    ...(current.error === null ? {} : { error: current.error }),
  };
}
