import type { SagaRecord, SagaStatus, StepEvent, TakeOver } from '../engine/store.js';

/** Rows of the saga log as both databases return them, and their mapping to engine records. */
export interface SagaRow {
  saga_id: string;
  definition: string;
  input: string;
  status: SagaStatus;
  idempotency_key: string | null;
  request_hash: string | null;
  owner_id: string | null;
  owner_host: string | null;
  owner_pid: number | null;
  owner_pid_scope: string | null;
  owner_started_at: number | null;
  lease_until: number | null;
  failed_step: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
  cancel_requested_at: number | null;
  cancel_requested_by: string | null;
  trace_context: string | null;
}

/** The stored input, or why it cannot be read: one damaged row must not stop reading the others. */
export function parseStoredInput(text: string): { input: unknown; damage: string | null } {
  try {
    return { input: JSON.parse(text) as unknown, damage: null };
  } catch (err) {
    return { input: undefined, damage: `its stored input is not valid JSON (${(err as Error).message})` };
  }
}

export function toSagaRecord(r: SagaRow): SagaRecord {
  return {
    sagaId: r.saga_id,
    definition: r.definition,
    ...parseStoredInput(r.input),
    idempotencyKey: r.idempotency_key,
    requestHash: r.request_hash,
    ...toOwnerFields(r),
    failedStep: r.failed_step,
    error: r.error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    endedAt: r.ended_at,
    cancelRequestedAt: r.cancel_requested_at,
    cancelRequestedBy: r.cancel_requested_by,
    // Undefined only in a row read before migration 0006 ran (a read-only snapshot is migrated too).
    traceContext: r.trace_context ?? null,
  };
}

export interface EventRow {
  saga_id: string;
  step: string;
  step_index: number;
  phase: StepEvent['phase'];
  event: StepEvent['event'];
  attempt: number;
  at: number;
  duration_ms: number | null;
  error: string | null;
  error_kind: StepEvent['errorKind'] | null;
  uncertain: number | null;
  delay_ms: number | null;
  idempotency_key: string | null;
}

export function toStepEvent(r: EventRow): StepEvent {
  return {
    sagaId: r.saga_id,
    step: r.step,
    stepIndex: r.step_index,
    phase: r.phase,
    event: r.event,
    attempt: r.attempt,
    at: r.at,
    ...(r.duration_ms === null ? {} : { durationMs: r.duration_ms }),
    ...(r.error === null ? {} : { error: r.error }),
    ...(r.error_kind === null || r.error_kind === undefined ? {} : { errorKind: r.error_kind }),
    ...(r.uncertain === null ? {} : { uncertain: r.uncertain === 1 }),
    ...(r.delay_ms === null ? {} : { delayMs: r.delay_ms }),
    ...(r.idempotency_key === null ? {} : { idempotencyKey: r.idempotency_key }),
  };
}

/** A saga's status and owner columns, for the places that only ask whether a saga is abandoned. */
export const OWNER_COLUMNS = 'status, owner_id, owner_host, owner_pid, owner_pid_scope, owner_started_at, lease_until';
export type OwnerRow = Pick<SagaRow, 'status' | 'owner_id' | 'owner_host' | 'owner_pid' | 'owner_pid_scope' | 'owner_started_at' | 'lease_until'>;

export function toOwnerFields(r: OwnerRow): Pick<SagaRecord, 'status' | 'ownerId' | 'ownerHost' | 'ownerPid' | 'ownerPidScope' | 'ownerStartedAt' | 'leaseUntil'> {
  return { status: r.status, ownerId: r.owner_id, ownerHost: r.owner_host, ownerPid: r.owner_pid, ownerPidScope: r.owner_pid_scope, ownerStartedAt: r.owner_started_at, leaseUntil: r.lease_until };
}

export interface TakeOverRow {
  saga_id: string;
  at: number;
  reason: TakeOver['reason'];
  status: SagaStatus;
  owner_id: string;
  owner_host: string | null;
  owner_pid: number | null;
  previous_owner_id: string | null;
  previous_owner_host: string | null;
  previous_owner_pid: number | null;
  previous_lease_until: number | null;
}

export function toTakeOver(r: TakeOverRow): TakeOver {
  return {
    sagaId: r.saga_id,
    at: r.at,
    reason: r.reason,
    status: r.status,
    owner: { id: r.owner_id, host: r.owner_host, pid: r.owner_pid },
    previousOwner: { id: r.previous_owner_id, host: r.previous_owner_host, pid: r.previous_owner_pid, leaseUntil: r.previous_lease_until },
  };
}
