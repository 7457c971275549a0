/**
 * A saga is data: a name and an ordered list of steps, each an action and its compensation.
 * The engine knows nothing of what the steps mean.
 *
 * Two kinds of step (docs/guarantees.md, "Words"):
 * - `local`: its effect is a write to our own database. It is described as SQL writes, not run
 *   as code, so the store can commit the writes and the step's log records in one transaction
 *   (rule 2), and can commit several consecutive local steps in one transaction too.
 * - `external`: its effect happens elsewhere (a payment provider). The engine writes ahead that it
 *   is about to ask (rule 1), calls `action` with an idempotency key (rule 3), then commits
 *   `record(result)` together with the outcome.
 */
export interface SqlWrite {
  /** Portable SQL with `?` placeholders. */
  readonly sql: string;
  readonly params: readonly unknown[];
  /**
   * A guard: when the statement changes a different number of rows, the step fails permanently
   * with this message, and none of its writes happen (for example "out of stock").
   */
  readonly expectChanges?: {
    readonly count: number;
    readonly failure: string;
    /**
     * A query run in the same transaction when the guard fails, and what to say from its one
     * value, so the message can tell what was found ("only 3 left") instead of only what was not.
     */
    readonly explain?: { readonly sql: string; readonly params: readonly unknown[]; readonly say: (found: unknown) => string };
  };
}

export interface RetryPolicy {
  /** Total attempts, the first included. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export interface StepContext {
  readonly sagaId: string;
  readonly step: string;
  readonly attempt: number;
  /** Derived from saga and step (and phase): the same on every retry and after recovery. */
  readonly idempotencyKey: string;
  /** The key the action used: a compensation names the effect it undoes by it. */
  readonly actionKey: string;
  /** Aborted when the step's timeout expires; an external call should give up then. */
  readonly signal: AbortSignal;
}

interface StepCommon {
  readonly name: string;
  /** Overrides of the definition's defaults. */
  readonly retry?: Partial<RetryPolicy>;
  readonly compensationRetry?: Partial<RetryPolicy>;
  readonly timeoutMs?: number;
}

export interface LocalStep<I> extends StepCommon {
  readonly kind: 'local';
  action(input: I, sagaId: string): readonly SqlWrite[];
  /** Must be safe to run twice, and when the action never took effect (rule 3). */
  compensation(input: I, sagaId: string): readonly SqlWrite[];
}

export interface ExternalStep<I, R = unknown, C = unknown> extends StepCommon {
  readonly kind: 'external';
  action(input: I, ctx: StepContext): Promise<R>;
  /** Business writes committed with the action's outcome. */
  record(input: I, sagaId: string, result: R): readonly SqlWrite[];
  /** Must be safe to run twice, and when the action never took effect (rule 3). */
  compensation(input: I, ctx: StepContext): Promise<C>;
  recordCompensation(input: I, sagaId: string, result: C): readonly SqlWrite[];
}

export type Step<I> = LocalStep<I> | ExternalStep<I>;

export interface SagaDefinition<I> {
  readonly name: string;
  readonly steps: readonly Step<I>[];
  readonly retry: RetryPolicy;
  readonly compensationRetry: RetryPolicy;
  readonly timeoutMs: number;
  /** Checks stored input when a saga is recovered; throws if it is not this saga's input. */
  parseInput(raw: unknown): I;
}

export function retryPolicyOf<I>(def: SagaDefinition<I>, step: Step<I>, phase: Phase): RetryPolicy {
  return phase === 'action'
    ? { ...def.retry, ...step.retry }
    : { ...def.compensationRetry, ...step.compensationRetry };
}

export type Phase = 'action' | 'compensation';

export function idempotencyKey(sagaId: string, step: string, phase: Phase): string {
  return phase === 'action' ? `${sagaId}:${step}` : `${sagaId}:${step}:compensate`;
}
