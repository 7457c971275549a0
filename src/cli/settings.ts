import { InvalidArgumentError } from 'commander';
import { DEFAULTS, describeSetting, setting, settingFrom, type SettingKey, type Sources } from '../config.js';
import { isPostgresUrl, isUrl, parsePgSchema, parsePostgresUrl, redactUrl } from '../store/postgres/url.js';
import { DELAY_POINTS, type FaultPlan } from '../engine/faults.js';
import { UsageError } from '../errors.js';
import { LOG_LEVELS } from '../log-levels.js';
import type { Durability } from '../store/sql.js';
import { CHECKOUT_STEPS } from '../checkout/checkout-saga.js';
import { parseChoice, parseCompensationFailMode, parseCount, parseFailMode, parseSwitch } from './parsers.js';

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
  /** No log lines on the console (saga.log keeps them all); summaries and `saga:` notices stay. */
  readonly quiet: boolean;
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
    quiet: checked(sources, 'SAGA_QUIET', 'quiet', parseSwitch('SAGA_QUIET')),
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
    for (const key of ['SAGA_DB', 'DATABASE_URL'] as const) {
      const value = from[key];
      if (!value || (key === 'DATABASE_URL' && !isPostgresUrl(value))) continue;
      try {
        return checkedDatabase(value);
      } catch (err) {
        // Said with where the value was set: a URL in .env is otherwise hard to find.
        if (!(err instanceof UsageError)) throw err;
        const line = sources.dotenvLines?.[key];
        const where = from === sources.env ? `environment variable ${key}` : `${line === undefined ? '.env' : `.env:${line}`}: ${key}`;
        throw new UsageError(`${where}: ${err.message}`, err.code);
      }
    }
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
  return resolveFaultSettings(sources).plan;
}

/** One injected fault, and the settings that asked for it, for the console and `--json`. */
export interface InjectedFault {
  readonly phase: 'action' | 'compensation';
  readonly step: string;
  readonly mode: string;
  readonly times: number | null;
  /** Where each setting behind it came from: `--fail-at payment`, `.env:3: SAGA_FAIL_AT=payment`. */
  readonly from: readonly string[];
}

/**
 * The fault plan, and what it injects with where each part was set: a fault set in `.env` and
 * forgotten makes every checkout fail, so the user is told where to switch it off. `none` (flag
 * or variable) switches a fault off for one run, whatever weaker settings say; the mode and count
 * that came with it are then ignored too.
 */
export function resolveFaultSettings(sources: Sources): { plan: FaultPlan; injected: InjectedFault[] } {
  const step = parseChoice('--fail-at', [...CHECKOUT_STEPS, 'none']);
  const compensationStep = parseChoice('--fail-compensation', [...CHECKOUT_STEPS, 'none']);
  const failAtSet = traced(sources, 'SAGA_FAIL_AT', 'failAt', '--fail-at', step);
  const failCompensationSet = traced(sources, 'SAGA_FAIL_COMPENSATION', 'failCompensation', '--fail-compensation', compensationStep);
  const failAt = failAtSet?.value === 'none' ? undefined : failAtSet?.value;
  const failCompensation = failCompensationSet?.value === 'none' ? undefined : failCompensationSet?.value;
  const failAtOff = failAtSet?.value === 'none';
  const compensationOff = failCompensationSet?.value === 'none';
  const modeSet = failAtOff ? undefined : traced(sources, 'SAGA_FAIL_MODE', 'failMode', '--fail-mode', parseFailMode);
  const timesSet = failAtOff && (compensationOff || failCompensation === undefined) ? undefined : traced(sources, 'SAGA_FAIL_TIMES', 'failTimes', '--fail-times', parseCount('--fail-times', 1, 100));
  const compensationModeSet = compensationOff ? undefined : traced(sources, 'SAGA_FAIL_COMPENSATION_MODE', 'failCompensationMode', '--fail-compensation-mode', parseCompensationFailMode);
  const mode = modeSet?.value;
  const times = timesSet?.value;
  const compensationMode = compensationModeSet?.value;
  // Each message names the setting as the user wrote it (a flag, or a line of .env), so one set in
  // .env is not reported as a flag the user never typed.
  if (mode !== undefined && failAt === undefined && !failAtOff) {
    throw new UsageError(`${modeSet!.said} needs a step to fail: add --fail-at <step> (or SAGA_FAIL_AT)${fixOf(modeSet!)}`, 'conflicting_options');
  }
  if (compensationMode !== undefined && failCompensation === undefined && !compensationOff) {
    throw new UsageError(`${compensationModeSet!.said} needs a compensation to fail: add --fail-compensation <step> (or SAGA_FAIL_COMPENSATION)${fixOf(compensationModeSet!)}`, 'conflicting_options');
  }
  if (times !== undefined && failAt === undefined && failCompensation === undefined) {
    throw new UsageError(`${timesSet!.said} needs something to fail: add --fail-at or --fail-compensation${fixOf(timesSet!)}`, 'conflicting_options');
  }
  if (times !== undefined && failCompensation === undefined && (mode === undefined || mode === 'error' || mode === 'crash')) {
    throw new UsageError(`${timesSet!.said} counts failed attempts of --fail-mode transient or timeout, and --fail-mode ${mode ?? 'error'} fails once for good: add --fail-mode transient (or timeout), or leave the count out${fixOf(timesSet!)}`, 'conflicting_options');
  }
  const plan: FaultPlan = {
    ...(failAt === undefined ? {} : { failAt, mode: mode ?? 'error' }),
    ...(times === undefined || failAt === undefined ? {} : { times }),
    ...(failCompensation === undefined ? {} : { failCompensation, compensationMode: compensationMode ?? 'transient' }),
    ...(times === undefined || failCompensation === undefined ? {} : { compensationTimes: times }),
  };
  const injected: InjectedFault[] = [];
  const said = (...set: ({ said: string } | undefined)[]) => set.flatMap((x) => (x === undefined ? [] : [x.said]));
  if (plan.failAt !== undefined) {
    // A count means something only to the modes that fail several attempts.
    const counted = plan.times !== undefined && (plan.mode === 'transient' || plan.mode === 'timeout');
    injected.push({ phase: 'action', step: plan.failAt, mode: plan.mode ?? 'error', times: counted ? plan.times! : null, from: said(failAtSet, modeSet, counted ? timesSet : undefined) });
  }
  if (plan.failCompensation !== undefined) {
    injected.push({
      phase: 'compensation', step: plan.failCompensation, mode: plan.compensationMode ?? 'transient', times: plan.compensationTimes ?? null,
      from: said(failCompensationSet, compensationModeSet, plan.compensationTimes === undefined ? undefined : timesSet),
    });
  }
  const crashAt = crashPoints(sources);
  const delayAt = delayPoints(setting(sources, 'SAGA_DELAY_AT'));
  return {
    plan: {
      ...plan,
      ...(crashAt === undefined ? {} : { crashAt }),
      ...(delayAt === undefined ? {} : { delayAt }),
    },
    injected,
  };
}

/** The crash points `SAGA_CRASH_AT` names (comma-separated), or undefined when it is not set. */
export function crashPoints(sources: Sources): string[] | undefined {
  return setting(sources, 'SAGA_CRASH_AT')?.split(',').map((p) => p.trim()).filter(Boolean);
}

/** How to fix a setting that came from the environment or .env (a flag says itself). */
function fixOf(set: { said: string }): string {
  if (set.said.startsWith('.env:')) return '; or fix or remove the line in .env';
  if (set.said.startsWith('environment variable')) return '; or unset the variable';
  return '';
}

/**
 * A compensation fault fires only in a rollback that runs that compensation: after a later step
 * failed for good (or timed out at its budget), or after the step itself timed out (a timeout may
 * have taken effect, so it is compensated). Without one, the fault is accepted and never fires: the
 * checkout says so rather than leaving the user to wonder. Recovery never takes injected faults, so
 * a crash of the run does not make it fire either.
 */
export function unfireableCompensationFault(plan: FaultPlan): string | undefined {
  if (plan.failCompensation === undefined) return undefined;
  const steps: readonly string[] = CHECKOUT_STEPS;
  const c = steps.indexOf(plan.failCompensation);
  const a = plan.failAt === undefined ? -1 : steps.indexOf(plan.failAt);
  const later = steps.slice(c + 1);
  const suggestion = later.length > 0 ? `--fail-at ${later.join(' or ')}` : `--fail-at ${plan.failCompensation} --fail-mode timeout`;
  const why = `the compensation of ${plan.failCompensation} runs only in a rollback after a later step failed`;
  if (plan.failAt === undefined) return `--fail-compensation ${plan.failCompensation} will not fire: ${why}; add ${suggestion}`;
  if (plan.mode === 'crash') return `--fail-compensation ${plan.failCompensation} will not fire: --fail-mode crash leaves the saga to \`saga recover\`, which never injects faults`;
  if (c > a || (c === a && plan.mode !== 'timeout')) return `--fail-compensation ${plan.failCompensation} will not fire when ${plan.failAt} fails (${plan.failCompensation} ${c > a ? 'never runs' : 'had no effect to undo'}): ${why}; use ${suggestion}`;
  return undefined;
}

/** One line per injected fault: what fails, and which settings asked for it. */
export function describeInjected(fault: InjectedFault): string {
  const what = fault.phase === 'action' ? `a failure at ${fault.step}` : `a failure into the compensation of ${fault.step}`;
  const times = fault.times === null ? '' : `, ${fault.times} time(s)`;
  const flag = fault.phase === 'action' ? '--fail-at' : '--fail-compensation';
  return `injecting ${what} (${fault.mode}${times}) as set by ${fault.from.join(', ')}; \`${flag} none\` turns it off for one run`;
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
 * the same parser, and a bad one is named by its variable and where it was set.
 */
function optional<T>(sources: Sources, key: SettingKey, flag: string | undefined, parse: (text: string) => T): T | undefined {
  return traced(sources, key, flag, undefined, parse)?.value;
}

/** `optional`, and where the value came from, said as a message can say it. */
function traced<T>(sources: Sources, key: SettingKey, flag: string | undefined, flagName: string | undefined, parse: (text: string) => T): { value: T; said: string } | undefined {
  if (flag !== undefined && sources.flags[flag] !== undefined) {
    const value = sources.flags[flag] as T;
    return { value, said: `${flagName ?? `--${flag}`} ${String(value)}` };
  }
  const found = settingFrom(sources, key);
  if (found === undefined) return undefined;
  const said = describeSetting(key, found.value, found.origin);
  try {
    return { value: parse(found.value), said };
  } catch (err) {
    if (err instanceof InvalidArgumentError) {
      const fix = found.origin.kind === '.env' ? 'fix or remove the line in .env' : found.origin.kind === 'environment' ? 'fix or unset the variable' : 'fix it';
      throw new UsageError(`${said} is invalid: ${err.message.replace(/\.$/, '')}; ${fix}`);
    }
    throw err;
  }
}

function checked<T>(sources: Sources, key: SettingKey, flag: string | undefined, parse: (text: string) => T): T {
  const value = optional(sources, key, flag, parse);
  if (value === undefined) throw new Error(`no default for ${key}`);
  return value;
}
