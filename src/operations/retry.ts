import { recoverSaga, type DefinitionRegistry, type RecoveryDeps } from '../engine/recovery.js';
import type { SagaOutcome } from '../engine/runner.js';
import type { SagaStatus, SagaStore } from '../engine/store.js';
import { SagaError } from '../errors.js';
import { requireSaga, type SagaSource } from './find-saga.js';

/**
 * `saga retry` (and, later, `POST /api/sagas/:id/retry`): drive one saga that nobody is driving
 * to an end now, typically a stuck one whose cause was fixed. It is taken over as recovery takes
 * a saga over (a conditional update: of two retries only one drives it) and its failed
 * compensations run again with a fresh budget. Unlike `saga recover`, no other saga is touched.
 */
export interface RetryTarget extends SagaSource {
  readonly store: SagaStore;
  readonly definitions: DefinitionRegistry;
}

export interface RetryResult {
  readonly sagaId: string;
  /** The status it was in when taken over (`stuck`, or an abandoned `running`/`compensating`). */
  readonly from: SagaStatus;
  readonly direction: 'forward' | 'backward';
  readonly outcome: SagaOutcome;
}

/**
 * Refuses, with the reason and what to do instead: a saga that ended (`saga_ended`, exit 2), one
 * a live owner drives or another process just took (`saga_busy`, exit 2), one this version
 * cannot drive (`saga_undrivable`, exit 4). Otherwise returns how it ended: `stuck` again when a
 * compensation still fails.
 */
export async function retrySaga(target: RetryTarget, given: string, deps: RecoveryDeps): Promise<RetryResult> {
  const saga = await requireSaga(target, given);
  if (saga.status === 'completed' || saga.status === 'compensated') {
    const when = saga.endedAt === null ? '' : ` at ${new Date(saga.endedAt).toISOString()}`;
    throw new SagaError('saga_ended', `saga ${saga.sagaId} already ended ${saga.status}${when}: there is nothing to retry (see \`saga show ${saga.sagaId}\`)`);
  }
  const result = await recoverSaga(saga, target.definitions, deps);
  switch (result.action) {
    case 'recovered':
      return { sagaId: saga.sagaId, from: saga.status, direction: result.direction, outcome: result.outcome };
    case 'owned': {
      const lease = saga.leaseUntil === null ? '' : `, lease until ${new Date(saga.leaseUntil).toISOString()}`;
      throw new SagaError(
        'saga_busy',
        `saga ${saga.sagaId} is ${saga.status} and its owner is alive (pid ${saga.ownerPid ?? '?'} on ${saga.ownerHost ?? '?'}${lease}): it is being driven, not stuck; follow it with \`saga show ${saga.sagaId}\`, or \`saga cancel ${saga.sagaId}\` to roll it back`,
      );
    }
    case 'taken-by-another':
      throw new SagaError('saga_busy', `another process took saga ${saga.sagaId} over just now and is driving it: follow it with \`saga show ${saga.sagaId}\``);
    case 'damaged':
    case 'unknown-definition':
      throw new SagaError('saga_undrivable', `saga ${saga.sagaId} cannot be driven here: ${result.error}; see \`saga show ${saga.sagaId}\``);
    case 'failed':
      throw new Error(result.error);
  }
}
