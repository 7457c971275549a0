import type { EngineLogger } from '../engine/runner.js';

/**
 * What a saga being driven is doing now, read from the engine's own log records as they pass (the
 * engine stays unaware of who listens): the first Ctrl-C says at once what it will let finish.
 */
export interface SagaProgress {
  /** The logger to give the engine: every record goes on to `logger` unchanged. */
  readonly logger: EngineLogger;
  /**
   * What the first signal lets happen, such as "finishing payment (at most 5 s), then rolling
   * back"; undefined when it stops at once (a wait on another process's saga), and says so then.
   */
  describe(): string | undefined;
  /** This process waits for a saga another process drives (an idempotency key in use). */
  waitingFor(sagaId: string): void;
}

export interface SagaShape {
  /** The saga's step names, in order. */
  readonly steps: readonly string[];
  /** How long a step's attempt may run before it times out. */
  timeoutOf(step: string): number;
}

interface Seen {
  readonly event?: unknown;
  readonly step?: unknown;
  readonly phase?: unknown;
}

export function sagaProgress(logger: EngineLogger, shape: SagaShape): SagaProgress {
  let last: Seen = {};
  let waitingFor: string | undefined;
  const see = (fields: object) => {
    const f = fields as Seen;
    if (typeof f.event === 'string') {
      last = f;
      waitingFor = undefined;
    }
  };
  return {
    logger: {
      info: (o, m) => (see(o), logger.info(o, m)),
      warn: (o, m) => (see(o), logger.warn(o, m)),
      error: (o, m) => (see(o), logger.error(o, m)),
    },
    waitingFor: (sagaId) => (waitingFor = sagaId),
    describe() {
      if (waitingFor !== undefined) return undefined;
      const step = typeof last.step === 'string' ? last.step : undefined;
      const { event, phase } = last;
      if (event === 'completed' || event === 'compensated' || event === 'stuck') return 'the saga has ended; finishing up';
      if (step === undefined) return event === undefined ? 'stopping before the first step, then rolling back' : 'rolling back';
      if (phase === 'compensation') return `already rolling back (undoing ${step}); letting the rollback finish`;
      if (event === 'started') return `finishing ${step} (at most ${duration(shape.timeoutOf(step))}), then rolling back`;
      if (event === 'retrying') return `not retrying ${step}; rolling back`;
      if (event === 'succeeded') {
        return step === shape.steps.at(-1) ? `${step}, the last step, has run; finishing` : `stopping before the step after ${step}, then rolling back`;
      }
      return 'rolling back';
    },
  };
}

function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}
