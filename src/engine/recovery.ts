import type { SagaDefinition } from './definition.js';
import { LostOwnershipError } from './errors.js';
import { noFaults } from './faults.js';
import { resumeSaga, type EngineDeps, type SagaOutcome } from './runner.js';
import { planRecovery, foldEvents } from './step-state.js';
import type { SagaRecord } from './store.js';

/** Whether nobody is working on a saga any more (rule 7). Pure: liveness of a pid is passed in. */
export function isAbandoned(
  saga: Pick<SagaRecord, 'status' | 'ownerId' | 'ownerHost' | 'ownerPid' | 'leaseUntil'>,
  now: number,
  host: string,
  pidAlive: (pid: number) => boolean,
): boolean {
  if (saga.status === 'completed' || saga.status === 'compensated') return false;
  if (saga.ownerId === null || saga.leaseUntil === null) return true;
  if (saga.leaseUntil < now) return true;
  // On this host we can see the owner died at once, without waiting out its lease.
  return saga.ownerHost === host && saga.ownerPid !== null && !pidAlive(saga.ownerPid);
}

/** Signal 0 checks that a process exists without touching it; EPERM means it exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type RecoveryResult =
  | { readonly sagaId: string; readonly from: SagaRecord['status']; readonly action: 'recovered'; readonly direction: 'forward' | 'backward'; readonly outcome: SagaOutcome }
  | { readonly sagaId: string; readonly from: SagaRecord['status']; readonly action: 'owned' | 'taken-by-another' | 'unknown-definition' }
  | { readonly sagaId: string; readonly from: SagaRecord['status']; readonly action: 'failed'; readonly error: string };

export interface RecoveryDeps extends Omit<EngineDeps, 'faults'> {
  readonly pidAlive: (pid: number) => boolean;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type DefinitionRegistry = ReadonlyMap<string, SagaDefinition<any>>;

/**
 * Takes over one saga if it is abandoned (a conditional update: of two recoverers only one
 * wins) and drives it to an end: forward where it can still complete, backward otherwise.
 * Injected faults never apply here (rule 8).
 */
export async function recoverSaga(saga: SagaRecord, definitions: DefinitionRegistry, deps: RecoveryDeps, signal?: AbortSignal): Promise<RecoveryResult> {
  const base = { sagaId: saga.sagaId, from: saga.status };
  const def = definitions.get(saga.definition);
  if (def === undefined) return { ...base, action: 'unknown-definition' };
  if (!isAbandoned(saga, deps.clock.now(), deps.owner.host, deps.pidAlive)) return { ...base, action: 'owned' };
  def.parseInput(saga.input); // a row that cannot be driven is refused before it is taken over
  if (!(await deps.store.takeOver(saga.sagaId, saga, deps.owner, deps.clock.now() + deps.leaseMs))) {
    return { ...base, action: 'taken-by-another' };
  }
  deps.logger.info({ sagaId: saga.sagaId, saga: def.name, event: 'taken-over', previousOwner: saga.ownerId, status: saga.status }, `taking over saga ${saga.sagaId} (${saga.status})`);
  const events = await deps.store.getEvents(saga.sagaId);
  const plan = planRecovery(saga.status as 'running' | 'compensating' | 'stuck', foldEvents(def.steps.length, events));
  try {
    // Never the faults of whoever asked for the recovery: they belong to the command that injected them.
    const outcome = await resumeSaga(def, saga, events, plan, { ...deps, faults: noFaults }, signal);
    return { ...base, action: 'recovered', direction: plan.direction, outcome };
  } catch (err) {
    if (err instanceof LostOwnershipError) return { ...base, action: 'taken-by-another' };
    throw err;
  }
}

/**
 * `saga recover`: every unfinished saga with no live owner, oldest first; stops between sagas
 * once `signal` aborts. One saga that cannot be driven (a bad row) is reported and skipped, not
 * allowed to block the others. `skipStuck`: the watch daemon leaves stuck sagas to an explicit
 * `saga recover`, instead of spending their compensation budget again on every pass.
 */
export async function recoverAbandonedSagas(
  definitions: DefinitionRegistry,
  deps: RecoveryDeps,
  opts: { signal?: AbortSignal; skipStuck?: boolean } = {},
): Promise<RecoveryResult[]> {
  const results: RecoveryResult[] = [];
  for (const saga of await deps.store.listUnfinished()) {
    if (opts.signal?.aborted) break;
    if (opts.skipStuck && saga.status === 'stuck') continue;
    try {
      results.push(await recoverSaga(saga, definitions, deps));
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      deps.logger.error({ sagaId: saga.sagaId, event: 'recover-failed', err: { message: error } }, `could not recover saga ${saga.sagaId}: ${error}`);
      results.push({ sagaId: saga.sagaId, from: saga.status, action: 'failed', error });
    }
  }
  return results;
}
