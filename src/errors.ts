/**
 * Errors that a user is meant to read. Each carries the exit code it ends the process with and a
 * message that already says what is wrong and what to do; `cli/main.ts` is the one place that
 * turns them into output. Anything that is not a `SagaError` is a bug: exit 1 with its stack.
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

export class SagaError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Invalid input or usage: nothing was written. */
export class UsageError extends SagaError {
  constructor(message: string) {
    super(message, ExitCode.usage);
  }
}

/** The database file cannot be used (not SQLite, corrupt, or made by a newer saga). */
export class DatabaseUnusableError extends SagaError {
  constructor(message: string) {
    super(message, ExitCode.internal);
  }
}

/** The database failed under a running command (connection lost, server down, disk full): not a bug. */
export class DatabaseFailedError extends SagaError {
  constructor(message: string) {
    super(message, ExitCode.internal);
  }
}
