/**
 * How a step failed decides what the engine does next (docs/guarantees.md, rule 6):
 * a permanent failure is not retried, a transient one is, with backoff, until the step's budget
 * is spent. `uncertain` says whether the effect may have happened (rule 4): a permanent failure
 * is raised before any effect; a timeout or a dropped connection may hide one.
 */
export class StepFailure extends Error {
  readonly transient: boolean;
  readonly uncertain: boolean;
  constructor(message: string, opts: { transient: boolean; uncertain: boolean; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.transient = opts.transient;
    this.uncertain = opts.uncertain;
  }
}

/** Will not succeed if tried again (declined card, out of stock); raised before any effect. */
export class PermanentError extends StepFailure {
  constructor(message: string) {
    super(message, { transient: false, uncertain: false });
  }
}

/** May succeed if tried again (a lock, a flaky network). */
export class TransientError extends StepFailure {
  constructor(message: string, uncertain = false) {
    super(message, { transient: true, uncertain });
  }
}

/** The step did not answer within its timeout: retried, and its effect is unknown. */
export class StepTimeoutError extends StepFailure {
  constructor(step: string, timeoutMs: number) {
    super(`${step} timed out after ${timeoutMs} ms`, { transient: true, uncertain: true });
  }
}

/** Errors a step throws that are not StepFailures: treat as transient and uncertain. */
export function asStepFailure(err: unknown): StepFailure {
  if (err instanceof StepFailure) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StepFailure(message, { transient: true, uncertain: true, cause: err });
}

/** Another process took the saga over (our lease lapsed): stop touching it at once (rule 7). */
export class LostOwnershipError extends Error {
  constructor(readonly sagaId: string) {
    super(`saga ${sagaId} is now owned by another process; this process stopped driving it`);
    this.name = 'LostOwnershipError';
  }
}

/** A saga with this idempotency key exists already (another process may have just made it). */
export class DuplicateSagaKeyError extends Error {
  constructor(readonly key: string) {
    super(`a saga with idempotency key ${key} exists already`);
    this.name = 'DuplicateSagaKeyError';
  }
}
