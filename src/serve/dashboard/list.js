// `/`: the sagas, newest first, and the inventory, both refreshed from the live feed; the
// "Run a checkout" form.
import { FAULTS_ON, STEPS, debounce, el, formatAge, formatDuration, getJson, liveFeed, shortId, statusBadge, stuckAdvice } from './common.js';

const LIMIT = 50;
const filter = document.getElementById('status-filter');
const products = new Map();

filter.value = new URL(location.href).searchParams.get('status') ?? '';
filter.addEventListener('change', () => {
  const url = new URL(location.href);
  if (filter.value === '') url.searchParams.delete('status');
  else url.searchParams.set('status', filter.value);
  history.replaceState(null, '', url);
  void refreshSagas();
});

async function refreshSagas() {
  const status = filter.value;
  const [page, stuck] = await Promise.all([
    getJson(`/api/sagas?limit=${LIMIT}${status === '' ? '' : `&status=${status}`}`),
    getJson('/api/sagas?status=stuck&limit=100'),
  ]);
  shown = page.sagas;
  renderSagas();
  document.getElementById('empty').hidden = page.sagas.length > 0;
  const banner = document.getElementById('stuck-banner');
  banner.hidden = stuck.sagas.length === 0;
  if (stuck.sagas.length > 0) {
    const n = stuck.sagas.length;
    banner.replaceChildren(
      el('strong', { text: `⚠ ${n}${stuck.nextCursor === null ? '' : '+'} stuck saga${n === 1 ? '' : 's'}: ` }),
      'money or stock is held until a failed compensation is retried. Fix the cause, then run ',
      el('code', { text: 'saga recover' }),
      ' (all of them) or ',
      el('code', { text: 'saga retry <id>' }),
      ' (one).',
    );
  }
  // A running saga's duration and status move without an event (the back-off between retries).
  scheduleRefresh(page.sagas.some((s) => s.status === 'running' || s.status === 'compensating'));
}

let shown = [];
function renderSagas() {
  const now = Date.now();
  document.getElementById('sagas').replaceChildren(...shown.flatMap((s) => sagaRow(s, now)));
}
// Ages move on by themselves.
setInterval(renderSagas, 10_000);

function sagaRow(s, now) {
  const product = products.get(s.productId);
  const row = el(
    'tr',
    { class: `saga-row status-row-${s.status}`, 'data-saga-id': s.sagaId },
    el('td', {}, el('a', { href: `/sagas/${s.sagaId}`, class: 'mono', title: s.sagaId, text: shortId(s.sagaId) })),
    el('td', {}, statusBadge(s.status)),
    el('td', { class: 'failed-step', text: s.failedStep ?? '' }),
    el('td', { text: `${product?.name ?? `product ${s.productId}`} × ${s.qty}` }),
    el('td', { class: 'num', text: formatDuration(s.durationMs) }),
    el('td', { class: 'num', text: formatAge(s.createdAt, now) }),
  );
  if (s.status !== 'stuck') return row;
  return [row, el('tr', { class: 'stuck-advice' }, el('td', { colspan: 6 }, stuckAdvice(s.sagaId)))];
}

async function refreshInventory() {
  const inventory = await getJson('/api/inventory');
  for (const p of inventory) products.set(p.productId, p);
  document.getElementById('inventory').replaceChildren(
    ...inventory.map((p) =>
      el('tr', { 'data-product-id': p.productId }, el('td', { text: p.name }), el('td', { class: 'num available', text: p.available }), el('td', { class: 'num', text: p.reserved }), el('td', { class: 'num', text: p.sold })),
    ),
  );
  const select = document.getElementById('product');
  // The list names products by name: rows drawn before the inventory arrived are drawn again.
  renderSagas();
  if (select.options.length === 0) select.replaceChildren(...inventory.map((p) => el('option', { value: p.productId, text: `${p.name} (#${p.productId})` })));
}

// The feed says when anything is written; a poll only covers what writes nothing (a running
// saga's clock, its back-off between attempts).
let pollTimer;
function scheduleRefresh(anyRunning) {
  clearTimeout(pollTimer);
  if (anyRunning) pollTimer = setTimeout(() => void refresh(), 1000);
}

const refresh = () => Promise.all([refreshInventory(), refreshSagas()]).catch(showError);
const refreshSoon = debounce(refresh, 100);

function showError(err) {
  document.getElementById('live').textContent = `⚠ ${err.message}`;
}

function setUpForm() {
  const form = document.getElementById('checkout-form');
  if (FAULTS_ON) {
    document.getElementById('faults').hidden = false;
    for (const id of ['fail-at', 'fail-compensation']) document.getElementById(id).append(...STEPS.map((s) => el('option', { value: s, text: s })));
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const error = document.getElementById('form-error');
    error.textContent = '';
    const data = new FormData(form);
    const num = (name) => (data.get(name) === '' || data.get(name) === null ? undefined : Number(data.get(name)));
    const body = { productId: num('productId'), qty: num('qty'), customerId: num('customerId') };
    if (FAULTS_ON) {
      const faults = {};
      if (data.get('failAt') !== '') Object.assign(faults, { failAt: data.get('failAt'), mode: data.get('mode'), times: ['transient', 'timeout'].includes(data.get('mode')) ? num('times') : undefined });
      if (data.get('failCompensation') !== '') Object.assign(faults, { failCompensation: data.get('failCompensation'), compensationMode: data.get('compensationMode'), compensationTimes: data.get('compensationMode') === 'transient' ? num('compensationTimes') : undefined });
      if (Object.keys(faults).length > 0) body.faults = JSON.parse(JSON.stringify(faults));
    }
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      // 202 as soon as the saga's first record is durable: its timeline then fills in live.
      const res = await fetch('/api/checkouts', { method: 'POST', headers: { 'content-type': 'application/json', prefer: 'respond-async' }, body: JSON.stringify(body) });
      if (!res.ok) {
        const problem = await res.json().catch(() => ({}));
        throw new Error(problem.detail ?? `${res.status} ${res.statusText}`);
      }
      // Read to the end before leaving the page, or the browser cuts the response off.
      const { sagaId } = await res.json();
      location.assign(`/sagas/${sagaId}`);
    } catch (err) {
      error.textContent = err.message;
      button.disabled = false;
    }
  });
}

setUpForm();
liveFeed(refreshSoon);
await refresh();
// When the first page was complete, for `npm run screenshots` to report.
performance.mark('saga:list-shown');
