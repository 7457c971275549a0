import type { EngineLogger } from '../engine/runner.js';
import { isAbandoned, type LocalMachine } from '../engine/recovery.js';
import type { SagaRecord, SagaStatus, SagaStore } from '../engine/store.js';
import { SagaError } from '../errors.js';
import { requireSaga, type SagaSource } from './find-saga.js';

/**
 * `saga cancel` (and, later, `POST /api/sagas/:id/cancel`): ask a running saga to roll back
 * (docs/guarantees.md, rule 11). The request is recorded on the saga's row before this returns;
 * the saga's owner honours it at its next decision point, or, if the owner is gone, the next
 * recovery drives the saga backward. Nothing here waits for the rollback.
 */
export interface CancelTarget extends SagaSource {
  readonly store: Pick<SagaStore, 'getSaga' | 'requestCancel'>;
}

export interface CancelOptions {
  /** Who asks: `user@host` for the CLI (engine/operator.ts). */
  readonly by: string;
  readonly now: number;
  /** To tell whether the saga's owner is alive, so the answer says who will roll it back. */
  readonly machine: LocalMachine;
  readonly logger?: EngineLogger;
}

export interface CancelResult {
  readonly sagaId: string;
  /**
   * `recorded`: this call recorded the request. `already-requested`: an earlier cancel is
   * recorded (and still to be honoured). `already-rolling-back`: the saga is compensating or
   * stuck, so it will not complete whatever happens; nothing was recorded.
   */
  readonly outcome: 'recorded' | 'already-requested' | 'already-rolling-back';
  readonly status: SagaStatus;
  readonly cancelRequestedAt: number | null;
  readonly cancelRequestedBy: string | null;
  /** A live process drives the saga and will honour the cancel; false: `saga recover` will. */
  readonly ownerAlive: boolean;
}

/**
 * Resolves `given` (a full or short id, as `saga show` takes), records the cancel when the saga
 * is running, and says what will happen. A saga that already ended refuses (`saga_ended`,
 * exit 2): when it completed first, completion won the race and the log (and saga.log) says so.
 */
export async function cancelSaga(target: CancelTarget, given: string, opts: CancelOptions): Promise<CancelResult> {
  const found = await requireSaga(target, given);
  let saga = found;
  let recorded = false;
  if (saga.status === 'running') {
    recorded = await target.store.requestCancel(saga.sagaId, { at: opts.now, by: opts.by });
    // Re-read: when not recorded, the saga moved on (completed, or started rolling back) or was
    // cancelled by someone else in the meantime.
    saga = (await target.store.getSaga(saga.sagaId)) ?? saga;
  }
  if (saga.status === 'completed' || saga.status === 'compensated') {
    opts.logger?.warn({ sagaId: saga.sagaId, event: 'cancel-refused', status: saga.status, by: opts.by }, `cancel of saga ${saga.sagaId} by ${opts.by} refused: ${whyEnded(saga)}`);
    throw new SagaError('saga_ended', `saga ${saga.sagaId} ${whyEnded(saga)}: ${saga.status === 'completed' ? 'a completed saga cannot be cancelled; its effects stand' : 'there is nothing left to cancel'} (see \`saga show ${saga.sagaId}\`)`);
  }
  if (recorded) {
    opts.logger?.info({ sagaId: saga.sagaId, event: 'cancel-requested', by: opts.by, status: saga.status }, `cancel of saga ${saga.sagaId} requested by ${opts.by}`);
  }
  const outcome: CancelResult['outcome'] = recorded ? 'recorded' : saga.status === 'running' ? 'already-requested' : 'already-rolling-back';
  return {
    sagaId: saga.sagaId,
    outcome,
    status: saga.status,
    cancelRequestedAt: saga.cancelRequestedAt,
    cancelRequestedBy: saga.cancelRequestedBy,
    ownerAlive: saga.status !== 'stuck' && !isAbandoned(saga, opts.now, opts.machine),
  };
}

function whyEnded(saga: SagaRecord): string {
  const when = saga.endedAt === null ? '' : ` at ${new Date(saga.endedAt).toISOString()}`;
  if (saga.status === 'completed') return `already completed${when}`;
  const cancelled = saga.cancelRequestedAt === null ? '' : `, cancelled by ${saga.cancelRequestedBy ?? 'unknown'}`;
  return `was already rolled back (compensated)${when}${cancelled}`;
}
