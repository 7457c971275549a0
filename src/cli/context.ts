import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Sources } from '../config.js';
import { UsageError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import type { GlobalSettings } from './settings.js';
import type { OnLockWait } from '../store/sqlite/lock-wait.js';
import { writable } from '../files.js';

/** What main.ts hands every command: resolved settings and where to write. */
export interface CommandContext {
  readonly sources: Sources;
  readonly settings: GlobalSettings;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Colour on stdout (tables, summaries) and on stderr (log lines): each stream decides for itself. */
  readonly color: boolean;
  readonly colorErr: boolean;
}

/**
 * Refuses a log file that cannot be appended to (missing directory, a directory, no permission)
 * before the command changes anything, without creating the file: bad input leaves no trace.
 */
export function checkLogFile(path: string): void {
  if (path.trim() === '') throw new UsageError('--log-file is empty: give a file path such as ./saga.log', 'bad_path');
  const full = resolve(path);
  if (existsSync(full)) {
    if (statSync(full).isDirectory()) throw new UsageError(`--log-file ${path} is a directory: give a file path such as ${path}/saga.log`, 'bad_path');
    if (!writable(full)) throw new UsageError(`the log file ${path} is not writable: fix its permissions, or choose another file with --log-file (or SAGA_LOG_FILE)`, 'bad_path');
    return;
  }
  const dir = dirname(full);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UsageError(`the directory of the log file ${path} does not exist: create ${dir} first, or choose another file with --log-file (or SAGA_LOG_FILE)`, 'bad_path');
  }
  if (!writable(dir)) throw new UsageError(`cannot create the log file ${path}: ${dir} is not writable; choose another file with --log-file (or SAGA_LOG_FILE)`, 'bad_path');
}

/**
 * The command's logger: JSON lines to the log file, readable lines to stderr. Commands call
 * `checkLogFile` first, before they change anything.
 */
export function commandLogger(ctx: CommandContext, opts: { console?: boolean } = {}): { logger: Logger; close(): void } {
  return createLogger({
    level: ctx.settings.logLevel,
    logFile: ctx.settings.logFile,
    // --quiet only drops the console copy: the log file keeps every line.
    ...(opts.console === false || ctx.settings.quiet ? {} : { console: ctx.stderr }),
    color: ctx.colorErr,
    onFileError: (err) => ctx.stderr.write(`saga: cannot write to ${ctx.settings.logFile} (${err.message}); continuing without the log file\n`),
  });
}

/**
 * How many columns output should fit in: COLUMNS when set (as `ls` and others honour it), else
 * the terminal's width; undefined when stdout is not a terminal, where a line is never cut (a
 * script reading it wants every character).
 */
export function outputWidth(ctx: Pick<CommandContext, 'stdout' | 'sources'>): number | undefined {
  const columns = ctx.sources.env.COLUMNS;
  if (columns !== undefined && /^\d{1,4}$/.test(columns) && Number(columns) >= 20) return Number(columns);
  const out = ctx.stdout as { isTTY?: boolean; columns?: number };
  return out.isTTY === true && typeof out.columns === 'number' && out.columns > 0 ? out.columns : undefined;
}

/**
 * What a command passes to `openApp` so that a wait on another process's SQLite write lock is
 * said once, on stderr, instead of looking like a hang.
 */
export function lockWaitNotice(ctx: CommandContext): OnLockWait {
  return ({ database, budgetMs }) => {
    ctx.stderr.write(`saga: waiting for another process's write lock on ${database} (up to ${budgetMs / 1000} s; Ctrl-C to give up)\n`);
  };
}
