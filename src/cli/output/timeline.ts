import type { ChalkInstance } from 'chalk';
import type { StepEvent } from '../../engine/store.js';
import { formatDuration, table } from './format.js';

/** One action or compensation attempt, folded from its started / outcome / retrying records. */
export interface AttemptRow {
  readonly step: string;
  readonly phase: StepEvent['phase'];
  readonly attempt: number;
  readonly startedAt: number;
  readonly outcome: 'succeeded' | 'failed' | 'in flight';
  readonly durationMs: number | null;
  readonly error: string | null;
  readonly retryInMs: number | null;
  readonly uncertain: boolean;
}

export function attemptRows(events: readonly StepEvent[]): AttemptRow[] {
  const rows = new Map<string, AttemptRow>();
  for (const ev of events) {
    const key = `${ev.phase}:${ev.stepIndex}:${ev.attempt}`;
    const row: AttemptRow = rows.get(key) ?? { step: ev.step, phase: ev.phase, attempt: ev.attempt, startedAt: ev.at, outcome: 'in flight', durationMs: null, error: null, retryInMs: null, uncertain: false };
    if (ev.event === 'succeeded' || ev.event === 'failed') {
      rows.set(key, { ...row, outcome: ev.event, durationMs: ev.durationMs ?? null, error: ev.error ?? null, uncertain: ev.uncertain === true });
    } else if (ev.event === 'retrying') {
      rows.set(key, { ...row, retryInMs: ev.delayMs ?? null });
    } else {
      rows.set(key, row);
    }
  }
  return [...rows.values()];
}

/** The saga as a picture: one aligned line per attempt, compensations marked ↩. */
export function renderTimeline(events: readonly StepEvent[], sagaStart: number, c: ChalkInstance): string {
  const rows = attemptRows(events).map((r) => {
    const paint = r.outcome === 'succeeded' ? c.green : r.outcome === 'failed' ? c.red : c.cyan.bold;
    const notes = [r.error ?? '', r.uncertain ? '(may have taken effect)' : '', r.retryInMs === null ? '' : `retry in ${r.retryInMs}ms`].filter(Boolean).join(' ');
    return [
      c.dim(`+${formatDuration(r.startedAt - sagaStart)}`),
      r.phase === 'compensation' ? c.magenta(`↩ ${r.step}`) : `  ${r.step}`,
      r.phase,
      `#${r.attempt}`,
      paint(r.outcome),
      formatDuration(r.durationMs),
      r.outcome === 'failed' ? c.red(notes) : c.dim(notes),
    ];
  });
  return table([['AT', '  STEP', 'PHASE', 'TRY', 'OUTCOME', 'TOOK', 'NOTE'].map((h) => c.dim(h)), ...rows]);
}
