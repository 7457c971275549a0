import { systemClock } from '../engine/clock.js';
import { recoverAbandonedSagas, type DefinitionRegistry, type RecoveryDeps } from '../engine/recovery.js';

/**
 * The recovery daemon of `saga recover --watch`, inside the server: a first pass at start
 * finishes the sagas a crashed server left (their owner is provably gone, or their lease ran
 * out), then a pass every `intervalMs`. Any number of servers and `recover` daemons share the
 * work safely: a take-over is a conditional update, so each abandoned saga goes to exactly one.
 * Stuck sagas are left to an explicit `saga recover`, as the watcher leaves them, rather than
 * spending their compensation budget again on every pass. Stops between sagas once `signal`
 * aborts; a saga in hand is driven to its end.
 */
export async function runRecoveryLoop(definitions: DefinitionRegistry, deps: RecoveryDeps, intervalMs: number, signal: AbortSignal): Promise<void> {
  let wait = intervalMs;
  // A saga it cannot drive is found again on every pass: say so once, not every second.
  const reported = new Set<string>();
  while (!signal.aborted) {
    try {
      for (const r of await recoverAbandonedSagas(definitions, deps, { signal, skipStuck: true })) {
        if ((r.action === 'damaged' || r.action === 'unknown-definition') && !reported.has(r.sagaId)) {
          reported.add(r.sagaId);
          deps.logger.error({ sagaId: r.sagaId, event: 'recover-skipped', reason: r.action, err: { message: r.error } }, `cannot recover saga ${r.sagaId}: ${r.error}; see \`saga show ${r.sagaId}\``);
        }
      }
      wait = intervalMs;
    } catch (err) {
      // A server outlives a database restart: say so, back off, try again.
      wait = Math.min(wait * 2, 30_000);
      deps.logger.error({ event: 'recover-failed', err: { message: (err as Error).message } }, `recovery pass failed: ${(err as Error).message}; trying again in ${wait} ms`);
    }
    await systemClock.sleep(wait, signal);
  }
}
