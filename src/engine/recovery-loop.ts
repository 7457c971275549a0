import { systemClock } from './clock.js';
import { recoverAbandonedSagas, type DefinitionRegistry, type RecoveryDeps, type RecoveryResult } from './recovery.js';

/**
 * The recovery daemon of `saga recover --watch` and of `saga serve`: a pass at once, then one
 * every `intervalMs`, until `signal` aborts (between sagas: a saga in hand is driven to its end).
 * Any number of daemons and servers share the work safely: a take-over is a conditional update,
 * so each abandoned saga goes to exactly one. Stuck sagas are left to an explicit `saga recover`
 * rather than spending their compensation budget again on every pass. A saga it cannot drive is
 * found again on every pass, so `onResult` hears of it once, not every second. A failed pass (the
 * database restarting) is logged and retried with a growing back-off.
 */
export async function runRecoveryLoop(
  definitions: DefinitionRegistry,
  deps: RecoveryDeps,
  opts: { intervalMs: number; signal: AbortSignal; onResult(r: RecoveryResult): void; onPass?(running: boolean): void },
): Promise<void> {
  let wait = opts.intervalMs;
  const reported = new Set<string>();
  while (!opts.signal.aborted) {
    try {
      opts.onPass?.(true);
      for (const r of await recoverAbandonedSagas(definitions, deps, { signal: opts.signal, skipStuck: true })) {
        if (r.action === 'damaged' || r.action === 'unknown-definition') {
          if (reported.has(r.sagaId)) continue;
          reported.add(r.sagaId);
        }
        opts.onResult(r);
      }
      wait = opts.intervalMs;
    } catch (err) {
      wait = Math.min(wait * 2, 30_000);
      deps.logger.error({ event: 'recover-failed', err: { message: (err as Error).message } }, `recovery pass failed: ${(err as Error).message}; trying again in ${wait} ms`);
    } finally {
      opts.onPass?.(false);
    }
    await systemClock.sleep(wait, opts.signal);
  }
}
