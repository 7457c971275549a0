// Shared by both pages: the server's settings (in the page's <body data-*>), JSON requests, the
// live feed, statuses and formatting. Plain ES modules: no framework, no build step.

export const STEPS = (document.body.dataset.steps ?? '').split(',').filter(Boolean);
export const FAULTS_ON = document.body.dataset.faults === 'on';

/** Each status with a symbol, so it never rests on colour alone. */
export const STATUS = {
  running: { symbol: '▶', label: 'running' },
  compensating: { symbol: '◀', label: 'compensating' },
  completed: { symbol: '✓', label: 'completed' },
  compensated: { symbol: '↺', label: 'compensated' },
  stuck: { symbol: '⚠', label: 'stuck' },
};

export async function getJson(url, init) {
  const res = await fetch(url, { headers: { accept: 'application/json' }, ...init });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.detail ?? `${res.status} ${res.statusText}`);
  return body;
}

/** `tag` with attributes and children; strings become text (never HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) node.append(c);
  return node;
}

export function statusBadge(status) {
  const s = STATUS[status] ?? { symbol: '?', label: status };
  return el('span', { class: `status status-${status}` }, el('span', { 'aria-hidden': 'true', text: s.symbol }), ` ${s.label}`);
}

/** The last 8 characters: what the console and `saga list` print, and what the CLI accepts. */
export const shortId = (id) => id.slice(-8);

export function formatDuration(ms) {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatAge(iso, now = Date.now()) {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/**
 * `onEvent(data)` for every row of the saga log from now on (`/api/events`, Server-Sent Events;
 * the browser reconnects by itself with Last-Event-ID, so nothing is missed). The feed's state is
 * shown in #live.
 */
export function liveFeed(onEvent) {
  const live = document.getElementById('live');
  const source = new EventSource('/api/events');
  source.addEventListener('open', () => {
    live.textContent = '● live';
    live.className = 'live on';
  });
  source.addEventListener('error', () => {
    live.textContent = '○ reconnecting…';
    live.className = 'live off';
  });
  source.addEventListener('saga', (m) => onEvent(JSON.parse(m.data)));
  // Leaving the page ends the stream itself rather than leaving the browser to cut it.
  addEventListener('pagehide', () => source.close());
  return source;
}

/** Calls `fn` at most once per `ms`, at the end: a burst of events is one refresh. */
export function debounce(fn, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

/** What to do about a stuck saga, in the CLI's words. */
export function stuckAdvice(sagaId) {
  return el('span', {}, 'A compensation kept failing: fix the cause, then run ', el('code', { text: `saga retry ${shortId(sagaId)}` }), ' (or ', el('code', { text: 'saga recover' }), ') to retry it.');
}
