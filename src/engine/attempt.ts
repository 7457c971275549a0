import type { Phase, Step } from './definition.js';
import { PermanentError, StepFailure, StepTimeoutError, TransientError, asStepFailure } from './errors.js';
import type { FaultMode } from './faults.js';

/** One attempt of an action or compensation: its result or its failure, and how long it took. */
export type AttemptResult = { ok: true; result: unknown; durationMs: number } | { ok: false; error: StepFailure; durationMs: number };

/** Thrown by the test crash hook so an in-process test can "die" at a fault point. */
export class SimulatedCrashError extends Error {
  constructor(readonly point: string) {
    super(`simulated crash at ${point}`);
    this.name = 'SimulatedCrashError';
  }
}

/**
 * Runs `call` with a deadline: past `timeoutMs` its signal aborts and the attempt fails with a
 * `StepTimeoutError` (transient and uncertain: the effect may have happened). A simulated crash
 * is not a failure of the step and goes through.
 */
export async function attemptWithTimeout(step: string, timeoutMs: number, call: (signal: AbortSignal) => Promise<unknown>): Promise<AttemptResult> {
  const controller = new AbortController();
  const startedAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new StepTimeoutError(step, timeoutMs));
    }, timeoutMs);
  });
  try {
    const result = await Promise.race([call(controller.signal), deadline]);
    return { ok: true, result, durationMs: elapsedSince(startedAt) };
  } catch (err) {
    if (err instanceof SimulatedCrashError) throw err;
    return { ok: false, error: asStepFailure(err), durationMs: elapsedSince(startedAt) };
  } finally {
    clearTimeout(timer);
  }
}

export function elapsedSince(start: number): number {
  return Math.round((performance.now() - start) * 1000) / 1000;
}

/** The failure an injected fault stands for. */
export function injectedError(step: Step<unknown>, phase: Phase, fault: FaultMode, timeoutMs: number): StepFailure {
  const what = phase === 'action' ? step.name : `compensation of ${step.name}`;
  switch (fault) {
    case 'error':
      return new PermanentError(`injected permanent failure in ${what}`);
    case 'transient':
      return new TransientError(`injected transient failure in ${what}`);
    case 'timeout':
      return new StepTimeoutError(step.name, timeoutMs);
    case 'crash':
      return new PermanentError(`injected crash in ${what}`);
  }
}
