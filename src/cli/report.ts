import { ERROR_CODES, SagaError, type ErrorCode } from '../errors.js';
import { databaseTrouble } from '../store/db-errors.js';

/** Where a failed command's words go: the text line always to stderr, the JSON object (with `--json`) to stdout. */
export interface ErrorOutput {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly json: boolean;
}

/** What `--json` prints on stdout when a command fails: stable `code`, the same message as stderr's line. */
export interface JsonError {
  readonly error: { readonly code: ErrorCode; readonly message: string };
  readonly exitCode: number;
}

/**
 * The one place where an error becomes output and an exit code. A `SagaError` was meant for the
 * user: its message and its code's exit code. The
 * database's own trouble is said in one line. Anything else is a bug: its stack, exit 1.
 */
export function reportError(err: unknown, out: ErrorOutput): number {
  const { code, message, exitCode, detail } = classify(err);
  out.stderr.write(`saga: ${message}\n${detail === undefined ? '' : `${detail}\n`}`);
  if (out.json) {
    const body: JsonError = { error: { code, message }, exitCode };
    out.stdout.write(`${JSON.stringify(body)}\n`);
  }
  return exitCode;
}

interface Classified {
  readonly code: ErrorCode;
  readonly message: string;
  readonly exitCode: number;
  /** More lines for stderr only (a bug's stack). */
  readonly detail?: string;
}

function classify(err: unknown): Classified {
  if (err instanceof SagaError) return { code: err.code, message: err.message, exitCode: err.exitCode };
  // The database, not our code (connection lost, server down, disk full): one line. A saga
  // caught half-way keeps its lease for `saga recover`.
  const trouble = databaseTrouble(err);
  if (trouble !== undefined) {
    return {
      code: 'database_failed',
      message: `the database failed (${trouble}): check that it is running, reachable, writable by this user and has free space, then run the command again; \`saga recover\` finishes any saga it interrupted`,
      exitCode: ERROR_CODES.database_failed,
    };
  }
  const first = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  return {
    code: 'internal',
    message: `internal error (a bug; please report it with this output): ${first}`,
    exitCode: ERROR_CODES.internal,
    detail: err instanceof Error ? (err.stack ?? err.message) : String(err),
  };
}

