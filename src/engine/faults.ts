import type { Phase } from './definition.js';

/**
 * Failure injection: plain data saying which step or compensation fails, and how. It lives only
 * in the process that asked for it; recovery runs with `noFaults` (docs/guarantees.md, rule 8).
 *
 * Crash points are named `<phase>:<step>:<moment>`. `before`: the effect is not asked for yet
 * (for an external step, its write-ahead record is committed; for a local step, nothing of it is).
 * `after-effect`: the effect happened (the provider answered, or the local writes ran inside
 * their open transaction) and its outcome is not committed yet.
 *
 * Delay points hold a process still for a while at a named moment, so a test can make a race
 * that is otherwise a few microseconds wide happen every time. `key:unused`: `--key` was looked
 * up and no saga has it yet; the new saga is not inserted yet (two processes here both insert,
 * and only the unique index on the key keeps it to one saga). `complete:before`: every step of the
 * saga ran; the commit that completes it has not begun (a cancel recorded now must win, rule 11).
 */
export const DELAY_POINTS = ['key:unused', 'complete:before'] as const;
export const FAULT_MODES = ['error', 'transient', 'timeout', 'crash'] as const;
export type FaultMode = (typeof FAULT_MODES)[number];
export const COMPENSATION_FAULT_MODES = ['transient', 'crash'] as const;
export type CompensationFaultMode = (typeof COMPENSATION_FAULT_MODES)[number];

export interface FaultPlan {
  readonly failAt?: string;
  readonly mode?: FaultMode;
  /** For `transient` and `timeout`: fail this many attempts, then behave. */
  readonly times?: number;
  readonly failCompensation?: string;
  readonly compensationMode?: CompensationFaultMode;
  /** Compensation fails this many attempts (default: every attempt). */
  readonly compensationTimes?: number;
  readonly crashAt?: readonly string[];
  /** Milliseconds to wait at each named delay point (tests only). */
  readonly delayAt?: Readonly<Record<string, number>>;
}

export interface FaultInjector {
  /** The fault to apply to this attempt of this step's action or compensation, if any. */
  forAttempt(phase: Phase, step: string, attempt: number): FaultMode | undefined;
  /** Whether a crash is armed at this point. */
  armed(name: string): boolean;
  /** Whether a crash is armed at any point `match` accepts. */
  armedAny(match: (name: string) => boolean): boolean;
  /** Dies here if a crash is armed at this point. */
  point(name: string): void;
  /** How long to wait at this delay point (0: go on at once). */
  delayMs(name: string): number;
}

export const noFaults: FaultInjector = { forAttempt: () => undefined, armed: () => false, armedAny: () => false, point: () => undefined, delayMs: () => 0 };

/** What a crash does: in the CLI, SIGKILL (no cleanup, no flush: a real crash); in tests, a throw. */
export type Crash = (point: string) => never;

export function killProcess(): never {
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is not catchable; this only satisfies the type checker.
  throw new Error('unreachable');
}

export function faultInjector(plan: FaultPlan, crash: Crash = killProcess): FaultInjector {
  const crashPoints = new Set(plan.crashAt ?? []);
  if (plan.failAt !== undefined && plan.mode === 'crash') crashPoints.add(`action:${plan.failAt}:after-effect`);
  if (plan.failCompensation !== undefined && plan.compensationMode === 'crash') {
    crashPoints.add(`compensation:${plan.failCompensation}:after-effect`);
  }
  return {
    forAttempt(phase, step, attempt) {
      if (phase === 'action' && step === plan.failAt) {
        const mode = plan.mode ?? 'error';
        if (mode === 'crash' || mode === 'error') return mode === 'error' ? 'error' : undefined;
        const times = plan.times ?? (mode === 'transient' ? 1 : Number.POSITIVE_INFINITY);
        return attempt <= times ? mode : undefined;
      }
      if (phase === 'compensation' && step === plan.failCompensation && plan.compensationMode !== 'crash') {
        return attempt <= (plan.compensationTimes ?? Number.POSITIVE_INFINITY) ? 'transient' : undefined;
      }
      return undefined;
    },
    armed: (name) => crashPoints.has(name),
    armedAny: (match) => [...crashPoints].some(match),
    point(name) {
      if (crashPoints.has(name)) {
        crashPoints.delete(name);
        crash(name);
      }
    },
    delayMs: (name) => plan.delayAt?.[name] ?? 0,
  };
}
