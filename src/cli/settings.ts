import { InvalidArgumentError } from 'commander';
import { DEFAULTS, setting, type SettingKey, type Sources } from '../config.js';
import { isPostgresUrl, isUrl, parsePgSchema, parsePostgresUrl, redactUrl } from '../store/postgres/url.js';
import { DELAY_POINTS, type FaultPlan } from '../engine/faults.js';
import { UsageError } from '../errors.js';
import { LOG_LEVELS } from '../log-levels.js';
import type { Durability } from '../store/sql.js';
import { CHECKOUT_STEPS } from '../checkout/checkout-saga.js';
import { parseChoice, parseCompensationFailMode, parseCount, parseFailMode } from './parsers.js';

/** Settings every command shares, resolved once: flags > environment > .env > defaults. */
export interface GlobalSettings {
  readonly db: string;
  /** PostgreSQL only: the schema holding saga's tables (SAGA_PG_SCHEMA, default `saga`). */
  readonly pgSchema: string;
  readonly logFile: string;
  readonly logLevel: string;
  readonly durability: Durability;
  readonly stepTimeoutMs: number;
  readonly leaseMs: number;
  readonly retryBaseMs: number;
}

export function resolveGlobals(sources: Sources): GlobalSettings {
  const db = databaseSetting(sources);
  return {
    db,
    // Checked only where it means something: a stray SAGA_PG_SCHEMA does not break SQLite.
    pgSchema: isPostgresUrl(db) ? checked(sources, 'SAGA_PG_SCHEMA', undefined, parsePgSchema) : DEFAULTS.SAGA_PG_SCHEMA,
    logFile: checked(sources, 'SAGA_LOG_FILE', 'logFile', (v) => v),
    logLevel: checked(sources, 'LOG_LEVEL', undefined, parseChoice('LOG_LEVEL', LOG_LEVELS)),
    durability: checked(sources, 'SAGA_SYNC', 'sync', parseChoice<Durability>('--sync', ['full', 'normal'])),
    stepTimeoutMs: checked(sources, 'SAGA_STEP_TIMEOUT_MS', 'stepTimeout', parseCount('--step-timeout', 1, 3_600_000)),
    leaseMs: checked(sources, 'SAGA_LEASE_MS', undefined, parseCount('SAGA_LEASE_MS', 100, 3_600_000)),
    retryBaseMs: checked(sources, 'SAGA_RETRY_BASE_MS', undefined, parseCount('SAGA_RETRY_BASE_MS', 0, 60_000)),
  };
}

/**
 * `--db`, else SAGA_DB, else DATABASE_URL when it is a postgres:// URL (the variable hosting
 * platforms set; another database's URL there is not ours), each from the environment before .env.
 */
function databaseSetting(sources: Sources): string {
  const flag = sources.flags.db;
  if (typeof flag === 'string') {
    if (flag.trim() === '') throw new UsageError('--db is empty: give a file path such as ./saga.db, or a postgres:// URL');
    return checkedDatabase(flag);
  }
  for (const from of [sources.env, sources.dotenv]) {
    if (from.SAGA_DB) return checkedDatabase(from.SAGA_DB);
    if (from.DATABASE_URL && isPostgresUrl(from.DATABASE_URL)) return checkedDatabase(from.DATABASE_URL);
  }
  return DEFAULTS.SAGA_DB;
}

/** Whether the database was named (flag, environment or .env) rather than left to the default. */
export function databaseNamed(sources: Sources): boolean {
  if (typeof sources.flags.db === 'string') return true;
  return [sources.env, sources.dotenv].some((from) => Boolean(from.SAGA_DB) || Boolean(from.DATABASE_URL && isPostgresUrl(from.DATABASE_URL)));
}

/** Whether the log file was named (flag, environment or .env) rather than left to the default. */
export function logFileNamed(sources: Sources): boolean {
  return typeof sources.flags.logFile === 'string' || Boolean(sources.env.SAGA_LOG_FILE) || Boolean(sources.dotenv.SAGA_LOG_FILE);
}

/** A URL is checked here, before anything opens: a bad one is bad input, said without its password. */
function checkedDatabase(db: string): string {
  if (isPostgresUrl(db)) {
    parsePostgresUrl(db);
  } else if (isUrl(db)) {
    const scheme = db.slice(0, db.indexOf('://'));
    throw new UsageError(`${redactUrl(db)}: saga does not support ${scheme}:// databases; give a SQLite file path (such as ./saga.db) or a postgres:// (postgresql://) URL`);
  }
  return db;
}

/** Failure injection for `checkout`, from its flags or the SAGA_FAIL_* variables. */
export function resolveFaults(sources: Sources): FaultPlan {
  const step = parseChoice('--fail-at', CHECKOUT_STEPS);
  const compensationStep = parseChoice('--fail-compensation', CHECKOUT_STEPS);
  const failAt = optional(sources, 'SAGA_FAIL_AT', 'failAt', step);
  const mode = optional(sources, 'SAGA_FAIL_MODE', 'failMode', parseFailMode);
  const times = optional(sources, 'SAGA_FAIL_TIMES', 'failTimes', parseCount('--fail-times', 1, 100));
  const failCompensation = optional(sources, 'SAGA_FAIL_COMPENSATION', 'failCompensation', compensationStep);
  const compensationMode = optional(sources, 'SAGA_FAIL_COMPENSATION_MODE', 'failCompensationMode', parseCompensationFailMode);
  if (mode !== undefined && failAt === undefined) throw new UsageError('--fail-mode needs --fail-at <step> to say which step fails', 'conflicting_options');
  if (compensationMode !== undefined && failCompensation === undefined) {
    throw new UsageError('--fail-compensation-mode needs --fail-compensation <step> to say which compensation fails', 'conflicting_options');
  }
  if (times !== undefined && failAt === undefined && failCompensation === undefined) {
    throw new UsageError('--fail-times needs --fail-at or --fail-compensation to say what fails', 'conflicting_options');
  }
  if (times !== undefined && failCompensation === undefined && (mode === undefined || mode === 'error' || mode === 'crash')) {
    throw new UsageError(`--fail-times counts failed attempts of --fail-mode transient or timeout; --fail-mode ${mode ?? 'error'} fails once for good`, 'conflicting_options');
  }
  const plan: FaultPlan = {
    ...(failAt === undefined ? {} : { failAt, mode: mode ?? 'error' }),
    ...(times === undefined || failAt === undefined ? {} : { times }),
    ...(failCompensation === undefined ? {} : { failCompensation, compensationMode: compensationMode ?? 'transient' }),
    ...(times === undefined || failCompensation === undefined ? {} : { compensationTimes: times }),
  };
  const crashAt = setting(sources, 'SAGA_CRASH_AT');
  const delayAt = delayPoints(setting(sources, 'SAGA_DELAY_AT'));
  return {
    ...plan,
    ...(crashAt === undefined ? {} : { crashAt: crashAt.split(',').map((p) => p.trim()).filter(Boolean) }),
    ...(delayAt === undefined ? {} : { delayAt }),
  };
}

/** SAGA_DELAY_AT (tests only): `<point>=<ms>`, comma-separated. */
function delayPoints(raw: string | undefined): Record<string, number> | undefined {
  if (raw === undefined) return undefined;
  const delays: Record<string, number> = {};
  for (const item of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [point, ms] = item.split('=').map((p) => p.trim());
    if (!(DELAY_POINTS as readonly string[]).includes(point ?? '') || ms === undefined || !/^\d{1,5}$/.test(ms)) {
      throw new UsageError(`SAGA_DELAY_AT=${raw} is invalid: give <point>=<milliseconds>, where the point is one of ${DELAY_POINTS.join(', ')}`);
    }
    delays[point!] = Number(ms);
  }
  return delays;
}

/**
 * A flag arrives already parsed by commander; an environment or .env value is parsed here with
 * the same parser, and a bad one is named by its variable.
 */
function optional<T>(sources: Sources, key: SettingKey, flag: string | undefined, parse: (text: string) => T): T | undefined {
  if (flag !== undefined && sources.flags[flag] !== undefined) return sources.flags[flag] as T;
  const raw = setting(sources, key);
  if (raw === undefined) return undefined;
  try {
    return parse(raw);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new UsageError(`${key}=${raw} is invalid: ${err.message}`);
    throw err;
  }
}

function checked<T>(sources: Sources, key: SettingKey, flag: string | undefined, parse: (text: string) => T): T {
  const value = optional(sources, key, flag, parse);
  if (value === undefined) throw new Error(`no default for ${key}`);
  return value;
}
