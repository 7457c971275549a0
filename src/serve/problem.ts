import { STATUS_CODES } from 'node:http';
import type { FastifyReply } from 'fastify';
import { SagaError, type ErrorCode } from '../errors.js';

/**
 * Errors as HTTP answers: RFC 9457 problem details (`application/problem+json`). Every problem
 * carries the same stable `code` the CLI prints with `--json`, so a client matches on `code`,
 * never on the wording of `detail`. This file is the one place where a code decides an HTTP
 * status (as `ERROR_CODES` in errors.ts is for exit codes). `type` is `about:blank`: the code
 * says what kind of problem it is, and `title` is then the status's own phrase (RFC 9457, 4.2.1).
 */

/** Conditions only HTTP has (no command prints them, so they have no exit code). */
export const HTTP_ONLY_CODES = {
  /** The body does not fit the request's schema (a missing, unknown or badly typed field). */
  invalid_body: 400,
  /** SAGA_API_TOKEN is set and the request has no `Authorization: Bearer <token>`, or another token. */
  unauthorized: 401,
  /** The body asks for `faults` and the server was started without `--allow-faults`. */
  faults_disabled: 403,
  /** No such route. */
  not_found: 404,
  /** The route exists, not with this method. */
  method_not_allowed: 405,
  /** A request with this Idempotency-Key is still running; try again later. */
  key_in_flight: 409,
  /** The body is larger than the server accepts. */
  body_too_large: 413,
  /** The body is not `application/json`. */
  unsupported_media_type: 415,
  /** The server is shutting down (or the database is not answering, for /readyz). */
  unavailable: 503,
} as const;
export type HttpOnlyCode = keyof typeof HTTP_ONLY_CODES;
export type ProblemCode = ErrorCode | HttpOnlyCode;

/** The HTTP status of every code a SagaError can carry. */
const SAGA_ERROR_STATUS = {
  invalid_usage: 400,
  invalid_value: 400,
  conflicting_options: 400,
  bad_path: 400,
  // The request is well-formed, but names something the catalog does not have.
  unknown_product: 422,
  unknown_customer: 422,
  unknown_saga: 404,
  ambiguous_saga_id: 400,
  // Cancel or retry of a saga that ended, or retry of one a live owner drives: the saga's state conflicts.
  saga_ended: 409,
  saga_busy: 409,
  // The IETF Idempotency-Key draft: a key reused with another body is 422.
  key_conflict: 422,
  no_database: 503,
  database_read_only: 503,
  sagas_in_flight: 409,
  not_confirmed: 400,
  database_unusable: 503,
  database_failed: 503,
  saga_vanished: 500,
  // The earlier saga of this key is left neither done nor undone: the state of the resource conflicts.
  saga_undrivable: 409,
  interrupted: 503,
  internal: 500,
} as const satisfies Record<ErrorCode, number>;

export function statusOf(code: ProblemCode): number {
  return code in HTTP_ONLY_CODES ? HTTP_ONLY_CODES[code as HttpOnlyCode] : SAGA_ERROR_STATUS[code as ErrorCode];
}

export interface Problem {
  readonly type: 'about:blank';
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: ProblemCode;
  /** The request field that is wrong (`qty`, `faults.mode`, the `Idempotency-Key` header). */
  readonly field?: string;
}

export function problem(code: ProblemCode, detail: string, extra: { field?: string } = {}): Problem {
  const status = statusOf(code);
  return { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, code, ...extra };
}

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type('application/problem+json').send(p);
}

/** Thrown by routes and hooks; the error handler (server.ts) sends it as it is. */
export class ProblemError extends Error {
  constructor(readonly problem: Problem, readonly headers: Readonly<Record<string, string>> = {}) {
    super(problem.detail);
    this.name = 'ProblemError';
  }
}

export function fail(code: ProblemCode, detail: string, extra: { field?: string; headers?: Record<string, string> } = {}): never {
  throw new ProblemError(problem(code, detail, extra.field === undefined ? {} : { field: extra.field }), extra.headers ?? {});
}

/** A SagaError (bad input the engine or the catalog found, a failing database) as a problem. */
export function problemOfSagaError(err: SagaError): Problem {
  return problem(err.code, err.message);
}
