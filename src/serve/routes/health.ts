import type { FastifyInstance } from 'fastify';
import { problem, sendProblem } from '../problem.js';
import type { ServeDeps } from '../server.js';

/**
 * Probes and metrics, outside /api (so outside the token: a load balancer or Prometheus asks
 * them without it). `/healthz`: the process answers. `/readyz`: the database answers and the
 * server is not shutting down. `/metrics`: Prometheus text format.
 */
export function healthRoutes(deps: ServeDeps) {
  return async (server: FastifyInstance) => {
    server.get('/healthz', async () => ({ status: 'ok' }));
    server.get('/readyz', async (request, reply) => {
      if (deps.closing.aborted) return sendProblem(reply.header('retry-after', '1'), problem('unavailable', 'the server is shutting down'));
      try {
        await deps.app.db.get('SELECT 1 AS one');
        return { status: 'ready', database: deps.app.db.label };
      } catch (err) {
        request.log.warn({ event: 'not-ready', err: { message: (err as Error).message } }, `not ready: the database does not answer (${(err as Error).message})`);
        return sendProblem(reply.header('retry-after', '1'), problem('database_unusable', 'the database does not answer'));
      }
    });
    server.get('/metrics', async (_request, reply) => {
      const text = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).send(text);
    });
  };
}
