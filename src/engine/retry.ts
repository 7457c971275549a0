import type { RetryPolicy } from './definition.js';

/**
 * Delay before attempt `failedAttempt + 1`: exponential from `baseDelayMs`, capped at
 * `maxDelayMs`, with "equal jitter" (half fixed, half random) so that concurrent sagas that fail
 * together do not retry in lockstep, yet each wait keeps growing.
 */
export function backoffDelay(policy: RetryPolicy, failedAttempt: number, random: () => number): number {
  const exponential = policy.baseDelayMs * 2 ** Math.max(0, failedAttempt - 1);
  const capped = Math.min(policy.maxDelayMs, exponential);
  return Math.round(capped / 2 + random() * (capped / 2));
}

export function validateRetryPolicy(policy: RetryPolicy, what: string): RetryPolicy {
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) {
    throw new RangeError(`${what}: attempts must be a whole number of at least 1`);
  }
  if (!(policy.baseDelayMs >= 0) || !(policy.maxDelayMs >= policy.baseDelayMs)) {
    throw new RangeError(`${what}: need 0 <= baseDelayMs <= maxDelayMs`);
  }
  return policy;
}
