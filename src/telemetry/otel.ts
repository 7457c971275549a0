import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { parseTraceParent } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { EngineLogger } from '../engine/runner.js';
import type { StepEvent } from '../engine/store.js';
import { noTracing, type SagaTrace, type SagaTraceOutcome, type SagaTracer } from '../engine/tracing.js';
import type { Tracing } from './load.js';
import { FLUSH_BUDGET_MS, type TraceSettings } from './settings.js';

/**
 * The OpenTelemetry side of tracing; loaded (by load.ts) only when tracing is on. Spans are made
 * with explicit parents and times, from the engine's durable log records, so no global provider
 * or context manager is installed: nothing else in the process is affected.
 */
export function openTelemetryTracing(settings: Extract<TraceSettings, { on: true }>): Tracing {
  // The exporters read their endpoint, headers and certificates from the OTEL_* environment.
  const config = settings.timeoutMs === undefined ? {} : { timeoutMillis: settings.timeoutMs };
  // Both exporters are imported statically: in the CLI bundle they are external modules, and a
  // dynamic import() of one would not work in the code-cached script bin/saga.cjs runs.
  const exporter: SpanExporter = settings.protocol === 'http/json' ? new JsonExporter(config) : new ProtobufExporter(config);
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('saga');
  return {
    tracer: sagaTracer(tracer),
    shutdown: () => bounded(provider.shutdown(), FLUSH_BUDGET_MS),
  };
}

/** Waits for `work` at most `ms`; an unreachable collector costs that much, never an error. */
async function bounded(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  try {
    await Promise.race([work.then(() => undefined, () => undefined), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The engine's tracer: one root span per saga run, one child per attempt, one per back-off. */
export function sagaTracer(tracer: Tracer): SagaTracer {
  return {
    startSaga(info) {
      try {
        return new SpanTrace(tracer, info);
      } catch {
        return noTracing.startSaga(info);
      }
    },
  };
}

const attemptKey = (phase: string, step: string, attempt: unknown) => `${phase}:${step}:${String(attempt)}`;

/**
 * One saga run as spans. Telemetry must never break a saga: every method swallows what the SDK
 * might throw.
 */
class SpanTrace implements SagaTrace {
  readonly context: string | undefined;
  private readonly root: Span;
  private readonly rootContext: Context;
  /** Attempts whose outcome is not recorded yet. */
  private readonly open = new Map<string, Span>();
  /** Back-offs under way, per step and phase: each ends when the next attempt starts. */
  private readonly backoffs = new Map<string, Span>();
  /** Every span of this run by attempt, so a log line about an attempt carries its span's ids. */
  private readonly ids = new Map<string, SpanContext>();

  constructor(
    private readonly tracer: Tracer,
    info: Parameters<SagaTracer['startSaga']>[0],
  ) {
    const parent = info.parent === undefined ? null : parseTraceParent(info.parent);
    const parentContext = parent === null ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, parent);
    this.root = tracer.startSpan(
      `saga ${info.definition}`,
      { startTime: Date.now(), attributes: { 'saga.id': info.sagaId, 'saga.definition': info.definition, 'saga.resumed': info.resumed } },
      parentContext,
    );
    this.rootContext = trace.setSpan(ROOT_CONTEXT, this.root);
    this.context = traceparentOf(this.root.spanContext());
  }

  recorded(ev: StepEvent): void {
    try {
      this.record(ev);
    } catch {
      // See the class comment.
    }
  }

  private record(ev: StepEvent): void {
    const key = attemptKey(ev.phase, ev.step, ev.attempt);
    const base: Attributes = { 'saga.id': ev.sagaId, 'saga.step': ev.step, 'saga.step_index': ev.stepIndex, 'saga.phase': ev.phase, 'saga.attempt': ev.attempt };
    if (ev.event === 'started') {
      this.endBackoff(`${ev.phase}:${ev.step}`, ev.at);
      const span = this.tracer.startSpan(
        ev.phase === 'action' ? ev.step : `compensate ${ev.step}`,
        { startTime: ev.at, attributes: { ...base, ...(ev.idempotencyKey === undefined ? {} : { 'saga.idempotency_key': ev.idempotencyKey }) } },
        this.rootContext,
      );
      this.open.set(key, span);
      this.ids.set(key, span.spanContext());
    } else if (ev.event === 'succeeded' || ev.event === 'failed') {
      // Its start is in an earlier run's log (a crash came between): the span covers what this run saw.
      const span = this.open.get(key) ?? this.tracer.startSpan(ev.phase === 'action' ? ev.step : `compensate ${ev.step}`, { startTime: ev.at - (ev.durationMs ?? 0), attributes: base }, this.rootContext);
      this.open.delete(key);
      this.ids.set(key, span.spanContext());
      span.setAttribute('saga.outcome', ev.event);
      if (ev.event === 'failed') {
        span.setAttributes({
          ...(ev.error === undefined ? {} : { 'saga.error': ev.error }),
          ...(ev.errorKind === undefined ? {} : { 'saga.error_kind': ev.errorKind }),
          'saga.uncertain': ev.uncertain === true,
        });
        span.setStatus({ code: SpanStatusCode.ERROR, ...(ev.error === undefined ? {} : { message: ev.error }) });
      }
      span.end(ev.at);
    } else {
      const span = this.tracer.startSpan(`backoff ${ev.step}`, { startTime: ev.at, attributes: { ...base, 'saga.retry.delay_ms': ev.delayMs ?? 0 } }, this.rootContext);
      this.backoffs.set(`${ev.phase}:${ev.step}`, span);
      this.ids.set(`retrying:${key}`, span.spanContext());
    }
  }

  private endBackoff(which: string, at: number): void {
    this.backoffs.get(which)?.end(at);
    this.backoffs.delete(which);
  }

  logger(base: EngineLogger): EngineLogger {
    const withIds = (obj: object) => {
      try {
        const f = obj as { step?: unknown; phase?: unknown; attempt?: unknown; event?: unknown };
        const key = typeof f.step === 'string' && typeof f.phase === 'string' ? attemptKey(f.phase, f.step, f.attempt) : undefined;
        const span = key === undefined ? undefined : f.event === 'retrying' ? this.ids.get(`retrying:${key}`) : this.ids.get(key);
        const ctx = span ?? this.root.spanContext();
        // The names of the OpenTelemetry log data model, as pino's own instrumentation writes them.
        return { ...obj, trace_id: ctx.traceId, span_id: ctx.spanId, trace_flags: `0${ctx.traceFlags.toString(16)}`.slice(-2) };
      } catch {
        return obj;
      }
    };
    return {
      info: (obj, msg) => base.info(withIds(obj), msg),
      warn: (obj, msg) => base.warn(withIds(obj), msg),
      error: (obj, msg) => base.error(withIds(obj), msg),
      ...(base.together === undefined ? {} : { together: (write: () => void) => base.together!(write) }),
    };
  }

  end(outcome: SagaTraceOutcome): void {
    try {
      const now = Date.now();
      for (const which of [...this.backoffs.keys()]) this.endBackoff(which, now);
      // An attempt with no outcome: the run stopped while it was in flight; recovery will know more.
      for (const span of this.open.values()) {
        span.setAttributes({ 'saga.outcome': 'unknown', 'saga.uncertain': true });
        span.end(now);
      }
      this.open.clear();
      this.root.setAttributes({
        'saga.outcome': outcome.status,
        ...(outcome.failedStep === undefined ? {} : { 'saga.failed_step': outcome.failedStep }),
        ...(outcome.error === undefined ? {} : { 'saga.error': outcome.error }),
        ...(outcome.interrupted === true ? { 'saga.interrupted': true } : {}),
        ...(outcome.cancelledBy === undefined ? {} : { 'saga.cancelled_by': outcome.cancelledBy }),
      });
      if (outcome.status !== 'completed') this.root.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error ?? outcome.status });
      this.root.end(now);
    } catch {
      // See the class comment.
    }
  }
}

/** A span's context as a W3C traceparent header value. */
export function traceparentOf(ctx: SpanContext): string {
  return `00-${ctx.traceId}-${ctx.spanId}-${`0${ctx.traceFlags.toString(16)}`.slice(-2)}`;
}
