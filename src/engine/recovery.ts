import type { SagaDefinition } from './definition.js';
import { LostOwnershipError } from './errors.js';
import { noFaults } from './faults.js';
import { resumeSaga, type EngineDeps, type SagaOutcome } from './runner.js';
import { planRecovery, foldEvents } from './step-state.js';
import type { SagaRecord, TakeOverReason } from './store.js';

/** What this process can see of another process on its own machine (process-identity.ts). */
export type ProcessSeen = { readonly alive: false } | { readonly alive: true; readonly startedAt: number | null };

/** The machine this process runs on, as far as it can tell: the inputs of `isAbandoned`. */
export interface LocalMachine {
  readonly host: string;
  /** Boot id and PID namespace (where a pid means one process), or null when unknown. */
  readonly pidScope: string | null;
  readonly process: (pid: number) => ProcessSeen;
}

type OwnerFields = Pick<SagaRecord, 'status' | 'ownerId' | 'ownerHost' | 'ownerPid' | 'ownerPidScope' | 'ownerStartedAt' | 'leaseUntil'>;

/**
 * Whether nobody is working on a saga any more (docs/guarantees.md, rule 7): it has no owner, its lease expired, or
 * its owner is provably gone. Pure: what the machine shows of a process is passed in.
 */
export function isAbandoned(saga: OwnerFields, now: number, machine: LocalMachine): boolean {
  return whyAbandoned(saga, now, machine) !== undefined;
}

/** Why nobody is working on a saga any more, or undefined when somebody may be. */
export function whyAbandoned(saga: OwnerFields, now: number, machine: LocalMachine): TakeOverReason | undefined {
  if (saga.status === 'completed' || saga.status === 'compensated') return undefined;
  if (saga.ownerId === null || saga.leaseUntil === null) return 'no-owner';
  // A dead owner is the better story when both hold: it is why the lease was not renewed.
  if (ownerProvablyGone(saga, machine)) return 'owner-died';
  if (saga.leaseUntil < now) return 'lease-expired';
  return undefined;
}

/**
 * Only a process in the owner's own PID namespace on the same running kernel can see that the
 * owner died; anyone else (another host, another container with the same hostname, a machine
 * that cannot read /proc) cannot tell a dead owner from a live one and must wait for the lease.
 */
export function ownerProvablyGone(saga: Pick<SagaRecord, 'ownerHost' | 'ownerPid' | 'ownerPidScope' | 'ownerStartedAt'>, machine: LocalMachine): boolean {
  if (saga.ownerPid === null || saga.ownerPidScope === null || machine.pidScope === null) return false;
  if (saga.ownerHost !== machine.host || saga.ownerPidScope !== machine.pidScope) return false;
  const seen = machine.process(saga.ownerPid);
  if (!seen.alive) return true;
  // The pid is taken, by a process that started at another time: the owner died and its pid was reused.
  return saga.ownerStartedAt !== null && seen.startedAt !== null && seen.startedAt !== saga.ownerStartedAt;
}

export type RecoveryResult =
  | { readonly sagaId: string; readonly from: SagaRecord['status']; readonly action: 'recovered'; readonly direction: 'forward' | 'backward'; readonly outcome: SagaOutcome }
  | { readonly sagaId: string; readonly from: SagaRecord['status']; readonly action: 'owned' | 'taken-by-another' }
  /** Abandoned, but this process cannot drive it: its row is damaged, or its definition unknown here. */
  | { readonly sagaId: string; readonly from: SagaRecord['status']; readonly action: 'damaged' | 'unknown-definition'; readonly error: string }
  | { readonly sagaId: string; readonly from: SagaRecord['status']; readonly action: 'failed'; readonly error: string };

export interface RecoveryDeps extends Omit<EngineDeps, 'faults'> {
  readonly machine: LocalMachine;
}

export type DefinitionRegistry = ReadonlyMap<string, SagaDefinition<unknown>>;

/**
 * Takes over one saga if it is abandoned (a conditional update: of two recoverers only one
 * wins) and drives it to an end: forward where it can still complete, backward otherwise.
 * Injected faults never apply here (rule 8).
 */
export async function recoverSaga(saga: SagaRecord, definitions: DefinitionRegistry, deps: RecoveryDeps, signal?: AbortSignal): Promise<RecoveryResult> {
  const base = { sagaId: saga.sagaId, from: saga.status };
  const reason = whyAbandoned(saga, deps.clock.now(), deps.machine);
  if (reason === undefined) return { ...base, action: 'owned' };
  // A saga this process cannot drive is refused before it is taken over: it stays as it is.
  const def = definitions.get(saga.definition);
  if (def === undefined) return { ...base, action: 'unknown-definition', error: `its definition "${saga.definition}" is not known to this saga version` };
  if (saga.damage !== null) return { ...base, action: 'damaged', error: saga.damage };
  try {
    def.parseInput(saga.input);
  } catch (err) {
    return { ...base, action: 'damaged', error: `its stored input does not fit ${def.name}: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (!(await deps.store.takeOver(saga.sagaId, saga, deps.owner, deps.clock.now() + deps.leaseMs, reason))) {
    return { ...base, action: 'taken-by-another' };
  }
  deps.logger.info({ sagaId: saga.sagaId, saga: def.name, event: 'taken-over', previousOwner: saga.ownerId, reason, status: saga.status }, `taking over saga ${saga.sagaId} (${saga.status}, ${reason})`);
  const events = await deps.store.getEvents(saga.sagaId);
  const plan = planRecovery(saga.status as 'running' | 'compensating' | 'stuck', foldEvents(def.steps.length, events), saga.cancelRequestedAt !== null);
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
