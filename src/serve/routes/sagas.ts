import type { FastifyInstance } from 'fastify';
import { checkoutRows } from '../../checkout/queries.js';
import { SagaStatus } from '../../engine/store.js';
import { showJson } from '../../cli/commands/show.js';
import { findSaga } from '../../operations/find-saga.js';
import { inventoryReport, listSagasPage, type ListPosition, type SagaListRow } from '../../store/read-models.js';
import { fail } from '../problem.js';
import type { ServeDeps } from '../server.js';

/**
 * The read side, as the CLI shows it: `GET /api/sagas` is `saga list --json` a page at a time,
 * `GET /api/sagas/:id` is `saga show --json` (short ids too), `GET /api/inventory` is
 * `saga inventory --json`.
 */
const STATUSES = Object.values(SagaStatus) as string[];
const MAX_LIMIT = 1000;

export function sagaRoutes(deps: ServeDeps) {
  const { app } = deps;
  return async (server: FastifyInstance) => {
    server.get<{ Querystring: Record<string, string | undefined> }>('/sagas', async (request) => {
      const { status, limit, cursor, ...unknown } = request.query;
      const extra = Object.keys(unknown)[0];
      if (extra !== undefined) fail('invalid_body', `unknown query parameter ${extra}: /api/sagas takes status, limit and cursor`, { field: extra });
      if (status !== undefined && !STATUSES.includes(status)) fail('invalid_body', `status must be one of ${STATUSES.join(', ')}`, { field: 'status' });
      if (limit !== undefined && (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_LIMIT)) {
        fail('invalid_body', `limit must be a whole number from 1 to ${MAX_LIMIT}`, { field: 'limit' });
      }
      const after = cursor === undefined ? undefined : decodeCursor(cursor);
      const n = limit === undefined ? 20 : Number(limit);
      // One row more than asked tells whether there is a next page.
      const rows = await listSagasPage(app.db, { limit: n + 1, ...(status === undefined ? {} : { status: status as SagaStatus }), ...(after === undefined ? {} : { after }) });
      const page = rows.slice(0, n);
      const last = page[page.length - 1];
      const now = Date.now();
      return {
        sagas: page.map((r) => listJson(r, now)),
        nextCursor: rows.length > n && last !== undefined ? encodeCursor({ createdAt: last.createdAt, sagaId: last.sagaId }) : null,
      };
    });

    server.get<{ Params: { id: string } }>('/sagas/:id', async (request) => {
      const saga = await findSaga(app, request.params.id);
      if (saga === undefined) fail('unknown_saga', `no saga ${request.params.id}: GET /api/sagas lists saga ids`);
      const [events, takeOvers, rows] = await Promise.all([app.store.getEvents(saga.sagaId), app.store.getTakeOvers(saga.sagaId), checkoutRows(app.db, saga.sagaId)]);
      return showJson(saga, events, takeOvers, rows);
    });

    server.get('/inventory', async () => inventoryReport(app.db));
  };
}

/** The object of `saga list --json` for one saga. */
function listJson(r: SagaListRow, now: number) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return { ...r, createdAt: iso(r.createdAt), endedAt: iso(r.endedAt), leaseUntil: iso(r.leaseUntil), durationMs: (r.endedAt ?? now) - r.createdAt };
}

/** Opaque to clients: base64url of `<createdAt>.<sagaId>`. */
function encodeCursor(p: ListPosition): string {
  return Buffer.from(`${p.createdAt}.${p.sagaId}`).toString('base64url');
}

function decodeCursor(cursor: string): ListPosition {
  const m = /^(\d{1,15})\.([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (m === null) fail('invalid_body', 'cursor is not one this server gave out: pass back the nextCursor of the previous page', { field: 'cursor' });
  return { createdAt: Number(m[1]), sagaId: m[2]! };
}
