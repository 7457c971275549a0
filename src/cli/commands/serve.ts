import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { setting } from '../../config.js';
import { systemClock } from '../../engine/clock.js';
import { localMachine, processOwner } from '../../engine/process-identity.js';
import { ExitCode, signalExitCode, UsageError, type StopSignal } from '../../errors.js';
import { countStuck } from '../../store/read-models.js';
import { Wakeup } from '../../serve/events.js';
import { InFlight } from '../../serve/in-flight.js';
import { createMetrics, observingLogger } from '../../serve/metrics.js';
import { runRecoveryLoop } from '../../engine/recovery-loop.js';
import { buildServer } from '../../serve/server.js';
import { openApp } from '../app.js';
import { checkLogFile, commandLogger, lockWaitNotice, type CommandContext } from '../context.js';
import { listenForInterrupts } from '../interrupt.js';
import { loadTracing } from '../../telemetry/load.js';

export interface ServeFlags {
  readonly port?: number;
  readonly host?: string;
  readonly allowFaults?: boolean;
  readonly insecure?: boolean;
  readonly graceMs?: number;
  readonly recoverInterval?: number;
}

/** How long a checkout waits for the saga of its Idempotency-Key that another request is running. */
const KEY_WAIT_MS = 30_000;

/**
 * `saga serve`: the checkout saga as an HTTP service (src/serve/), over the same database as the
 * CLI, running recovery as `saga recover --watch` does. Prints one line on stdout once it listens,
 * `saga serve: listening on http://<host>:<port>` (the port the system chose for `--port 0`), so
 * a script or a test knows where to connect. SIGTERM or SIGINT: stop accepting, let the sagas in
 * flight end and answer their requests (at most --grace-ms), exit 0. A second signal exits at
 * once; the sagas keep their leases and recovery finishes them.
 */
export async function serveCommand(flags: ServeFlags, ctx: CommandContext): Promise<number> {
  const host = flags.host ?? '127.0.0.1';
  const port = flags.port ?? 3000;
  const graceMs = flags.graceMs ?? 10_000;
  const token = setting(ctx.sources, 'SAGA_API_TOKEN');
  if (!isLoopback(host) && token === undefined && !flags.insecure) {
    throw new UsageError(`--host ${host} lets other machines reach this server: set SAGA_API_TOKEN (clients then send it as \`Authorization: Bearer <token>\`), or add --insecure to serve without one`, 'conflicting_options');
  }
  checkLogFile(ctx.settings.logFile);
  const app = await openApp(ctx.settings, 'if-missing', undefined, undefined, lockWaitNotice(ctx));
  app.checkpointInBackground();
  app.expectConcurrentSagas();
  const { logger, close: closeLog } = commandLogger(ctx);
  const tracing = await loadTracing(ctx.sources.env, (line) => ctx.stderr.write(`saga: ${line}\n`));
  const interrupts = listenForInterrupts({
    // The first signal is logged where shutdown starts (below), with how many sagas it waits for.
    onFirst: () => undefined,
    onSecond: (sig) => {
      ctx.stderr.write(`saga: ${sig} again: stopped at once; the sagas in flight keep their leases and are finished by recovery (the next \`saga serve\`, or \`saga recover\`)\n`);
      closeLog();
      process.exit(signalExitCode(sig as StopSignal));
    },
  });
  try {
    if (app.created) ctx.stderr.write(`saga: no database at ${app.db.label}; created it and loaded the demo catalog\n`);
    const closing = new AbortController();
    const metrics = createMetrics(() => countStuck(app.db), app.counters);
    const wakeup = new Wakeup();
    // Every record the engine logs (requests' sagas and recovery's alike) feeds the metrics and
    // wakes the event streams: by then it is committed (the engine logs after the commit).
    const engineLogger = observingLogger(logger, (fields) => {
      metrics.observe(fields);
      wakeup.notify();
    });
    const owner = processOwner();
    const inFlight = new InFlight();
    const server = await buildServer({
      app, logger, engineLogger, owner, leaseMs: ctx.settings.leaseMs, allowFaults: flags.allowFaults === true, apiToken: token,
      metrics, wakeup, inFlight, keyWaitMs: KEY_WAIT_MS, closing: closing.signal,
      ...(tracing === undefined ? {} : { tracer: tracing.tracer }),
    });
    try {
      await server.listen({ port, host });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new UsageError(`port ${port} on ${host} is in use: choose another --port (--port 0 takes a free one)`);
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError(`--host ${host} is not an address of this machine: use 127.0.0.1 (the default) or 0.0.0.0 for every interface`);
      if (code === 'EACCES') throw new UsageError(`not allowed to listen on port ${port}: ports below 1024 need privileges; choose another --port`);
      throw err;
    }
    const address = server.server.address() as AddressInfo;
    const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    ctx.stdout.write(`saga serve: listening on ${url}\n`);
    logger.info(
      { event: 'listening', url, owner: owner.id, database: app.db.label, allowFaults: flags.allowFaults === true, token: token !== undefined },
      `listening on ${url} (database ${app.db.label}${flags.allowFaults ? ', fault injection ON' : ''}${token === undefined ? '' : ', bearer token required on /api'}); recovering abandoned sagas every ${flags.recoverInterval ?? 1000} ms`,
    );
    const recoveryDeps = { store: app.store, logger: engineLogger, clock: systemClock, random: Math.random, owner, leaseMs: ctx.settings.leaseMs, machine: localMachine(owner), ...(tracing === undefined ? {} : { tracer: tracing.tracer }) };
    const recovery = runRecoveryLoop(app.definitions, recoveryDeps, {
      intervalMs: flags.recoverInterval ?? 1000,
      signal: interrupts.signal,
      onResult: (r) => {
        if (r.action !== 'damaged' && r.action !== 'unknown-definition') return;
        engineLogger.error({ sagaId: r.sagaId, event: 'recover-skipped', reason: r.action, err: { message: r.error } }, `cannot recover saga ${r.sagaId}: ${r.error}; see \`saga show ${r.sagaId}\``);
      },
    });

    await new Promise<void>((resolve) => interrupts.signal.addEventListener('abort', () => resolve(), { once: true }));
    const signal = String(interrupts.signal.reason);
    logger.info({ event: 'stopping', signal, inFlight: inFlight.size }, `${signal}: no new requests; waiting up to ${graceMs} ms for ${inFlight.size} saga(s) in flight (${signal} again stops at once)`);
    closing.abort();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)));
    const ended = await Promise.race([Promise.all([server.close(), recovery, inFlight.drain(graceMs)]).then(() => true), graceOver]);
    clearTimeout(timer);
    if (ended) {
      logger.info({ event: 'stopped', signal }, 'stopped: every saga in flight reached its end');
      return ExitCode.ok;
    }
    // Nothing is lost: each saga still running keeps its lease; recovery (the next start of a
    // server, another server, `saga recover`) sees this process gone and finishes it.
    logger.warn({ event: 'stopped', signal, leftToRecovery: inFlight.size }, `stopped after the ${graceMs} ms grace period: ${inFlight.size} saga(s) still running are left to recovery`);
    exitSoon(ExitCode.ok);
    return ExitCode.ok;
  } finally {
    interrupts.dispose();
    // Spans of the last sagas go out before the process ends (bounded, see telemetry/).
    await tracing?.shutdown();
    closeLog();
    await app.close().catch(() => undefined);
  }
}

/** Sockets or sagas still open after the grace period would keep the process alive: end it. */
function exitSoon(code: number): void {
  setTimeout(() => process.exit(code), 200).unref();
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
