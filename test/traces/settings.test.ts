import { describe, expect, it } from 'vitest';
import { traceSettings } from '../../src/telemetry/settings.js';

// When the standard OTEL_* variables turn tracing on: one line per case.
const ON = { on: true, protocol: 'http/protobuf', serviceName: 'saga', timeoutMs: 1000 };

describe('traceSettings', () => {
  it.each([
    ['nothing set', {}, { on: false }],
    ['only a service name', { OTEL_SERVICE_NAME: 'shop' }, { on: false }],
    ['an endpoint', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, ON],
    ['a traces endpoint', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, ON],
    ['the otlp exporter, default endpoint', { OTEL_TRACES_EXPORTER: 'otlp' }, ON],
    ['an empty endpoint', { OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }, { on: false }],
    ['OTEL_SDK_DISABLED wins', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'TRUE' }, { on: false }],
    ['OTEL_SDK_DISABLED=false changes nothing', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'false' }, ON],
    ['exporter none wins over an endpoint', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }, { on: false }],
    ['otlp among others', { OTEL_TRACES_EXPORTER: 'console, otlp' }, ON],
    ['a service name', { OTEL_TRACES_EXPORTER: 'otlp', OTEL_SERVICE_NAME: 'shop' }, { ...ON, serviceName: 'shop' }],
    ['http/json', { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, { ...ON, protocol: 'http/json' }],
    ['the traces protocol first', { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' }, { ...ON, protocol: 'http/json' }],
    ['the user\'s timeout is the exporter\'s', { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TIMEOUT: '5000' }, { ...ON, timeoutMs: undefined }],
    ['grpc', { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, { on: false, warning: 'OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported (saga sends traces over http/protobuf or http/json); traces are off' }],
    ['another exporter', { OTEL_TRACES_EXPORTER: 'zipkin', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, { on: false, warning: 'OTEL_TRACES_EXPORTER=zipkin is not supported (saga exports traces with otlp only); traces are off' }],
  ])('%s', (_, env, expected) => {
    expect(traceSettings(env)).toEqual(expected);
  });
});
