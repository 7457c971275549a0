import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/cli.js';

/**
 * The fenced code blocks of the project's Markdown (README.md and docs/*.md), which the docs
 * tests run. How a block is marked decides what happens to it:
 *
 * - ```sh: a recipe. Every line is a command, run in order as one bash script in a shop that has
 *   completed, rolled-back and recovered sagas and a saga.log with `recover --watch` lines. A
 *   command must exit 0, or the code its comment names (`# … exit 3`).
 * - ```console: a transcript. `$ command` lines are run the same way; the lines after one are
 *   its output (stdout and stderr together) and must match it in shape (see output-shape.ts).
 * - ```sh no-test: a recipe that is not run (it installs, needs a server, or never ends).
 * - ```json from: <command>: an example of `--json` output; the command's real output must have
 *   exactly the same keys (json-examples.test.ts). (docs/errors.md's one plain ```json block is
 *   checked value for value by error-codes.test.ts.)
 * - ```text (or any other language): shown, never run.
 */
export interface DocBlock {
  /** e.g. `README.md:42`, the line of the opening fence. */
  readonly where: string;
  readonly lang: string;
  /** The rest of the info string after the language. */
  readonly meta: string;
  readonly lines: readonly string[];
}

export function docFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

export function docBlocks(file: string): DocBlock[] {
  const text = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < text.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(text[i]!);
    if (open === null) continue;
    const start = i;
    const lines: string[] = [];
    for (i++; i < text.length && !/^```\s*$/.test(text[i]!); i++) lines.push(text[i]!);
    if (i === text.length) throw new Error(`${file}:${start + 1}: code block never closed`);
    blocks.push({ where: `${file}:${start + 1}`, lang: open[1]!, meta: open[2]!.trim(), lines });
  }
  return blocks;
}

export function allDocBlocks(): DocBlock[] {
  return docFiles().flatMap(docBlocks);
}

/** One command of a recipe or transcript, and the exit code its comment promises (0 when none). */
export interface DocCommand {
  readonly command: string;
  readonly exitCode: number;
  /** The output a transcript shows for it (empty for a recipe, or when none is shown). */
  readonly output: readonly string[];
}

/** The exit code a command's trailing comment names (`# rolled back: exit 3`), else 0. */
function promisedExit(line: string): number {
  const comment = /\s#\s.*$/.exec(line);
  const code = comment === null ? null : /\bexit (\d+)/.exec(comment[0]);
  return code === null ? 0 : Number(code[1]);
}

export function recipeCommands(block: DocBlock): DocCommand[] {
  return block.lines
    .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
    .map((command) => ({ command, exitCode: promisedExit(command), output: [] }));
}

export function transcriptCommands(block: DocBlock): DocCommand[] {
  const commands: { command: string; exitCode: number; output: string[] }[] = [];
  for (const line of block.lines) {
    if (line.startsWith('$ ')) commands.push({ command: line.slice(2), exitCode: promisedExit(line), output: [] });
    else if (commands.length === 0) throw new Error(`${block.where}: a console block starts with \`$ command\``);
    else commands[commands.length - 1]!.output.push(line);
  }
  return commands;
}
