-- The W3C traceparent (https://www.w3.org/TR/trace-context/) of the trace a saga started in, when
-- tracing was on: a recoverer that resumes the saga continues the same trace. NULL: not traced.
ALTER TABLE sagas ADD COLUMN trace_context TEXT;
