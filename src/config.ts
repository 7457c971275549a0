import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseEnv } from 'node:util';

/**
 * Settings come from four places, strongest first: command-line flags, the process environment,
 * a `.env` file in the current directory, built-in defaults. Resolution is a pure function of
 * those four so it can be tested table-driven; only `readDotEnv` touches the disk.
 */
export interface Sources {
  /** Values commander parsed, by option name; they win over everything else. */
  flags: Record<string, unknown>;
  env: Record<string, string | undefined>;
  dotenv: Record<string, string | undefined>;
  /** The line of `.env` each of its keys was read from (the last, when a key repeats). */
  dotenvLines?: Record<string, number>;
}

export const DEFAULTS = {
  SAGA_DB: './saga.db',
  SAGA_LOG_FILE: './saga.log',
  LOG_LEVEL: 'info',
  SAGA_SYNC: 'full',
  SAGA_STEP_TIMEOUT_MS: '5000',
  SAGA_LEASE_MS: '30000',
  SAGA_RETRY_BASE_MS: '100',
  SAGA_PG_SCHEMA: 'saga',
  SAGA_QUIET: '0',
} as const;
const OPTIONAL_SETTINGS = ['SAGA_FAIL_AT', 'SAGA_FAIL_MODE', 'SAGA_FAIL_TIMES', 'SAGA_FAIL_COMPENSATION', 'SAGA_FAIL_COMPENSATION_MODE', 'SAGA_CRASH_AT', 'SAGA_DELAY_AT', 'SAGA_API_TOKEN'] as const;
export type SettingKey = keyof typeof DEFAULTS | (typeof OPTIONAL_SETTINGS)[number];

/** Every SAGA_* variable saga reads: another one in .env is most likely a typo. */
export const SAGA_SETTINGS: readonly string[] = [...Object.keys(DEFAULTS).filter((k) => k.startsWith('SAGA_')), ...OPTIONAL_SETTINGS];

export function readDotEnv(cwd: string): Record<string, string> {
  return readDotEnvFile(cwd).values;
}

export interface DotEnv {
  readonly values: Record<string, string>;
  /** The line each key was read from, so a bad value can be pointed at. */
  readonly lines: Record<string, number>;
  /** Lines that are neither KEY=VALUE, a comment nor blank: ignored, and the user is told. */
  readonly ignored: readonly { line: number; text: string }[];
}

const ASSIGNMENT = /^\s*(?:export\s+)?([A-Za-z_][\w.-]*)\s*=\s*(.*)$/;

/**
 * `./.env`, scanned line by line for lines that are not KEY=VALUE (Node's `util.parseEnv` would
 * silently glue such a line to the next one, losing both), then parsed by parseEnv without them.
 * A quoted value may span lines; its continuation lines are not mistaken for malformed ones.
 */
export function readDotEnvFile(cwd: string): DotEnv {
  const path = `${cwd}/.env`;
  if (!existsSync(path) || !statSync(path).isFile()) return { values: {}, lines: {}, ignored: [] };
  const text = readFileSync(path, 'utf8');
  const lines: Record<string, number> = {};
  const ignored: { line: number; text: string }[] = [];
  let openQuote: string | undefined;
  const kept = text.split(/\r?\n/).map((raw, i) => {
    if (openQuote !== undefined) {
      if (raw.includes(openQuote)) openQuote = undefined;
      return raw;
    }
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return raw;
    const m = ASSIGNMENT.exec(raw);
    if (m === null) {
      // Left in, parseEnv would join it to the next line and lose that setting too.
      ignored.push({ line: i + 1, text: shownLine(trimmed) });
      return '';
    }
    lines[m[1]!] = i + 1;
    const value = m[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'" || quote === '`') && !value.slice(1).includes(quote)) openQuote = quote;
    return raw;
  });
  return { values: parseEnv(kept.join('\n')) as Record<string, string>, lines, ignored };
}

/**
 * The value of one setting from the environment, else `.env`, else its default. A flag, already
 * parsed by commander, wins over all three: see `cli/settings.ts`.
 */
export function setting(sources: Sources, key: SettingKey): string | undefined {
  return settingFrom(sources, key)?.value;
}

/**
 * A malformed line as a warning may quote it: a line that may hold a secret (a URL, a name such
 * as PASSWORD or TOKEN) is cut after its first word, and long lines after 60 characters.
 */
function shownLine(text: string): string {
  const first = text.split(/\s+/)[0]!;
  if (text.includes('://') || /pass|secret|token|pwd|key|credential/i.test(first)) return first === text ? text.replace(/:\/\/.*/, '://…') : `${first.replace(/:\/\/.*/, '://…')} …`;
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** Where a setting's value came from, in words a message can use. */
export type Origin = { readonly kind: 'environment' } | { readonly kind: '.env'; readonly line?: number } | { readonly kind: 'default' };

/** `setting`, and where its value came from. */
export function settingFrom(sources: Sources, key: SettingKey): { value: string; origin: Origin } | undefined {
  const fromEnv = sources.env[key];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, origin: { kind: 'environment' } };
  const fromFile = sources.dotenv[key];
  if (fromFile !== undefined && fromFile !== '') {
    const line = sources.dotenvLines?.[key];
    return { value: fromFile, origin: line === undefined ? { kind: '.env' } : { kind: '.env', line } };
  }
  const fallback = (DEFAULTS as Record<string, string>)[key];
  return fallback === undefined ? undefined : { value: fallback, origin: { kind: 'default' } };
}

/** `KEY=value` said with where it came from: `.env:3: KEY=value`, `environment variable KEY=value`. */
export function describeSetting(key: string, value: string, origin: Origin): string {
  if (origin.kind === 'environment') return `environment variable ${key}=${value}`;
  if (origin.kind === '.env') return `${origin.line === undefined ? '.env' : `.env:${origin.line}`}: ${key}=${value}`;
  return `${key}=${value}`;
}
