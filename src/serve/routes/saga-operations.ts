import type { FastifyInstance, FastifyRequest } from 'fastify';
import { systemClock } from '../../engine/clock.js';
import { localMachine } from '../../engine/process-identity.js';
import { SagaError } from '../../errors.js';
import { cancelJson } from '../../cli/commands/cancel.js';
import { retryJson } from '../../cli/commands/retry.js';
import { cancelSaga } from '../../operations/cancel.js';
import { retrySaga } from '../../operations/retry.js';
import { fail } from '../problem.js';
import type { ServeDeps } from '../server.js';

/**
 * `saga cancel` and `saga retry` over HTTP: the same functions (src/operations/), the same ids
 * (short ones too), the same refusals as problems (`saga_ended` and `saga_busy` are 409).
 *
 * - `POST /api/sagas/:id/cancel` answers `202 Accepted` with the object of `saga cancel --json`:
 *   the request is recorded, and the saga's owner (or recovery) rolls it back afterwards; the
 *   `Location` is where to follow it.
 * - `POST /api/sagas/:id/retry` drives the saga to its end before answering, `200` with the
 *   object of `saga retry --json`; a saga still stuck afterwards is `200` too (its `status` says
 *   so), as a stuck checkout is still `201`.
 */
export function sagaOperationRoutes(deps: ServeDeps) {
  const { app } = deps;
  return async (server: FastifyInstance) => {
    server.post<{ Params: { id: string } }>('/sagas/:id/cancel', async (request, reply) => {
      const result = await cancelSaga(app, request.params.id, { by: requester(request), now: Date.now(), machine: localMachine(deps.owner), logger: deps.engineLogger }).catch(inHttpWords(request.params.id));
      return reply.code(202).header('location', `/api/sagas/${result.sagaId}`).send(cancelJson(result));
    });

    server.post<{ Params: { id: string } }>('/sagas/:id/retry', async (request) => {
      const { owner, leaseMs, engineLogger } = deps;
      // Tracked as a request's saga is: shutdown lets the retry reach its end (bounded by the grace).
      const result = await deps.inFlight
        .track(retrySaga(app, request.params.id, { store: app.store, logger: engineLogger, clock: systemClock, random: Math.random, owner, leaseMs, machine: localMachine(owner) }))
        .catch(inHttpWords(request.params.id));
      return retryJson(result);
    });
  };
}

/**
 * Who asked for a cancel, as `saga show` records it. The CLI records `user@host` of the process;
 * here that would name the server's own user, not the client, and the bearer token is one shared
 * secret that names nobody. What the server does know is where the request came from: the peer
 * address of the connection (behind a proxy, the proxy's), which the request's log line carries too.
 */
function requester(request: FastifyRequest): string {
  return `http:${request.ip}`;
}

/** The operations' refusals name CLI commands; over HTTP, the routes. The code stays the same. */
function inHttpWords(given: string) {
  return (err: unknown): never => {
    if (!(err instanceof SagaError)) throw err;
    if (err.code === 'unknown_saga') fail('unknown_saga', `no saga ${given}: GET /api/sagas lists saga ids`);
    const detail = err.message
      .replace(/`saga show ([0-9a-f-]+)`/g, 'GET /api/sagas/$1')
      .replace(/`saga cancel ([0-9a-f-]+)`/g, 'POST /api/sagas/$1/cancel')
      .replace(/`saga retry ([0-9a-f-]+)`/g, 'POST /api/sagas/$1/retry')
      .replace(/`saga list`/g, 'GET /api/sagas');
    fail(err.code, detail);
  };
}
