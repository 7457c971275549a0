/**
 * Whether to trace, read from the standard OpenTelemetry variables only (the OTLP exporter reads
 * its endpoint, headers and certificates from the same environment). Pure, and free of any
 * OpenTelemetry import: deciding that tracing is off must not load the SDK.
 *
 * On when OTEL_TRACES_EXPORTER names `otlp`, or an OTLP endpoint is set; off when
 * OTEL_SDK_DISABLED=true (it wins over everything) or OTEL_TRACES_EXPORTER=none. A setting saga
 * cannot honour (another exporter, the grpc protocol) leaves tracing off and says so in `warning`:
 * telemetry that is misconfigured must never stop a checkout.
 */
export type TraceSettings =
  | { readonly on: false; readonly warning?: string }
  | {
      readonly on: true;
      readonly protocol: 'http/protobuf' | 'http/json';
      readonly serviceName: string;
      /** The exporter's timeout when the environment sets none: a short-lived command must not wait long for a collector. */
      readonly timeoutMs: number | undefined;
    };

type Env = Readonly<Record<string, string | undefined>>;

/** How long a command waits, at most, for its spans to reach the collector before it exits. */
export const FLUSH_BUDGET_MS = 1000;

export function traceSettings(env: Env): TraceSettings {
  const value = (name: string) => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  if (value('OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return { on: false };
  const exporters = (value('OTEL_TRACES_EXPORTER') ?? '').toLowerCase().split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (exporters.includes('none')) return { on: false };
  if (exporters.length > 0 && !exporters.includes('otlp')) {
    return { on: false, warning: `OTEL_TRACES_EXPORTER=${value('OTEL_TRACES_EXPORTER')!} is not supported (saga exports traces with otlp only); traces are off` };
  }
  const endpoint = value('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? value('OTEL_EXPORTER_OTLP_ENDPOINT');
  if (exporters.length === 0 && endpoint === undefined) return { on: false };
  const protocolVar = value('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') === undefined ? 'OTEL_EXPORTER_OTLP_PROTOCOL' : 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL';
  const protocol = value(protocolVar) ?? 'http/protobuf';
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
    return { on: false, warning: `${protocolVar}=${protocol} is not supported (saga sends traces over http/protobuf or http/json); traces are off` };
  }
  const timeoutSet = value('OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') !== undefined || value('OTEL_EXPORTER_OTLP_TIMEOUT') !== undefined;
  return { on: true, protocol, serviceName: value('OTEL_SERVICE_NAME') ?? 'saga', timeoutMs: timeoutSet ? undefined : FLUSH_BUDGET_MS };
}
