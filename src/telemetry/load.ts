import type { SagaTracer } from '../engine/tracing.js';
import { traceSettings } from './settings.js';

/** Tracing for one command (or one server): the engine's tracer and a bounded flush for the end. */
export interface Tracing {
  readonly tracer: SagaTracer;
  /** Sends what is left and stops; waits at most FLUSH_BUDGET_MS, never throws. */
  shutdown(): Promise<void>;
}

/**
 * Tracing as the OTEL_* variables ask, or undefined when they do not: then no OpenTelemetry
 * module is loaded at all (a plain checkout stays as fast to start as before). `warn` gets one
 * line when a variable asks for something saga cannot do.
 */
export async function loadTracing(env: Readonly<Record<string, string | undefined>>, warn: (line: string) => void): Promise<Tracing | undefined> {
  const settings = traceSettings(env);
  if (!settings.on) {
    if (settings.warning !== undefined) warn(settings.warning);
    return undefined;
  }
  try {
    const { openTelemetryTracing } = await import('./otel.js');
    return openTelemetryTracing(settings);
  } catch (err) {
    // Tracing that cannot start (a damaged install) must not stop what the command is for.
    warn(`cannot start tracing (${err instanceof Error ? err.message : String(err)}); traces are off`);
    return undefined;
  }
}
