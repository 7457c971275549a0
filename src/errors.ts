/**
 * Errors that a user is meant to read. Each carries a stable `code` (a string that scripts may
 * match on: it is in `--json` output and listed in docs/errors.md) and a message that already
 * says what is wrong and what to do. `ERROR_CODES` below is the one place where a code decides
 * the exit code, and `cli/report.ts` the one place that turns an error into output. Anything that
 * is not a `SagaError` is a bug: exit 1 with its stack.
 */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  rolledBack: 3,
  rollbackIncomplete: 4,
  violations: 5,
  sighup: 129,
  sigint: 130,
  sigterm: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * Every error code, with the exit code it ends the process with. Codes are part of the CLI's
 * contract: add new ones freely, never rename or reuse one. docs/errors.md lists them all (a
 * test keeps the two in step).
 */
export const ERROR_CODES = {
  /** The command line itself: an unknown option or command, a missing argument or option. */
  invalid_usage: ExitCode.usage,
  /** A flag, argument or environment value that is not valid (a bad number, an unknown step). */
  invalid_value: ExitCode.usage,
  /** An option that needs another one, or two that exclude each other. */
  conflicting_options: ExitCode.usage,
  /** `--db`, `--log-file` or a certificate names something that cannot be used as given. */
  bad_path: ExitCode.usage,
  /** The product is not in the catalog. */
  unknown_product: ExitCode.usage,
  /** The customer is not in the catalog. */
  unknown_customer: ExitCode.usage,
  /** No saga matches the id given. */
  unknown_saga: ExitCode.usage,
  /** A short saga id matches more than one saga. */
  ambiguous_saga_id: ExitCode.usage,
  /** `cancel` or `retry` of a saga that already ended (completed or compensated): nothing to do. */
  saga_ended: ExitCode.usage,
  /** `retry` of a saga a live process is driving (or that another process took over just now). */
  saga_busy: ExitCode.usage,
  /** `--key` was used before for a different checkout. */
  key_conflict: ExitCode.usage,
  /** There is no saga database where one is needed (run `saga seed`). */
  no_database: ExitCode.usage,
  /** The command must write, and the database (or its directory) is read-only. */
  database_read_only: ExitCode.usage,
  /** Sagas are being driven right now, so the command refuses to go on (`seed --reset`). */
  sagas_in_flight: ExitCode.usage,
  /** The user said no (or could not be asked) to a destructive command. */
  not_confirmed: ExitCode.usage,
  /** The database cannot be used: not a saga database, corrupt, made by a newer saga, unreachable. */
  database_unusable: ExitCode.internal,
  /** The database failed under a running command (connection lost, disk full, locked too long). */
  database_failed: ExitCode.internal,
  /** The saga disappeared from the database while this process waited for it. */
  saga_vanished: ExitCode.internal,
  /** An earlier saga of this `--key` is left neither done nor undone (as a stuck saga is). */
  saga_undrivable: ExitCode.rollbackIncomplete,
  /** A signal stopped the command; the exit code is 128 + the signal's number. */
  interrupted: ExitCode.sigint,
  /** A bug in saga: the message carries its stack. */
  internal: ExitCode.internal,
} as const satisfies Record<string, ExitCode>;
export type ErrorCode = keyof typeof ERROR_CODES;

/** The exit code of `saga checkout` for how its saga ended. */
export function exitCodeOfStatus(status: 'completed' | 'compensated' | 'stuck'): ExitCode {
  return status === 'completed' ? ExitCode.ok : status === 'compensated' ? ExitCode.rolledBack : ExitCode.rollbackIncomplete;
}

const SIGNAL_EXIT_CODES = { SIGHUP: ExitCode.sighup, SIGINT: ExitCode.sigint, SIGTERM: ExitCode.sigterm } as const;
export type StopSignal = keyof typeof SIGNAL_EXIT_CODES;

/** The exit code of a process stopped by `signal`: 128 + its number, as shells report it. */
export function signalExitCode(signal: StopSignal): ExitCode {
  return SIGNAL_EXIT_CODES[signal];
}

export class SagaError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;
  constructor(code: ErrorCode, message: string, exitCode: ExitCode = ERROR_CODES[code]) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** Invalid input or usage: nothing was written. */
export class UsageError extends SagaError {
  constructor(message: string, code: ErrorCode = 'invalid_value') {
    super(code, message);
  }
}

/** The database cannot be used (not SQLite, corrupt, made by a newer saga, unreachable). */
export class DatabaseUnusableError extends SagaError {
  constructor(message: string) {
    super('database_unusable', message);
  }
}

/** The database failed under a running command (connection lost, server down, disk full): not a bug. */
export class DatabaseFailedError extends SagaError {
  constructor(message: string) {
    super('database_failed', message);
  }
}
