// A saga's timeline as an SVG picture: one lane per step, each attempt a bar on a common time
// axis. Actions run left to right in the top half of each lane, compensations (which run in
// reverse step order) in the bottom half of the same lanes; a back-off between attempts is a
// dashed line, a failure a red bar with a ✕, a take-over by recovery a vertical marker.
// `timelineModel` is the pure part (events in, lanes and bars out); `renderTimeline` draws it.

const SVG = 'http://www.w3.org/2000/svg';

/** Lanes, bars, gaps and markers from `saga show --json`, times in ms from the saga's start. */
export function timelineModel(saga, steps, now = Date.now()) {
  const t0 = Date.parse(saga.createdAt);
  const at = (iso) => Date.parse(iso) - t0;
  const running = saga.status === 'running' || saga.status === 'compensating';
  const takeOvers = (saga.takeOvers ?? []).map((t) => ({ t: at(t.at), reason: t.reason, owner: t.owner?.id ?? '' }));
  const names = [...steps, ...saga.events.map((e) => e.step).filter((s) => !steps.includes(s))];
  const bars = [];
  const gaps = [];
  const open = new Map();
  for (const e of saga.events) {
    const key = `${e.step}/${e.phase}/${e.attempt}`;
    if (e.event === 'started') {
      const bar = { step: e.step, phase: e.phase, attempt: e.attempt, start: at(e.at), end: null, outcome: 'running' };
      open.set(key, bar);
      bars.push(bar);
    } else if (e.event === 'succeeded' || e.event === 'failed') {
      const bar = open.get(key) ?? { step: e.step, phase: e.phase, attempt: e.attempt, start: at(e.at) - (e.durationMs ?? 0) };
      if (!open.has(key)) bars.push(bar);
      open.delete(key);
      Object.assign(bar, { end: at(e.at), outcome: e.event, error: e.error ?? null, errorKind: e.errorKind ?? null, uncertain: e.uncertain === true });
    } else if (e.event === 'retrying') {
      gaps.push({ step: e.step, phase: e.phase, attempt: e.attempt, start: at(e.at), end: at(e.at) + (e.delayMs ?? 0), delayMs: e.delayMs ?? 0 });
    }
  }
  // An attempt that never ended: still running, or cut short by a crash (then recovery took over).
  for (const bar of open.values()) {
    const after = takeOvers.find((t) => t.t >= bar.start);
    if (after !== undefined) Object.assign(bar, { end: after.t, outcome: 'interrupted' });
    else if (!running) Object.assign(bar, { end: bar.start, outcome: 'interrupted' });
  }
  const lastEvent = saga.events.length === 0 ? 0 : at(saga.events[saga.events.length - 1].at);
  const end = Math.max(1, saga.endedAt === null ? (running ? now - t0 : lastEvent) : at(saga.endedAt), lastEvent, ...gaps.map((g) => g.end), ...takeOvers.map((t) => t.t));
  for (const bar of bars) if (bar.end === null) bar.end = end;
  const lanes = names.map((step) => ({ step, action: laneState(saga.events, step, 'action'), compensation: laneState(saga.events, step, 'compensation') }));
  return { lanes, bars, gaps, takeOvers, end, running };
}

/** What happened to one step's action or compensation, in words (shown and tested). */
function laneState(events, step, phase) {
  const mine = events.filter((e) => e.step === step && e.phase === phase);
  const last = mine[mine.length - 1];
  const attempts = new Set(mine.map((e) => e.attempt)).size;
  const retries = attempts > 1 ? ` after ${attempts} attempts` : '';
  if (last === undefined) return phase === 'action' ? 'not run' : '';
  if (phase === 'action') {
    if (last.event === 'succeeded') return `done${retries}`;
    if (last.event === 'failed') return `failed${retries}`;
    if (last.event === 'retrying') return 'retrying';
    return 'running';
  }
  if (last.event === 'succeeded') return `compensated${retries}`;
  if (last.event === 'failed') return `compensation failed${retries}`;
  if (last.event === 'retrying') return 'compensation retrying';
  return 'compensating';
}

function node(tag, attrs = {}, ...children) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) n.setAttribute(k, String(v));
  for (const c of children) n.append(c);
  return n;
}

const title = (text) => node('title', {}, text);

const LABEL_W = 250;
const PLOT_W = 640;
const LANE_H = 44;
const AXIS_H = 28;
const MIN_BAR = 4;

export function renderTimeline(model) {
  const height = AXIS_H + model.lanes.length * LANE_H + 8;
  const width = LABEL_W + PLOT_W + 20;
  const x = (t) => LABEL_W + (t / model.end) * PLOT_W;
  const laneY = new Map(model.lanes.map((l, i) => [l.step, AXIS_H + i * LANE_H]));
  const svg = node('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img', 'aria-labelledby': 'timeline-title', class: 'timeline-svg' });
  svg.append(node('title', { id: 'timeline-title' }, `Timeline: ${model.lanes.map((l) => `${l.step} ${[l.action, l.compensation].filter(Boolean).join(', ')}`).join('; ')}`));

  for (let i = 0; i <= 4; i++) {
    const t = (model.end * i) / 4;
    svg.append(node('line', { x1: x(t), x2: x(t), y1: AXIS_H - 6, y2: height - 8, class: 'grid' }));
    svg.append(node('text', { x: x(t), y: AXIS_H - 10, class: 'tick', 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, formatMs(t)));
  }

  for (const lane of model.lanes) {
    const y = laneY.get(lane.step);
    const g = node('g', { class: 'lane', 'data-step': lane.step, 'data-action': lane.action, 'data-compensation': lane.compensation });
    g.append(node('rect', { x: 0, y, width, height: LANE_H, class: 'lane-bg' }));
    g.append(node('text', { x: 8, y: y + 18, class: 'lane-name' }, lane.step));
    g.append(node('text', { x: 8, y: y + 34, class: `lane-state state-${stateClass(lane)}` }, [lane.action, lane.compensation].filter(Boolean).join(' · ')));
    svg.append(g);
  }

  for (const gap of model.gaps) {
    const y = laneY.get(gap.step) + (gap.phase === 'action' ? 14 : 30);
    svg.append(node('line', { x1: x(gap.start), x2: Math.max(x(gap.end), x(gap.start) + MIN_BAR), y1: y, y2: y, class: 'backoff' }, title(`${gap.step} ${gap.phase}: back-off of ${gap.delayMs} ms before attempt ${gap.attempt + 1}`)));
  }

  for (const bar of model.bars) {
    const y = laneY.get(bar.step) + (bar.phase === 'action' ? 6 : 22);
    const x1 = x(bar.start);
    const w = Math.max(MIN_BAR, x(bar.end) - x1);
    const what = `${bar.step} ${bar.phase === 'action' ? 'action' : 'compensation'}, attempt ${bar.attempt}: ${bar.outcome}${bar.error ? ` (${bar.error})` : ''}, ${formatMs(bar.start)} to ${formatMs(bar.end)}`;
    const g = node('g', { class: `bar bar-${bar.phase} bar-${bar.outcome}`, 'data-step': bar.step, 'data-phase': bar.phase, 'data-outcome': bar.outcome }, title(what));
    g.append(node('rect', { x: x1, y, width: w, height: 16, rx: 3 }));
    if (bar.outcome === 'failed' || bar.outcome === 'interrupted') g.append(node('text', { x: x1 + w + 3, y: y + 12, class: 'mark' }, bar.outcome === 'failed' ? '✕' : '⚡'));
    if (bar.phase === 'compensation' && bar.outcome === 'succeeded') g.append(node('text', { x: x1 + w + 3, y: y + 12, class: 'mark' }, '↺'));
    svg.append(g);
  }

  for (const t of model.takeOvers) {
    const g = node('g', { class: 'takeover' }, title(`recovery took over (${t.reason}) at ${formatMs(t.t)}: owner ${t.owner}`));
    g.append(node('line', { x1: x(t.t), x2: x(t.t), y1: AXIS_H - 4, y2: height - 8 }));
    g.append(node('text', { x: x(t.t) + 4, y: height - 12, class: 'takeover-label' }, 'recovery took over'));
    svg.append(g);
  }
  return svg;
}

function stateClass(lane) {
  if (lane.compensation.startsWith('compensation failed')) return 'bad';
  if (lane.compensation.startsWith('compensated')) return 'undone';
  if (lane.action.startsWith('failed')) return 'bad';
  if (lane.action.startsWith('done')) return 'good';
  return 'idle';
}

export function formatMs(ms) {
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
