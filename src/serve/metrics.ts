import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineLogger } from '../engine/runner.js';
import type { WriteCounters } from '../store/sql.js';

/**
 * Prometheus metrics on a registry of this server's own (never prom-client's global one, so two
 * servers in one test process, or a library that also uses prom-client, do not mix). The engine
 * knows nothing of them: they are fed by `observingLogger`, which sees every record the engine
 * logs, the same hook the console and saga.log use. Labels are few and bounded (step, phase,
 * outcome, route): never a saga id.
 */
export interface Metrics {
  readonly registry: Registry;
  /** A new saga's first record committed in this server. */
  sagaStarted(): void;
  httpRequest(method: string, route: string, status: number, seconds: number): void;
  /** Called with the fields of every engine log record. */
  observe(fields: Record<string, unknown>): void;
}

/**
 * `stuckCount` is asked at each scrape: stuck sagas are a state of the database, not of this
 * process. So are `counters`, the transactions this process committed (group commit shares them).
 */
export function createMetrics(stuckCount: () => Promise<number>, counters?: () => WriteCounters): Metrics {
  const registry = new Registry();
  if (counters !== undefined) {
    let seen = { commits: 0, providerCommits: 0 };
    new Counter({
      name: 'saga_db_commits_total',
      help: 'Transactions committed by this server, by system (saga_log or provider); concurrent sagas share them',
      labelNames: ['system'],
      registers: [registry],
      collect() {
        const now = counters();
        this.inc({ system: 'saga_log' }, now.commits - seen.commits);
        this.inc({ system: 'provider' }, now.providerCommits - seen.providerCommits);
        seen = { commits: now.commits, providerCommits: now.providerCommits };
      },
    });
  }
  const started = new Counter({ name: 'saga_started_total', help: 'Sagas started by this server', registers: [registry] });
  const ended = new Counter({ name: 'saga_ended_total', help: 'Sagas driven to an end by this server (requests and recovery), by outcome', labelNames: ['outcome'], registers: [registry] });
  const attempts = new Counter({ name: 'saga_step_attempts_total', help: 'Ended attempts of actions and compensations, by step, phase and outcome', labelNames: ['step', 'phase', 'outcome'], registers: [registry] });
  const latency = new Histogram({
    name: 'saga_step_duration_seconds',
    help: 'Duration of action and compensation attempts, by step and phase',
    labelNames: ['step', 'phase'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const retries = new Counter({ name: 'saga_step_retries_total', help: 'Retries scheduled after a transient failure, by step and phase', labelNames: ['step', 'phase'], registers: [registry] });
  const takeOvers = new Counter({ name: 'saga_takeovers_total', help: 'Abandoned sagas this server took over (recovery)', registers: [registry] });
  new Gauge({
    name: 'saga_stuck',
    help: 'Sagas in the database that are stuck now (a compensation exhausted its retries)',
    registers: [registry],
    async collect() {
      this.set(await stuckCount());
    },
  });
  const requests = new Counter({ name: 'saga_http_requests_total', help: 'HTTP requests answered, by method, route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const requestLatency = new Histogram({
    name: 'saga_http_request_duration_seconds',
    help: 'Time to answer HTTP requests, by method and route',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return {
    registry,
    sagaStarted: () => started.inc(),
    httpRequest(method, route, status, seconds) {
      requests.inc({ method, route, status: String(status) });
      requestLatency.observe({ method, route }, seconds);
    },
    observe(f) {
      const event = f.event;
      if (event === 'completed' || event === 'compensated' || event === 'stuck') {
        // A stuck record names the compensation that failed; a saga-level end names no phase.
        if (event !== 'stuck' || f.phase === 'compensation') ended.inc({ outcome: event });
        return;
      }
      if (event === 'taken-over') return void takeOvers.inc();
      if (typeof f.step !== 'string' || typeof f.phase !== 'string') return;
      const labels = { step: f.step, phase: f.phase };
      if (event === 'retrying') retries.inc(labels);
      if (event === 'succeeded' || event === 'failed') {
        attempts.inc({ ...labels, outcome: event });
        if (typeof f.durationMs === 'number') latency.observe(labels, f.durationMs / 1000);
      }
    },
  };
}

/** The engine's logger, with every record also shown to `observe` (metrics, the event feed). */
export function observingLogger(logger: EngineLogger, observe: (fields: Record<string, unknown>) => void): EngineLogger {
  const see = (obj: object) => {
    try {
      observe(obj as Record<string, unknown>);
    } catch {
      // Observing must never stop a saga.
    }
  };
  return {
    info: (obj, msg) => (see(obj), logger.info(obj, msg)),
    warn: (obj, msg) => (see(obj), logger.warn(obj, msg)),
    error: (obj, msg) => (see(obj), logger.error(obj, msg)),
    ...(logger.together === undefined ? {} : { together: (write: () => void) => logger.together!(write) }),
  };
}
