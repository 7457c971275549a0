import type { EngineLogger } from './runner.js';
import type { StepEvent } from './store.js';

/**
 * One saga log record as one pino line, with the fields docs/guarantees.md names: sagaId, saga,
 * step, phase, event, attempt, durationMs where it applies, err for failures.
 */
export function logStepEvent(logger: EngineLogger, saga: string, ev: StepEvent): void {
  const fields: Record<string, unknown> = { sagaId: ev.sagaId, saga, step: ev.step, phase: ev.phase, event: ev.event, attempt: ev.attempt };
  if (ev.durationMs !== undefined) fields.durationMs = ev.durationMs;
  if (ev.delayMs !== undefined) fields.delayMs = ev.delayMs;
  if (ev.idempotencyKey !== undefined) fields.idempotencyKey = ev.idempotencyKey;
  if (ev.uncertain) fields.uncertain = true;
  if (ev.error !== undefined) fields.err = { message: ev.error, kind: ev.errorKind };
  const msg = `${ev.step} ${ev.phase} ${ev.event}`;
  if (ev.event === 'failed') logger.warn(fields, msg);
  else if (ev.event === 'retrying') logger.warn(fields, `${msg} in ${ev.delayMs} ms`);
  else logger.info(fields, msg);
}
