import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Sources } from '../config.js';
import { UsageError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import type { GlobalSettings } from './settings.js';

/** What main.ts hands every command: resolved settings and where to write. */
export interface CommandContext {
  readonly sources: Sources;
  readonly settings: GlobalSettings;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly color: boolean;
}

/** The command's logger: JSON lines to the log file, readable lines to stderr. */
export function commandLogger(ctx: CommandContext): { logger: Logger; close(): void } {
  const dir = dirname(resolve(ctx.settings.logFile));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UsageError(`the directory of --log-file ${ctx.settings.logFile} does not exist: create ${dir} first or choose another path`);
  }
  return createLogger({ level: ctx.settings.logLevel, logFile: ctx.settings.logFile, console: ctx.stderr, color: ctx.color });
}
