import type { FastifyInstance } from 'fastify';
import { openCursor, sseMessage } from '../events.js';
import type { ServeDeps } from '../server.js';

/** How often a stream looks for new rows when nothing in this process woke it (another process's sagas). */
const POLL_MS = 250;
/** A comment line now and then keeps proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

/**
 * `GET /api/events`: Server-Sent Events, one `saga` event per row of the saga log (see
 * ../events.ts for why no row is ever skipped). Resumes after the `Last-Event-ID` header, or
 * after `?lastEventId=` for clients that cannot set headers; a new client starts at the end.
 */
export function eventRoutes(deps: ServeDeps) {
  return async (server: FastifyInstance) => {
    server.get<{ Querystring: { lastEventId?: string } }>('/events', async (request, reply) => {
      const header = request.headers['last-event-id'];
      const cursor = await openCursor(deps.app.db, (Array.isArray(header) ? header[0] : header) ?? request.query.lastEventId);
      const done = new AbortController();
      const stop = () => done.abort();
      request.raw.on('close', stop);
      deps.closing.addEventListener('abort', stop);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write(`retry: 1000\n: from event ${cursor.lastId}\n\n`);
      let lastWrite = Date.now();
      try {
        while (!done.signal.aborted) {
          const events = await cursor.next();
          if (events.length > 0) {
            res.write(events.map(sseMessage).join(''));
            lastWrite = Date.now();
            continue;
          }
          if (Date.now() - lastWrite > HEARTBEAT_MS) {
            res.write(': keep-alive\n\n');
            lastWrite = Date.now();
          }
          await deps.wakeup.wait(POLL_MS, done.signal);
        }
      } catch (err) {
        request.log.warn({ event: 'sse-failed', err: { message: (err as Error).message } }, `event stream ended: ${(err as Error).message}`);
      } finally {
        deps.closing.removeEventListener('abort', stop);
        res.end();
      }
    });
  };
}
