import type { Phase, SqlWrite } from './definition.js';

/**
 * What the engine needs from storage: a durable saga log plus a way to commit business writes
 * atomically with log records. SQLite implements it today; the engine never learns which
 * database it talks to.
 */
export const SagaStatus = {
  running: 'running',
  compensating: 'compensating',
  completed: 'completed',
  compensated: 'compensated',
  stuck: 'stuck',
} as const;
export type SagaStatus = (typeof SagaStatus)[keyof typeof SagaStatus];

export const TERMINAL_STATUSES: readonly SagaStatus[] = ['completed', 'compensated'];
export function isTerminal(status: SagaStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export type StepEventKind = 'started' | 'succeeded' | 'failed' | 'retrying';
export type ErrorKind = 'permanent' | 'transient' | 'timeout';

/** One transition of one attempt of an action or a compensation: a row of the saga log. */
export interface StepEvent {
  readonly sagaId: string;
  readonly step: string;
  readonly stepIndex: number;
  readonly phase: Phase;
  readonly event: StepEventKind;
  readonly attempt: number;
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly durationMs?: number;
  readonly error?: string;
  readonly errorKind?: ErrorKind;
  /** On `failed`: the effect may have happened (docs/guarantees.md, rule 4). */
  readonly uncertain?: boolean;
  /** On `retrying`: how long the engine waits before the next attempt. */
  readonly delayMs?: number;
  readonly idempotencyKey?: string;
}

export interface Owner {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  /** Where `pid` names this process: the kernel's boot id and PID namespace; null when unknown. */
  readonly pidScope: string | null;
  /** When the process started (clock ticks since boot), to tell it from a later one with its pid. */
  readonly startedAt: number | null;
}

/** Why a saga was abandoned, so taken over: its owner provably died, its lease ran out, or it had no owner. */
export type TakeOverReason = 'owner-died' | 'lease-expired' | 'no-owner';

/** One take-over, recorded in the same transaction as the take-over itself. */
export interface TakeOver {
  readonly sagaId: string;
  readonly at: number;
  readonly reason: TakeOverReason;
  /** The saga's status when it was taken over. */
  readonly status: SagaStatus;
  readonly owner: { readonly id: string; readonly host: string | null; readonly pid: number | null };
  readonly previousOwner: { readonly id: string | null; readonly host: string | null; readonly pid: number | null; readonly leaseUntil: number | null };
}

/** A durable request to cancel a saga: who asked (`user@host`, or what a server says) and when. */
export interface CancelRequest {
  readonly at: number;
  readonly by: string;
}

export interface SagaRecord {
  readonly sagaId: string;
  readonly definition: string;
  /** Undefined when the stored input cannot be read (see `damage`). */
  readonly input: unknown;
  /** Why this row cannot be driven (its stored input is not JSON), or null: a value, never a throw. */
  readonly damage: string | null;
  readonly status: SagaStatus;
  readonly idempotencyKey: string | null;
  readonly requestHash: string | null;
  readonly ownerId: string | null;
  readonly ownerHost: string | null;
  readonly ownerPid: number | null;
  readonly ownerPidScope: string | null;
  readonly ownerStartedAt: number | null;
  readonly leaseUntil: number | null;
  readonly failedStep: string | null;
  readonly error: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly endedAt: number | null;
  /** Set once a cancel was recorded while the saga was running (see `SagaStore.requestCancel`). */
  readonly cancelRequestedAt: number | null;
  readonly cancelRequestedBy: string | null;
  /** The W3C traceparent of the trace the saga started in, or null when it was not traced (src/engine/tracing.ts). */
  readonly traceContext: string | null;
}

export interface NewSaga {
  readonly sagaId: string;
  readonly definition: string;
  readonly input: unknown;
  readonly idempotencyKey?: string;
  readonly requestHash?: string;
  readonly createdAt: number;
  readonly traceContext?: string;
}

export type BatchOp =
  /** Append one log record. */
  | { readonly op: 'event'; readonly event: StepEvent }
  /**
   * Run one local action or compensation: a `started` record, the writes, a `succeeded` record,
   * all or nothing. When a write's guard fails, its writes are undone, a permanent `failed`
   * record is appended instead and the batch stops there.
   */
  | {
      readonly op: 'local';
      readonly step: string;
      readonly stepIndex: number;
      readonly phase: Phase;
      readonly attempt: number;
      /** When the engine reached the step (its `started` time). */
      readonly at: number;
      readonly writes: readonly SqlWrite[];
      /**
       * The engine did not read the saga's cancel request before this step (it is queued behind
       * an external call's outcome): when the batch finds one, the step is left out, as a step
       * that never ran (rule 11), and every other op is applied.
       */
      readonly unlessCancelled?: boolean;
    }
  /** Business writes that go with the record before them (an external step's outcome). */
  | { readonly op: 'writes'; readonly writes: readonly SqlWrite[] }
  | {
      readonly op: 'status';
      readonly status: SagaStatus;
      readonly failedStep?: string;
      readonly error?: string;
    };

/** Everything here commits in one transaction, or nothing does. */
export interface Batch {
  readonly sagaId: string;
  readonly owner: Owner;
  readonly leaseUntil: number;
  /** Insert the saga row first (the batch that starts a saga). */
  readonly create?: NewSaga;
  readonly ops: readonly BatchOp[];
  /** Called inside the transaction just before it commits: the engine's crash fault point. */
  readonly beforeCommit?: () => void;
}

export interface BatchResult {
  /** The log records this batch appended, in order (to log them once they are durable). */
  readonly events: readonly StepEvent[];
  /** Set when a local step's guard failed; the ops after it were not applied. */
  readonly failed?: { readonly stepIndex: number; readonly step: string; readonly error: string };
  /**
   * A cancel request this batch found on the saga (read in its transaction). When it finds one,
   * a `completed` status op in it is not applied: a cancel recorded first wins over completion
   * (docs/guarantees.md, rule 11); every other op is.
   */
  readonly cancel?: CancelRequest;
  /** The first step left out because of `cancel` (see `unlessCancelled`). */
  readonly leftOut?: { readonly stepIndex: number; readonly step: string };
}

export interface SagaStore {
  /**
   * Told when this process starts and stops driving a saga. A store that lets the commits of
   * concurrent sagas share a transaction (docs/guarantees.md, rule 12) commits at once while only
   * one saga is in flight, so a lone saga never waits for company.
   */
  readonly inFlight?: { enter(): void; leave(): void };
  /** Throws `LostOwnershipError` when `owner` does not own the saga any more. */
  commit(batch: Batch): Promise<BatchResult>;
  renewLease(sagaId: string, owner: Owner, leaseUntil: number): Promise<boolean>;
  getSaga(sagaId: string): Promise<SagaRecord | undefined>;
  getEvents(sagaId: string): Promise<StepEvent[]>;
  findByIdempotencyKey(key: string): Promise<SagaRecord | undefined>;
  /** Sagas that are not terminal: the candidates for recovery. */
  listUnfinished(): Promise<SagaRecord[]>;
  /**
   * Take a saga over, only if it is still as `expected` says (same owner, same lease): a
   * conditional update, so of two recoverers only one wins (rule 7).
   */
  takeOver(
    sagaId: string,
    expected: Pick<SagaRecord, 'ownerId' | 'ownerHost' | 'ownerPid' | 'leaseUntil' | 'status'>,
    owner: Owner,
    leaseUntil: number,
    reason: TakeOverReason,
  ): Promise<boolean>;
  /** Every take-over of the saga, oldest first: who took it from whom, when and why. */
  getTakeOvers(sagaId: string): Promise<TakeOver[]>;
  /**
   * Records a cancel request, only if the saga is `running` and has none yet (a conditional
   * update: a saga that completed first refuses it). True when this call recorded it.
   */
  requestCancel(sagaId: string, request: CancelRequest): Promise<boolean>;
  /** The saga's cancel request, if any: what its owner reads at a decision point. */
  getCancelRequest(sagaId: string): Promise<CancelRequest | undefined>;
}
