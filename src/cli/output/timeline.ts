import type { ChalkInstance } from 'chalk';
import type { StepEvent, TakeOver } from '../../engine/store.js';
import { formatDuration, table } from './format.js';

/** One action or compensation attempt, folded from its started / outcome / retrying records. */
export interface AttemptRow {
  readonly step: string;
  readonly phase: StepEvent['phase'];
  readonly attempt: number;
  readonly startedAt: number;
  /** `interrupted`: no outcome was recorded, and the saga was taken over after it started (its process died or stalled). */
  readonly outcome: 'succeeded' | 'failed' | 'in flight' | 'interrupted';
  readonly durationMs: number | null;
  readonly error: string | null;
  readonly retryInMs: number | null;
  readonly uncertain: boolean;
}

/** What the recoverer found, said of the attempt it interrupted. */
const INTERRUPTED_BECAUSE: Record<TakeOver['reason'], string> = {
  'owner-died': 'process died',
  'lease-expired': 'lease ran out',
  'no-owner': 'saga had no owner',
};

export function attemptRows(events: readonly StepEvent[], takeOvers: readonly TakeOver[] = []): AttemptRow[] {
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
  // An attempt with no outcome that a take-over came after will never get one: it was cut off.
  return [...rows.values()].map((r) => {
    if (r.outcome !== 'in flight') return r;
    const cut = takeOvers.find((t) => t.at >= r.startedAt);
    return cut === undefined ? r : { ...r, outcome: 'interrupted', error: `(${INTERRUPTED_BECAUSE[cut.reason]})` };
  });
}

/** Who a take-over names: `pid 4242 on host-a`, or the owner id when pid or host is unknown. */
function who(o: { id: string | null; host: string | null; pid: number | null }): string {
  if (o.pid !== null && o.host !== null) return `pid ${o.pid} on ${o.host}`;
  return o.id ?? 'nobody';
}

/** The saga as a picture: one aligned line per attempt, compensations marked ↩. */
export function renderTimeline(events: readonly StepEvent[], sagaStart: number, c: ChalkInstance, takeOvers: readonly TakeOver[] = []): string {
  const attempts = attemptRows(events, takeOvers).map((r) => {
    const paint = r.outcome === 'succeeded' ? c.green : r.outcome === 'failed' ? c.red : r.outcome === 'interrupted' ? c.yellow : c.cyan.bold;
    const notes = [r.error ?? '', r.uncertain ? '(may have taken effect)' : '', r.retryInMs === null ? '' : `retry in ${r.retryInMs}ms`].filter(Boolean).join(' ');
    const cells = [
      c.dim(`+${formatDuration(r.startedAt - sagaStart)}`),
      r.phase === 'compensation' ? c.magenta(`↩ ${r.step}`) : `  ${r.step}`,
      r.phase,
      `#${r.attempt}`,
      paint(r.outcome),
      formatDuration(r.durationMs),
      r.outcome === 'failed' ? c.red(notes) : c.dim(notes),
    ];
    return { at: r.startedAt, cells };
  });
  // A take-over is a row of its own, at its time: who took the saga from whom, and why.
  const taken = takeOvers.map((t) => ({
    at: t.at,
    cells: [
      c.dim(`+${formatDuration(t.at - sagaStart)}`),
      c.yellow('» take-over'),
      '',
      '',
      c.yellow('taken over'),
      '',
      `by ${who(t.owner)} from ${who(t.previousOwner)} (${INTERRUPTED_BECAUSE[t.reason]})`,
    ],
  }));
  // Stable: a take-over goes after the attempts that started before or at its time.
  const rows = [...attempts, ...taken].map((r, i) => ({ ...r, i })).sort((a, b) => a.at - b.at || a.i - b.i).map((r) => r.cells);
  return table([['AT', '  STEP', 'PHASE', 'TRY', 'OUTCOME', 'TOOK', 'NOTE'].map((h) => c.dim(h)), ...rows]);
}
