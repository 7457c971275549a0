import type { EngineLogger } from './runner.js';
import type { SagaStatus, StepEvent } from './store.js';

/**
 * How a saga is observed as a trace, without the engine knowing by what (OpenTelemetry lives at
 * the CLI's edge, src/telemetry/). The engine says when a saga starts or resumes, hands over each
 * log record once it is durable, and says how the saga ended; an implementation turns these into
 * spans. `noTracing` is the default: nothing is recorded and nothing is stored.
 */
export interface SagaTracer {
  /**
   * The saga's span for this run. `parent`: a W3C traceparent to continue, either the caller's
   * (an incoming request) or, for a resumed saga, the one stored with it when it started.
   */
  startSaga(info: { readonly sagaId: string; readonly definition: string; readonly parent?: string; readonly resumed: boolean }): SagaTrace;
}

export interface SagaTrace {
  /** A W3C traceparent naming this run's span, stored with a new saga so a recoverer continues its trace. */
  readonly context: string | undefined;
  /** A log record just committed (never one that might still be lost): attempts and back-offs are derived from these. */
  recorded(ev: StepEvent): void;
  /** The logger to use while this saga runs: each line may carry the ids of the span it belongs to. */
  logger(base: EngineLogger): EngineLogger;
  /** How this run ended; `unfinished` when it stopped on an error and the saga is left to recovery. */
  end(outcome: SagaTraceOutcome): void;
}

export interface SagaTraceOutcome {
  readonly status: Extract<SagaStatus, 'completed' | 'compensated' | 'stuck'> | 'unfinished';
  readonly failedStep?: string;
  readonly error?: string;
  readonly interrupted?: boolean;
  /** Who asked for the cancel the saga honoured, when it did. */
  readonly cancelledBy?: string;
}

const noTrace: SagaTrace = { context: undefined, recorded: () => undefined, logger: (base) => base, end: () => undefined };

export const noTracing: SagaTracer = { startSaga: () => noTrace };
