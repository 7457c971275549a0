import type { StepEvent } from './store.js';

/**
 * What the log says about each step, folded from its records. Pure, so recovery decisions can be
 * tested table-driven.
 */
export interface StepState {
  /**
   * `uncertain`: the last attempt started and has no outcome (a crash), or failed in a way that
   * may hide an effect (a timeout).
   */
  action: 'pending' | 'succeeded' | 'failed' | 'uncertain';
  /** Some failed attempt may have taken effect, even if a later attempt failed cleanly. */
  sawUncertainFailure: boolean;
  /** The last failure was permanent: the step will not be retried (vs. transient, mid-retry). */
  failedPermanently: boolean;
  actionAttempts: number;
  compensation: 'none' | 'running' | 'failed' | 'succeeded';
  compensationAttempts: number;
  lastError?: string;
}

export function initialStepState(): StepState {
  return { action: 'pending', sawUncertainFailure: false, failedPermanently: false, actionAttempts: 0, compensation: 'none', compensationAttempts: 0 };
}

/** Whether rollback must run this step's compensation (docs/guarantees.md, rules 4 and 5). */
export function needsCompensation(state: StepState): boolean {
  const mayHaveEffect = state.action === 'succeeded' || state.action === 'uncertain' || state.sawUncertainFailure;
  return mayHaveEffect && state.compensation !== 'succeeded';
}

export function applyEvent(state: StepState, ev: StepEvent): StepState {
  const next = { ...state };
  if (ev.phase === 'action') {
    if (ev.event === 'started') {
      // A new attempt while the last one never got an outcome (its owner died or stalled
      // mid-call): that earlier attempt may still take effect, whatever this one does.
      if (state.action === 'uncertain') next.sawUncertainFailure = true;
      next.actionAttempts = Math.max(next.actionAttempts, ev.attempt);
      next.action = 'uncertain';
    } else if (ev.event === 'succeeded') {
      next.action = 'succeeded';
    } else if (ev.event === 'failed') {
      next.action = ev.uncertain === true ? 'uncertain' : 'failed';
      next.failedPermanently = ev.errorKind === undefined || ev.errorKind === 'permanent';
      if (ev.uncertain === true) next.sawUncertainFailure = true;
      if (ev.error !== undefined) next.lastError = ev.error;
    }
  } else if (ev.event === 'started') {
    next.compensationAttempts = Math.max(next.compensationAttempts, ev.attempt);
    next.compensation = 'running';
  } else if (ev.event === 'succeeded') {
    next.compensation = 'succeeded';
  } else if (ev.event === 'failed') {
    next.compensation = 'failed';
    if (ev.error !== undefined) next.lastError = ev.error;
  }
  return next;
}

export function foldEvents(stepCount: number, events: readonly StepEvent[]): StepState[] {
  const states = Array.from({ length: stepCount }, initialStepState);
  for (const ev of events) {
    const current = states[ev.stepIndex];
    if (current === undefined) throw new Error(`log record for unknown step index ${ev.stepIndex}`);
    states[ev.stepIndex] = applyEvent(current, ev);
  }
  return states;
}

/** Steps to compensate, in the order to compensate them: reverse of the steps (rule 5). */
export function compensationOrder(states: readonly StepState[]): number[] {
  const order: number[] = [];
  for (let i = states.length - 1; i >= 0; i--) {
    if (needsCompensation(states[i]!)) order.push(i);
  }
  return order;
}

export type RecoveryPlan =
  | { readonly direction: 'forward'; readonly fromStep: number }
  | { readonly direction: 'backward' };

/**
 * What recovery does with a saga it took over (rule 8): a `running` saga goes forward from its
 * first step that did not succeed (an uncertain step is re-run with the same idempotency key, a
 * step caught between transient retries is retried), unless that step failed permanently; a
 * `compensating` or `stuck` saga is rolled back, and so is a running one that a cancel was recorded
 * for (rule 11): its owner is gone, so recovery honours the cancel in its place.
 */
export function planRecovery(status: 'running' | 'compensating' | 'stuck', states: readonly StepState[], cancelRequested = false): RecoveryPlan {
  if (status !== 'running' || cancelRequested) return { direction: 'backward' };
  const first = states.findIndex((s) => s.action !== 'succeeded');
  if (first === -1) return { direction: 'forward', fromStep: states.length };
  if (states[first]!.action === 'failed' && states[first]!.failedPermanently) return { direction: 'backward' };
  return { direction: 'forward', fromStep: first };
}

export type StepOutcome = 'succeeded' | 'failed' | 'uncertain' | 'compensated' | 'compensation-failed' | 'not-run';

/** One word per step for summaries: what a user needs to know about it now. */
export function stepOutcome(state: StepState): StepOutcome {
  if (state.compensation === 'succeeded') return 'compensated';
  if (state.compensation === 'failed' || state.compensation === 'running') return 'compensation-failed';
  if (state.action === 'pending') return 'not-run';
  return state.action;
}
