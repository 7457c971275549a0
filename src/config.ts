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
} as const;
export type SettingKey = keyof typeof DEFAULTS | 'SAGA_FAIL_AT' | 'SAGA_FAIL_MODE' | 'SAGA_FAIL_TIMES'
  | 'SAGA_FAIL_COMPENSATION' | 'SAGA_FAIL_COMPENSATION_MODE' | 'SAGA_CRASH_AT' | 'SAGA_DELAY_AT';

export function readDotEnv(cwd: string): Record<string, string> {
  const path = `${cwd}/.env`;
  if (!existsSync(path) || !statSync(path).isFile()) return {};
  return parseEnv(readFileSync(path, 'utf8')) as Record<string, string>;
}

/**
 * The value of one setting from the environment, else `.env`, else its default. A flag, already
 * parsed by commander, wins over all three: see `cli/settings.ts`.
 */
export function setting(sources: Sources, key: SettingKey): string | undefined {
  const fromEnv = sources.env[key];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const fromFile = sources.dotenv[key];
  if (fromFile !== undefined && fromFile !== '') return fromFile;
  return (DEFAULTS as Record<string, string>)[key];
}
