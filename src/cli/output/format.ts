import { Chalk, type ChalkInstance } from 'chalk';
import type { SagaStatus } from '../../engine/store.js';

export function chalkFor(color: boolean): ChalkInstance {
  return new Chalk({ level: color ? 1 : 0 });
}

/** Stuck and unfinished sagas stand out: red and yellow, in capitals. */
export function paintStatus(c: ChalkInstance, status: SagaStatus, width = 12): string {
  const text = status.padEnd(width);
  switch (status) {
    case 'completed':
      return c.green(text);
    case 'compensated':
      return c.yellow(text);
    case 'stuck':
      return c.red.bold(status.toUpperCase().padEnd(width));
    case 'running':
    case 'compensating':
      return c.cyan.bold(status.toUpperCase().padEnd(width));
  }
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 10) return `${ms.toFixed(1)}ms`;
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** A time for people, in UTC as `list` and `show` print it: `2026-11-22 05:46:05.474`. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 23);
}

/**
 * Columns of saga's tables that hold milliseconds since the epoch. Not `owner_started_at`: that is
 * a process's start in clock ticks since boot, meaningful only next to another such number.
 */
const EPOCH_MS_COLUMNS = new Set(['created_at', 'updated_at', 'ended_at', 'lease_until', 'at', 'applied_at']);

/** A database row with its times as ISO 8601 strings (UTC), as every `--json` output writes times. */
export function withIsoTimes(row: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, EPOCH_MS_COLUMNS.has(k) && typeof v === 'number' ? new Date(v).toISOString() : v]));
}

/** A database row for people: its times as `formatTime` prints them, with " UTC". */
export function withReadableTimes(row: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, EPOCH_MS_COLUMNS.has(k) && typeof v === 'number' ? `${formatTime(v)} UTC` : v]));
}

/** Columns padded to the widest cell (ANSI codes excluded from the width). */
export function table(rows: readonly (readonly string[])[]): string {
  const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visible(cell))));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visible(cell)))).join('  ').trimEnd()).join('\n');
}

/**
 * `line` cut to `width` visible characters, ending in `…` when cut; colour codes are kept (and
 * closed), never counted.
 */
export function fitWidth(line: string, width: number): string {
  const parts = line.split(/(\x1b\[[0-9;]*m)/);
  if (parts.reduce((n, p, i) => n + (i % 2 === 1 ? 0 : [...p].length), 0) <= width) return line;
  let left = width - 1;
  let out = '';
  for (const [i, part] of parts.entries()) {
    if (i % 2 === 1) {
      out += part;
      continue;
    }
    const chars = [...part];
    out += chars.slice(0, Math.max(left, 0)).join('');
    left -= chars.length;
    if (left < 0) break;
  }
  return `${out}…${line.includes('\x1b[') ? '\x1b[0m' : ''}`;
}
