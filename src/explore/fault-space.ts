import { retryPolicyOf, type SagaDefinition } from '../engine/definition.js';
import type { FaultPlan } from '../engine/faults.js';

/**
 * The fault space of a saga definition: every single fault (depth 1) and every pair of a fault in
 * the run with a fault in what follows it (depth 2), as data. Pure: it knows the definition's
 * steps and retry budgets and nothing of checkout; `run-scenario.ts` runs a scenario.
 *
 * A scenario's id is its whole description (`payment.action.transient-at`,
 * `commit-3.after`, `payment.action.crash-after-effect/recover.commit-2.before`): `scenarioById`
 * rebuilds the scenario from it, so `saga explore --case <id>` replays exactly what failed.
 */
export type CommitWhen = 'before' | 'after';

export interface Scenario {
  readonly id: string;
  /** Matrix row: where the fault is (`payment action`, `commit 3 of a completed run`). */
  readonly row: string;
  /** Matrix column: how it fails (`transient = budget`, `crash before commit`). */
  readonly column: string;
  readonly depth: 1 | 2;
  /** Faults of the run itself (the checkout). */
  readonly plan: FaultPlan;
  /** The recovery that follows: the first recoverer may crash at one of its commits; or two race. */
  readonly recovery: { readonly crashAtCommit?: { readonly n: number; readonly when: CommitWhen }; readonly recoverers: 1 | 2 };
}

/** What one run looks like without faults: its commits, labelled by what each one records. */
export interface RunShape {
  readonly completed: readonly string[];
  readonly rolledBack: readonly string[];
}

type ModeId = 'error' | 'transient-below' | 'transient-at' | 'timeout-below' | 'timeout-at' | 'crash-before' | 'crash-after-effect';
type CompensationModeId = 'transient-below' | 'transient-at' | 'crash-before' | 'crash-after-effect';

const COLUMN: Record<ModeId, string> = {
  error: 'error',
  'transient-below': 'transient < budget',
  'transient-at': 'transient = budget',
  'timeout-below': 'timeout < budget',
  'timeout-at': 'timeout = budget',
  'crash-before': 'crash before',
  'crash-after-effect': 'crash after effect',
};

export function depthOneScenarios(def: SagaDefinition<unknown>, shape: RunShape): Scenario[] {
  const out: Scenario[] = [];
  def.steps.forEach((step) => {
    const budget = retryPolicyOf(def, step, 'action').attempts;
    for (const mode of Object.keys(COLUMN) as ModeId[]) {
      if (budget < 2 && mode.endsWith('-below')) continue;
      out.push(actionScenario(def, step.name, mode));
    }
  });
  def.steps.forEach((step) => {
    const budget = retryPolicyOf(def, step, 'compensation').attempts;
    for (const mode of ['transient-below', 'transient-at', 'crash-before', 'crash-after-effect'] as const) {
      if (budget < 2 && mode === 'transient-below') continue;
      out.push(compensationScenario(def, step.name, mode));
    }
  });
  for (const [run, labels] of [['completed', shape.completed], ['rolled-back', shape.rolledBack]] as const) {
    labels.forEach((_label, k) => {
      for (const when of ['before', 'after'] as const) out.push(commitScenario(def, run, k + 1, when, labels));
    });
  }
  return out;
}

/**
 * Depth 2, built on the depth-1 runs: every scenario that left its saga to recovery, with the
 * recoverer crashing at each of its commits (`recoveryCommits`, counted when depth 1 ran it) and
 * with two recoverers racing; and every action failure that starts a rollback, with a second
 * fault in each compensation that rollback runs.
 */
export function depthTwoScenarios(def: SagaDefinition<unknown>, shape: RunShape, leftToRecovery: ReadonlyMap<string, number>): Scenario[] {
  const out: Scenario[] = [];
  for (const [baseId, commits] of leftToRecovery) {
    for (let n = 1; n <= commits; n++) {
      for (const when of ['before', 'after'] as const) out.push(scenarioById(def, shape, `${baseId}/recover.commit-${n}.${when}`));
    }
    out.push(scenarioById(def, shape, `${baseId}/two-recoverers`));
  }
  def.steps.forEach((failing, j) => {
    for (const mode of ['error', 'transient-at', 'timeout-at'] as const) {
      for (let i = 0; i < j + (mode === 'timeout-at' ? 1 : 0); i++) {
        for (const comp of ['transient-at', 'crash-before', 'crash-after-effect'] as const) {
          out.push(scenarioById(def, shape, `${failing.name}.action.${mode}+${def.steps[i]!.name}.compensation.${comp}`));
        }
      }
    }
  });
  return out;
}

/** Rebuilds a scenario from its id; throws `UnknownScenarioError` for an id this space does not have. */
export function scenarioById(def: SagaDefinition<unknown>, shape: RunShape, id: string): Scenario {
  const [runPart, recoveryPart] = id.split('/') as [string, string | undefined];
  const base = runScenario(def, shape, runPart, id);
  if (recoveryPart === undefined) return base;
  const row = base.id;
  if (recoveryPart === 'two-recoverers') return { ...base, id, row, depth: 2, column: 'two recoverers race', recovery: { recoverers: 2 } };
  const m = /^recover\.commit-(\d+)\.(before|after)$/.exec(recoveryPart);
  if (m === null) throw new UnknownScenarioError(id);
  return { ...base, id, row, depth: 2, column: `recoverer crashes ${m[2]} its commit ${m[1]}`, recovery: { recoverers: 1, crashAtCommit: { n: Number(m[1]), when: m[2] as CommitWhen } } };
}

export class UnknownScenarioError extends Error {
  constructor(readonly id: string) {
    super(`no scenario ${id}`);
    this.name = 'UnknownScenarioError';
  }
}

function runScenario(def: SagaDefinition<unknown>, shape: RunShape, part: string, whole: string): Scenario {
  const [first, second] = part.split('+') as [string, string | undefined];
  const one = singleFault(def, shape, first, whole);
  if (second === undefined) return one;
  // An action failure that starts a rollback, and a fault in one of that rollback's compensations.
  const comp = singleFault(def, shape, second, whole);
  if (one.plan.failAt === undefined || comp.plan.failCompensation === undefined && comp.plan.crashAt === undefined) throw new UnknownScenarioError(whole);
  return {
    id: part,
    row: one.id,
    column: `${comp.row}: ${comp.column}`,
    depth: 2,
    plan: { ...one.plan, ...stripTrigger(comp.plan), crashAt: [...(one.plan.crashAt ?? []), ...(comp.plan.crashAt ?? [])] },
    recovery: { recoverers: 1 },
  };
}

function singleFault(def: SagaDefinition<unknown>, shape: RunShape, part: string, whole: string): Scenario {
  const commit = /^(rolled-back\.)?commit-(\d+)\.(before|after)$/.exec(part);
  if (commit !== null) {
    const run = commit[1] === undefined ? 'completed' : 'rolled-back';
    const labels = run === 'completed' ? shape.completed : shape.rolledBack;
    const n = Number(commit[2]);
    if (n < 1 || n > labels.length) throw new UnknownScenarioError(whole);
    return commitScenario(def, run, n, commit[3] as CommitWhen, labels);
  }
  const m = /^([^.]+)\.(action|compensation)\.([a-z-]+)$/.exec(part);
  if (m === null || !def.steps.some((s) => s.name === m[1])) throw new UnknownScenarioError(whole);
  const [, step, phase, mode] = m as unknown as [string, string, string, string];
  if (phase === 'action' && mode in COLUMN) return actionScenario(def, step, mode as ModeId);
  if (phase === 'compensation' && ['transient-below', 'transient-at', 'crash-before', 'crash-after-effect'].includes(mode)) {
    return compensationScenario(def, step, mode as CompensationModeId);
  }
  throw new UnknownScenarioError(whole);
}

function actionScenario(def: SagaDefinition<unknown>, step: string, mode: ModeId): Scenario {
  const budget = retryPolicyOf(def, def.steps.find((s) => s.name === step)!, 'action').attempts;
  const plan: FaultPlan =
    mode === 'error' ? { failAt: step, mode: 'error' }
    : mode === 'transient-below' ? { failAt: step, mode: 'transient', times: budget - 1 }
    : mode === 'transient-at' ? { failAt: step, mode: 'transient', times: budget }
    : mode === 'timeout-below' ? { failAt: step, mode: 'timeout', times: budget - 1 }
    : mode === 'timeout-at' ? { failAt: step, mode: 'timeout', times: budget }
    : mode === 'crash-before' ? { crashAt: [`action:${step}:before`] }
    : { crashAt: [`action:${step}:after-effect`] };
  return { id: `${step}.action.${mode}`, row: `${step} action`, column: COLUMN[mode], depth: 1, plan, recovery: { recoverers: 1 } };
}

/**
 * A compensation runs only in a rollback: the next step fails for good; the last step, which
 * has no next, times out at its budget (a timeout may have taken effect, so it is compensated too).
 */
function compensationScenario(def: SagaDefinition<unknown>, step: string, mode: CompensationModeId): Scenario {
  const index = def.steps.findIndex((s) => s.name === step);
  const next = def.steps[index + 1];
  const budget = retryPolicyOf(def, def.steps[index]!, 'compensation').attempts;
  const trigger: FaultPlan = next === undefined ? { failAt: step, mode: 'timeout' } : { failAt: next.name, mode: 'error' };
  const fault: FaultPlan =
    mode === 'transient-below' ? { failCompensation: step, compensationMode: 'transient', compensationTimes: budget - 1 }
    : mode === 'transient-at' ? { failCompensation: step, compensationMode: 'transient', compensationTimes: budget }
    : mode === 'crash-before' ? { crashAt: [`compensation:${step}:before`] }
    : { crashAt: [`compensation:${step}:after-effect`] };
  return { id: `${step}.compensation.${mode}`, row: `${step} compensation`, column: COLUMN[mode], depth: 1, plan: { ...trigger, ...fault }, recovery: { recoverers: 1 } };
}

function commitScenario(def: SagaDefinition<unknown>, run: 'completed' | 'rolled-back', n: number, when: CommitWhen, labels: readonly string[]): Scenario {
  const last = def.steps[def.steps.length - 1]!.name;
  return {
    id: `${run === 'completed' ? '' : 'rolled-back.'}commit-${n}.${when}`,
    row: `${run === 'completed' ? 'commit' : 'rollback commit'} ${n}: ${labels[n - 1]}`,
    column: `crash ${when} commit`,
    depth: 1,
    plan: { ...(run === 'completed' ? {} : { failAt: last, mode: 'error' as const }), crashAt: [`commit:${n}:${when}`] },
    recovery: { recoverers: 1 },
  };
}

/** A compensation scenario's own trigger gives way to the action failure it is paired with. */
function stripTrigger(plan: FaultPlan): FaultPlan {
  const { failAt: _failAt, mode: _mode, times: _times, ...rest } = plan;
  return rest;
}
