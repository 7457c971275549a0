import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { CHECKOUT_STEPS } from '../../checkout/checkout-saga.js';
import { PACKAGE_ROOT } from '../../paths.js';
import type { ServeDeps } from '../server.js';

/**
 * The dashboard: `GET /` (the sagas and the inventory, live), `GET /sagas/:id` (one saga's
 * timeline) and their static modules under `/dashboard/`. The files are plain HTML, CSS and ES
 * modules in src/serve/dashboard/, read from there (the package ships that folder, see
 * package.json "files") rather than bundled: the browser loads them as they are written, the
 * same way from `npm run dev` (tsx) and from the built dist/saga.cjs, and editing one needs no
 * rebuild. They are read once, when the server starts, and are a few kilobytes.
 *
 * Every asset comes from this server, and the Content-Security-Policy says so to the browser:
 * a page that tried to load anything from another host would be refused.
 */
const ASSETS: Readonly<Record<string, string>> = {
  'dashboard.css': 'text/css; charset=utf-8',
  'common.js': 'text/javascript; charset=utf-8',
  'list.js': 'text/javascript; charset=utf-8',
  'saga.js': 'text/javascript; charset=utf-8',
  'timeline.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export const DASHBOARD_DIR = join(PACKAGE_ROOT, 'src', 'serve', 'dashboard');

export function dashboardRoutes(deps: ServeDeps) {
  const read = (name: string) => readFileSync(join(DASHBOARD_DIR, name), 'utf8');
  // What the pages need to know about this server, in the page itself: no extra request.
  const page = (name: string) =>
    read(name).replace('{{BODY_DATA}}', `data-steps="${CHECKOUT_STEPS.join(',')}" data-faults="${deps.allowFaults ? 'on' : 'off'}"`);
  const pages = { list: page('index.html'), saga: page('saga.html') };
  const assets = new Map(Object.entries(ASSETS).map(([name, type]) => [name, { type, body: read(name) }]));

  const html = (reply: FastifyReply, body: string) => reply.type('text/html; charset=utf-8').header('content-security-policy', CSP).header('cache-control', 'no-cache').send(body);

  return async (server: FastifyInstance) => {
    server.get('/', async (_request, reply) => html(reply, pages.list));
    server.get('/sagas/:id', async (_request, reply) => html(reply, pages.saga));
    server.get<{ Params: { file: string } }>('/dashboard/:file', async (request, reply) => {
      const asset = assets.get(request.params.file);
      if (asset === undefined) return reply.callNotFound();
      return reply.type(asset.type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(asset.body);
    });
  };
}
