// `/sagas/<id>`: one saga's timeline, the business rows it wrote and its raw events, refreshed
// while it runs (from the live feed, and a poll during back-offs, which write no event).
import { STEPS, debounce, el, formatDuration, getJson, liveFeed, shortId, statusBadge, stuckAdvice } from './common.js';
import { formatMs, renderTimeline, timelineModel } from './timeline.js';

const given = decodeURIComponent(location.pathname.split('/').pop());
let sagaId;
let pollTimer;

const money = (cents) => `$${(cents / 100).toFixed(2)}`;

async function refresh() {
  const saga = await getJson(`/api/sagas/${encodeURIComponent(given)}`);
  sagaId = saga.sagaId;
  document.title = `saga ${shortId(saga.sagaId)}: ${saga.status}`;
  const input = saga.input ?? {};
  const duration = (saga.endedAt === null ? Date.now() : Date.parse(saga.endedAt)) - Date.parse(saga.createdAt);
  document.getElementById('saga-title').replaceChildren('Saga ', el('span', { class: 'mono', title: saga.sagaId, text: shortId(saga.sagaId) }), ' ', statusBadge(saga.status));
  document.getElementById('summary').replaceChildren(
    `${input.qty ?? '?'} × product ${input.productId ?? '?'} for customer ${input.customerId ?? '?'}${input.amountCents === undefined ? '' : `, ${money(input.amountCents)}`}; `,
    `started ${new Date(saga.createdAt).toLocaleTimeString()}, ${saga.endedAt === null ? 'running for' : 'took'} ${formatDuration(duration)}`,
    saga.error === null ? '' : el('span', { class: 'error', text: `. ${saga.error}` }),
    el('span', { class: 'mono full-id', text: ` (${saga.sagaId})` }),
  );
  const banner = document.getElementById('stuck-banner');
  banner.hidden = saga.status !== 'stuck';
  if (saga.status === 'stuck') banner.replaceChildren(el('strong', { text: '⚠ stuck. ' }), stuckAdvice(saga.sagaId));

  renderActions(saga);

  const model = timelineModel(saga, STEPS);
  document.getElementById('timeline').replaceChildren(renderTimeline(model));
  document.getElementById('legend').replaceChildren(
    ...[['bar-action bar-succeeded', 'action'], ['bar-compensation bar-succeeded', 'compensation'], ['bar-failed', 'failed ✕'], ['backoff-key', 'back-off'], ['takeover-key', 'recovery took over']].map(([cls, text]) =>
      el('span', { class: 'key' }, el('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), text),
    ),
  );

  document.getElementById('rows').replaceChildren(
    row('Reservation', saga.reservation && `${saga.reservation.qty} ${saga.reservation.status}`),
    row('Payment', saga.payment && `#${saga.payment.paymentId} ${money(saga.payment.amountCents)} ${saga.payment.status}`),
    row('Order', saga.order && `#${saga.order.orderId} ${saga.order.status}`),
    row('Shipment', saga.shipment && `#${saga.shipment.shipmentId} ${saga.shipment.status}`),
  );

  const t0 = Date.parse(saga.createdAt);
  document.getElementById('events').replaceChildren(
    ...saga.events.map((e) =>
      el(
        'tr',
        { class: `event-${e.event}` },
        el('td', { class: 'num', text: formatMs(Date.parse(e.at) - t0) }),
        el('td', { text: e.step }),
        el('td', { text: e.phase }),
        el('td', { text: e.event }),
        el('td', { class: 'num', text: e.attempt }),
        el('td', { text: [e.error, e.errorKind && `(${e.errorKind}${e.uncertain ? ', uncertain' : ''})`, e.delayMs !== undefined ? `next attempt in ${e.delayMs} ms` : '', e.durationMs !== undefined ? `${e.durationMs.toFixed(2)} ms` : ''].filter(Boolean).join(' ') }),
      ),
    ),
    ...(saga.takeOvers ?? []).map((t) => el('tr', { class: 'event-takeover' }, el('td', { class: 'num', text: formatMs(Date.parse(t.at) - t0) }), el('td', { colspan: 5, text: `recovery took over (${t.reason}) from ${t.previousOwner?.id ?? 'unknown'}` }))),
  );

  clearTimeout(pollTimer);
  if (model.running) pollTimer = setTimeout(() => void refresh().catch(showError), 500);
}

/**
 * What an operator may do now, as real buttons (the rules are the server's: `saga cancel` and
 * `saga retry`). Running: ask it to roll back. Stuck: retry its compensations with a fresh budget.
 */
function renderActions(saga) {
  const actions = document.getElementById('actions');
  const button = (label, action) => el('button', { type: 'button', 'data-action': action }, label);
  const shown =
    saga.status === 'running' && saga.cancelRequestedAt === null ? [button('Cancel this saga', 'cancel')]
    : saga.status === 'stuck' ? [button('Retry its compensations now', 'retry')]
    : [];
  if (saga.cancelRequestedAt !== null && saga.cancelRequestedAt !== undefined) {
    shown.push(el('span', { class: 'cancelled', text: `cancel requested by ${saga.cancelRequestedBy ?? 'someone'}` }));
  }
  actions.replaceChildren(...shown);
  for (const b of actions.querySelectorAll('button')) {
    b.addEventListener('click', () => void operate(b, b.getAttribute('data-action')));
  }
}

async function operate(button, action) {
  button.disabled = true;
  document.getElementById('live').textContent = action === 'cancel' ? 'asking the saga to roll back…' : 'retrying its compensations…';
  try {
    await getJson(`/api/sagas/${encodeURIComponent(sagaId)}/${action}`, { method: 'POST' });
    document.getElementById('live').textContent = action === 'cancel' ? 'cancel recorded: the saga rolls back' : 'retried';
  } catch (err) {
    showError(err);
  } finally {
    await refresh().catch(showError);
  }
}

function row(label, value) {
  return el('tr', { 'data-row': label.toLowerCase() }, el('th', { scope: 'row', text: label }), el('td', { text: value ?? '-' }));
}

function showError(err) {
  document.getElementById('live').textContent = `⚠ ${err.message}`;
}

const refreshSoon = debounce(() => void refresh().catch(showError), 50);
liveFeed((e) => {
  if (e.sagaId === sagaId) refreshSoon();
});
await refresh().catch(showError);
