import type { ChalkInstance } from 'chalk';
import type { Cell, ScenarioResult } from '../../explore/run-scenario.js';
import { chalkFor, table } from './format.js';

/**
 * How `saga explore` shows its results: a matrix per depth (rows: where the fault is; columns:
 * how it fails; one symbol per scenario), the violations with a replay command each, and one
 * summary line. Markdown for a CI job summary; JSON for scripts.
 */
export interface ExploreSummary {
  readonly depth: 1 | 2;
  readonly scenarios: number;
  readonly violations: number;
  readonly seconds: number;
  readonly scenariosPerSecond: number;
  /** False when Ctrl-C stopped the run early: `scenarios` says how many were covered. */
  readonly complete: boolean;
  readonly planned: number;
  /** How many depths were started (2 when depth 2 was asked for and reached). */
  readonly depthsStarted: number;
}

const SYMBOL: Record<Cell, string> = {
  completed: '✓',
  compensated: '↩',
  recovered: '⟳',
  'stuck-then-recovered': '!',
  violation: '✖',
};

const WORDS: Record<Cell, string> = {
  completed: 'completed',
  compensated: 'compensated',
  recovered: 'crashed, recovered',
  'stuck-then-recovered': 'stuck, then recovered',
  violation: '**VIOLATION**',
};

export const LEGEND = '✓ completed  ↩ compensated (rolled back)  ⟳ crashed, then recovered\n! stuck, then recovered  ✖ violation  · no such case';
const NOT_RUN_LEGEND = '- not run (interrupted)';

function paint(c: ChalkInstance, cell: Cell): string {
  const s = SYMBOL[cell];
  return cell === 'violation' ? c.red.bold(s) : cell === 'completed' ? c.green(s) : cell === 'stuck-then-recovered' ? c.yellow(s) : s;
}

interface Grid {
  readonly rows: readonly string[];
  readonly columns: readonly string[];
  readonly cells: ReadonlyMap<string, ScenarioResult>;
}

/** Rows and columns come from the planned scenarios (in their order), cells from the results. */
function grid(planned: readonly Pick<ScenarioResult, 'row' | 'column'>[], results: readonly ScenarioResult[]): Grid & { plannedCells: ReadonlySet<string> } {
  const rows: string[] = [];
  const columns: string[] = [];
  const cells = new Map<string, ScenarioResult>();
  const plannedCells = new Set<string>();
  for (const p of planned) {
    if (!rows.includes(p.row)) rows.push(p.row);
    if (!columns.includes(p.column)) columns.push(p.column);
    plannedCells.add(`${p.row}\u0000${p.column}`);
  }
  for (const r of results) cells.set(`${r.row}\u0000${r.column}`, r);
  return { rows, columns, cells, plannedCells };
}

function cellOf(g: ReturnType<typeof grid>, row: string, col: string): ScenarioResult | 'not-run' | undefined {
  const key = `${row}\u0000${col}`;
  return g.cells.get(key) ?? (g.plannedCells.has(key) ? 'not-run' : undefined);
}

/** Column headings are numbered (the key below the matrix names them), so the matrix fits 80 columns. */
export function renderMatrix(results: readonly ScenarioResult[], color: boolean, planned: readonly (Pick<ScenarioResult, 'row' | 'column' | 'depth'>)[] = results): string {
  const c = chalkFor(color);
  const out: string[] = [];
  const interrupted = planned.length > results.length;
  for (const depth of [1, 2] as const) {
    const mine = planned.filter((r) => r.depth === depth);
    if (mine.length === 0) continue;
    const g = grid(mine, results);
    const header = ['', ...g.columns.map((_, i) => String(i + 1))];
    // A commit's row is named by its number; what it records is listed below the matrix.
    const commits: string[] = [];
    const label = (row: string) => {
      const m = /^((?:rollback )?commit \d+): (.*)$/.exec(row);
      if (m === null) return shorten(row, 50);
      commits.push(`${m[1]!}: ${m[2]!}`);
      return m[1]!;
    };
    const body = g.rows.map((row) => [label(row), ...g.columns.map((col) => {
      const r = cellOf(g, row, col);
      return r === undefined ? c.dim('·') : r === 'not-run' ? c.dim('-') : paint(c, r.cell);
    })]);
    out.push(c.bold(depth === 1 ? 'Depth 1: every single fault' : 'Depth 2: a fault, then a fault in what follows it'));
    out.push(table([header, ...body]));
    out.push(c.dim(wrap(g.columns.map((col, i) => `${i + 1} ${col}`), 80)));
    if (commits.length > 0) out.push(c.dim(`what each commit records:\n${commits.map((line) => `  ${line}`).join('\n')}`));
    out.push('');
  }
  out.push(c.dim(interrupted ? `${LEGEND}  ${NOT_RUN_LEGEND}` : LEGEND));
  return `${out.join('\n')}\n`;
}

export function renderMarkdown(results: readonly ScenarioResult[], summary: ExploreSummary, planned: readonly (Pick<ScenarioResult, 'row' | 'column' | 'depth'>)[] = results): string {
  const out: string[] = [];
  for (const depth of [1, 2] as const) {
    const mine = planned.filter((r) => r.depth === depth);
    if (mine.length === 0) continue;
    const g = grid(mine, results);
    out.push(`### ${depth === 1 ? 'Depth 1: every single fault' : 'Depth 2: a fault, then a fault in what follows it'}`, '');
    out.push(`| fault point | ${g.columns.join(' | ')} |`, `|---|${g.columns.map(() => '---').join('|')}|`);
    for (const row of g.rows) {
      out.push(`| ${row} | ${g.columns.map((col) => {
        const r = cellOf(g, row, col);
        return r === undefined ? '·' : r === 'not-run' ? '- not run' : `${SYMBOL[r.cell]} ${WORDS[r.cell]}`;
      }).join(' | ')} |`);
    }
    out.push('');
  }
  out.push(`**${summaryLine(summary)}**`, '');
  return `${out.join('\n')}\n`;
}

export function summaryLine(s: ExploreSummary): string {
  const notStarted = s.depth === 2 && s.depthsStarted < 2 ? ', depth 2 not started' : '';
  const covered = s.complete ? `${s.scenarios} scenarios` : `interrupted: ${s.scenarios} of ${s.planned} scenarios run${notStarted}`;
  return `${covered}, ${s.violations} violation${s.violations === 1 ? '' : 's'}, ${s.seconds.toFixed(1)} s (${Math.round(s.scenariosPerSecond)} scenarios/s)`;
}

/** Each violation: the case, what broke, and the commands that replay it. */
export function renderViolations(results: readonly ScenarioResult[], replay: (r: ScenarioResult) => readonly string[], color: boolean): string {
  const c = chalkFor(color);
  const lines: string[] = [];
  for (const r of results.filter((x) => x.cell === 'violation')) {
    lines.push(`${c.red('✖')} ${c.bold(r.id)} (${r.row}, ${r.column})`);
    for (const v of r.violations) lines.push(`    ${c.bold(v.invariant)}: ${v.message}`);
    for (const command of replay(r)) lines.push(`    replay: ${command}`);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** Items joined with two spaces, broken into lines of at most `width` characters. */
function wrap(items: readonly string[], width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const item of items) {
    if (line !== '' && line.length + 2 + item.length > width) {
      lines.push(line);
      line = '';
    }
    line = line === '' ? item : `${line}  ${item}`;
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

function shorten(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
