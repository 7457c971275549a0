import { isPostgresUrl, redactUrl } from '../../store/postgres/url.js';
import { ExitCode, signalExitCode, UsageError, type StopSignal } from '../../errors.js';
import type { FaultPlan } from '../../engine/faults.js';
import { disposeWorkspace, findScenario, prepareWorkspace, runAll, runWorkerTask, scenariosFor, TIMEOUT_SCENARIO_STEP_TIMEOUT_MS, type WorkerTask, type Workspace } from '../../explore/explore.js';
import type { Scenario } from '../../explore/fault-space.js';
import type { ScenarioResult } from '../../explore/run-scenario.js';
import type { CommandContext } from '../context.js';
import { again, listenForInterrupts, type Interrupts } from '../interrupt.js';
import { renderMarkdown, renderMatrix, renderViolations, summaryLine, type ExploreSummary } from '../output/explore-report.js';
import { progressBar } from '../output/progress.js';
import { chalkFor } from '../output/format.js';

export interface ExploreFlags {
  readonly depth?: number;
  readonly jobs?: number;
  readonly json?: boolean;
  readonly markdown?: boolean;
  readonly case?: string;
  /** Hidden: this process is one of `--jobs` workers; its task comes on stdin. */
  readonly worker?: boolean;
}

/**
 * `saga explore`: every fault at every point of the checkout saga, each on a throwaway copy of
 * the database, with the invariants checked after each. Exit 0: no violation; 5: violations.
 */
export async function exploreCommand(flags: ExploreFlags, ctx: CommandContext): Promise<number> {
  if (flags.worker) return worker(ctx);
  if (flags.json && flags.markdown) throw new UsageError('--json and --markdown each choose the output: give one of them', 'conflicting_options');
  if (flags.case !== undefined && flags.depth !== undefined) throw new UsageError('--case names one scenario, whatever its depth: leave out --depth', 'conflicting_options');
  // The explored database is never written: scenarios run on copies of it.
  const explicitDb = ctx.sources.flags.db !== undefined || isPostgresUrl(ctx.settings.db) || ctx.sources.env.SAGA_DB !== undefined || ctx.sources.dotenv.SAGA_DB !== undefined;
  const source = explicitDb ? ctx.settings.db : undefined;
  const started = performance.now();
  // Listening before the workspace is made: Ctrl-C during set-up stops as cleanly as during a run.
  const interrupts = listenForInterrupts({
    onFirst: (sig) => ctx.stderr.write(`\nsaga: interrupted: finishing the scenarios in flight, then printing what was covered; ${again(sig)} to stop now\n`),
    onSecond: (sig) => {
      ctx.stderr.write(`saga: ${sig} again: stopped at once\n`);
      process.exit(signalExitCode(sig as StopSignal));
    },
  });
  try {
    const ws = await prepareWorkspace(source, ctx.settings.pgSchema);
    try {
      return await explore(ws, source, flags, ctx, started, interrupts);
    } finally {
      await disposeWorkspace(ws);
    }
  } finally {
    interrupts.dispose();
  }
}

async function explore(ws: Workspace, source: string | undefined, flags: ExploreFlags, ctx: CommandContext, started: number, interrupts: Interrupts): Promise<number> {
  if (flags.case !== undefined) return await oneCase(ws, findScenario(ws, flags.case), source, flags, ctx);
  const depth = (flags.depth ?? 1) as 1 | 2;
  const jobs = flags.jobs ?? 1;
  const tty = (ctx.stderr as { isTTY?: boolean }).isTTY === true;
  const results: ScenarioResult[] = [];
  // Every scenario planned so far, run or not: an interrupted run draws the ones it did not reach.
  const planned: Scenario[] = [];
  for (const d of depth === 1 ? [1] as const : [1, 2] as const) {
    if (interrupts.signal.aborted) break;
    const scenarios = scenariosFor(ws, d, results);
    planned.push(...scenarios);
    const bar = tty ? progressBar(ctx.stderr, scenarios.length) : undefined;
    let done = 0;
    results.push(...(await runAll(ws, scenarios, { jobs, signal: interrupts.signal, onResult: () => bar?.update(++done), workerCommand: workerCommand() })));
    bar?.done();
  }
  const seconds = (performance.now() - started) / 1000;
  const violations = results.filter((r) => r.cell === 'violation').length;
  const summary: ExploreSummary = { depth, scenarios: results.length, violations, seconds, scenariosPerSecond: results.length / seconds, complete: !interrupts.signal.aborted, planned: planned.length, depthsStarted: new Set(planned.map((p) => p.depth)).size };
  if (flags.json) {
    ctx.stdout.write(`${JSON.stringify({ ...summary, results: results.map((r) => ({ ...r, replay: replay(r.id, ws, source) })) })}\n`);
  } else if (flags.markdown) {
    ctx.stdout.write(renderMarkdown(results, summary, planned));
  } else {
    ctx.stdout.write(renderMatrix(results, ctx.color, planned));
    ctx.stdout.write(renderViolations(results, (r) => replay(r.id, ws, source), ctx.color));
    const c = chalkFor(ctx.color);
    const mark = violations > 0 ? c.red('✖') : summary.complete ? c.green('✔') : c.yellow('!');
    ctx.stdout.write(`${mark} ${summaryLine(summary)}\n`);
  }
  const interrupted = interrupts.exitCode();
  if (interrupted !== undefined) return interrupted;
  return violations === 0 ? ExitCode.ok : ExitCode.violations;
}

async function oneCase(ws: Workspace, scenario: Scenario, source: string | undefined, flags: ExploreFlags, ctx: CommandContext): Promise<number> {
  const [result] = await runAll(ws, [scenario], { jobs: 1, onResult: () => undefined });
  const r = result!;
  const commands = replay(r.id, ws, source);
  if (flags.json) {
    ctx.stdout.write(`${JSON.stringify({ ...r, replay: commands })}\n`);
  } else {
    const c = chalkFor(ctx.color);
    const run = r.run.crashedAt !== undefined ? `crashed at ${r.run.crashedAt}` : `ended ${r.run.status}`;
    ctx.stdout.write(`${c.bold(r.id)}: ${r.row}, ${r.column}\n  the checkout ${run}; after recovery the saga is ${r.finalStatus}\n`);
    if (r.violations.length === 0) ctx.stdout.write(`${c.green('✔')} every invariant holds\n`);
    else ctx.stdout.write(renderViolations([r], () => commands.slice(1), ctx.color));
  }
  return r.cell === 'violation' ? ExitCode.violations : ExitCode.ok;
}

/**
 * The commands that replay a case: `saga explore --case` always; for a single fault in the run,
 * also the plain `saga checkout` (with `SAGA_CRASH_AT` for a crash) on a copy of the database,
 * then `saga recover` and `saga verify`. A recoverer's crash has no plain command: recovery never
 * takes injected faults.
 */
export function replay(id: string, ws: Workspace, source: string | undefined): string[] {
  // Never a password in output: a PostgreSQL URL is shown with *** in its place.
  const db = source === undefined ? '' : ` --db ${quote(isPostgresUrl(source) ? redactUrl(source) : source)}`;
  const commands = [`saga explore --case ${id}${db}`];
  if (id.includes('/')) return commands;
  const scenario = findScenario(ws, id);
  const flags = checkoutFlags(scenario.plan);
  if (flags === undefined) return commands;
  // On PostgreSQL the plain commands run on a SQLite copy of the demo: the fault is the same.
  const copy = source === undefined || isPostgresUrl(source) ? 'saga seed --db replay.db' : `cp ${quote(source)} replay.db`;
  const crash = scenario.plan.crashAt === undefined || scenario.plan.crashAt.length === 0 ? '' : `SAGA_CRASH_AT=${scenario.plan.crashAt.join(',')} `;
  const { productId, qty, customerId } = ws.input;
  const timeout = scenario.plan.mode === 'timeout' ? ` --step-timeout ${TIMEOUT_SCENARIO_STEP_TIMEOUT_MS}` : '';
  commands.push(`${copy} && ${crash}saga checkout --db replay.db --product ${productId} --qty ${qty} --customer ${customerId}${flags}${timeout}; saga recover --db replay.db; saga verify --db replay.db`);
  return commands;
}

/** The checkout flags for a fault plan, when flags can say it (one --fail-times serves both). */
function checkoutFlags(plan: FaultPlan): string | undefined {
  const parts: string[] = [];
  if (plan.failAt !== undefined) parts.push(`--fail-at ${plan.failAt}`, `--fail-mode ${plan.mode ?? 'error'}`);
  if (plan.failCompensation !== undefined) parts.push(`--fail-compensation ${plan.failCompensation}`, `--fail-compensation-mode ${plan.compensationMode ?? 'transient'}`);
  const times = plan.compensationTimes ?? plan.times;
  if (plan.times !== undefined && plan.compensationTimes !== undefined && plan.times !== plan.compensationTimes) return undefined;
  if (times !== undefined) parts.push(`--fail-times ${times}`);
  return parts.length === 0 ? '' : ` ${parts.join(' ')}`;
}

function quote(text: string): string {
  return /^[\w./:@=-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** This same CLI, as a worker: the same Node, its flags (a loader in development), the same entry. */
function workerCommand(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1]!, 'explore', '--worker'];
}

async function worker(ctx: CommandContext): Promise<number> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const task = JSON.parse(Buffer.concat(chunks).toString('utf8')) as WorkerTask;
  const interrupts = listenForInterrupts({ onFirst: () => undefined, onSecond: () => undefined });
  try {
    await runWorkerTask(task, interrupts.signal, (line) => ctx.stdout.write(line));
    return ExitCode.ok;
  } finally {
    interrupts.dispose();
  }
}
