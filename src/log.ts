import { Chalk, type ChalkInstance } from 'chalk';
import { closeSync, openSync, writeSync } from 'node:fs';
import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * One pino logger, two destinations:
 * - `saga.log`: pino's JSON lines, appended with a synchronous write per line, so a line that
 *   was logged is in the file even if the process is killed the next instant. The file is
 *   opened on the first line, so a command that fails validation leaves no file behind.
 * - the console (stderr): the same records as short readable lines, coloured on a terminal.
 */
export interface LoggerOptions {
  readonly level: string;
  readonly logFile: string;
  /** Where readable lines go; `undefined` for none (bench, tests). */
  readonly console?: NodeJS.WritableStream & { isTTY?: boolean };
  readonly color?: boolean;
  /** Called once if the log file cannot be written; logging goes on without it. */
  readonly onFileError?: (err: Error) => void;
}

/**
 * `together(write)`: every line `write` logs reaches each destination in one write() (the engine
 * logs the records of one commit so), still synchronously, before `together` returns.
 */
export type SagaLogger = Logger & { together(write: () => void): void };

export function createLogger(opts: LoggerOptions): { logger: SagaLogger; close(): void } {
  const file = lazyAppendFile(opts.logFile, opts.onFileError);
  const streams: pino.StreamEntry[] = [{ stream: file, level: opts.level as pino.Level }];
  const corks: Corked[] = [file];
  if (opts.console !== undefined) {
    const chalk = new Chalk({ level: opts.color ? 1 : 0 });
    const out = opts.console;
    const screen = corkable((text) => {
      try {
        out.write(text);
      } catch {
        // A console that went away (a closed pipe) must not stop the saga.
      }
    });
    corks.push(screen);
    streams.push({ stream: { write: (line: string) => screen.write(formatLine(line, chalk)) }, level: opts.level as pino.Level });
  }
  const logger = pino(
    {
      level: opts.level,
      timestamp: isoTime,
      base: { pid: process.pid },
      // Our `err` is already plain data ({ message, kind }); pino's Error serializer would add noise.
      serializers: { err: (e: unknown) => e },
    },
    pino.multistream(streams),
  );
  let depth = 0;
  const together = (write: () => void) => {
    depth += 1;
    if (depth === 1) for (const c of corks) c.cork();
    try {
      write();
    } finally {
      depth -= 1;
      if (depth === 0) for (const c of corks) c.uncork();
    }
  };
  return { logger: Object.assign(logger, { together }), close: () => file.close() };
}

interface Corked {
  write(text: string): void;
  cork(): void;
  uncork(): void;
}

/** Passes text on at once, or, between cork() and uncork(), all of it at uncork() in one piece. */
function corkable(out: (text: string) => void): Corked {
  let held: string[] | undefined;
  return {
    write: (text) => (held === undefined ? out(text) : void held.push(text)),
    cork: () => void (held = []),
    uncork: () => {
      const text = held?.join('');
      held = undefined;
      if (text) out(text);
    },
  };
}

/** pino's isoTime, made once per millisecond: a commit logs several lines in the same one. */
let lastMs = -1;
let lastTime = '';
function isoTime(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastTime = `,"time":"${new Date(ms).toISOString()}"`;
  }
  return lastTime;
}

/**
 * Opened on the first line. A write that fails (disk full, file removed from under us) must not
 * abort a saga half-way: the logger reports it once and carries on without the file.
 */
function lazyAppendFile(path: string, onError?: (err: Error) => void): Corked & { close(): void } {
  let fd: number | undefined;
  let broken = false;
  const lines = corkable((text) => {
    if (broken) return;
    try {
      fd ??= openSync(path, 'a');
      writeSync(fd, text);
    } catch (err) {
      broken = true;
      onError?.(err as Error);
    }
  });
  return {
    ...lines,
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/**
 * Saga ids are time-ordered (UUIDv7): their first characters are a timestamp and repeat for
 * sagas made in the same minute, so the console shows the random end. `saga show` takes it.
 */
export function shortId(sagaId: string): string {
  return sagaId.slice(-8);
}

const STEP_EVENTS = new Set<unknown>(['started', 'succeeded', 'failed', 'retrying']);
const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** One pino JSON line to one readable console line. */
export function formatLine(json: string, chalk: ChalkInstance): string {
  const r = JSON.parse(json) as Record<string, unknown>;
  const time = typeof r.time === 'string' ? r.time.slice(11, 23) : '';
  const level = LEVEL_NAMES[r.level as number] ?? 'INFO';
  const levelText = level === 'ERROR' || level === 'FATAL' ? chalk.red.bold(level.padEnd(5)) : level === 'WARN' ? chalk.yellow(level.padEnd(5)) : chalk.dim(level.padEnd(5));
  if (typeof r.step !== 'string' || !STEP_EVENTS.has(r.event) || (r.phase !== 'action' && r.phase !== 'compensation')) {
    const saga = typeof r.sagaId === 'string' ? ` ${chalk.dim(shortId(r.sagaId))}` : '';
    const msg = String(r.msg ?? '');
    return `${chalk.dim(time)} ${levelText}${saga} ${level === 'ERROR' ? chalk.red(msg) : msg}\n`;
  }
  const event = r.event as string;
  const mark = r.phase === 'compensation' ? chalk.magenta('↩ ') : '  ';
  const paint = event === 'succeeded' ? chalk.green : event === 'failed' ? chalk.red : event === 'retrying' ? chalk.yellow : chalk.cyan;
  const parts = [
    chalk.dim(time),
    levelText,
    chalk.dim(shortId(String(r.sagaId ?? ''))),
    `${mark}${chalk.bold(r.step.padEnd(9))}`,
    r.phase.padEnd(12),
    paint(event.padEnd(9)),
    chalk.dim(`#${String(r.attempt ?? 1)}`),
  ];
  if (typeof r.durationMs === 'number') parts.push(chalk.dim(`${r.durationMs.toFixed(1)}ms`));
  if (typeof r.delayMs === 'number') parts.push(chalk.yellow(`next try in ${r.delayMs}ms`));
  const err = r.err as { message?: string } | undefined;
  if (err?.message !== undefined) parts.push(chalk.red(err.message));
  return `${parts.join(' ')}\n`;
}
