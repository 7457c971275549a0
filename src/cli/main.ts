import { CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../paths.js';
import { readDotEnvFile, SAGA_SETTINGS, type Sources } from '../config.js';
import { ExitCode, UsageError } from '../errors.js';
import { wantsColor } from './color.js';
import type { CommandContext } from './context.js';
import { buildProgram } from './program.js';
import { resolveGlobals } from './settings.js';
import { reportError } from './report.js';
import { isPostgresUrl, parsePostgresUrl, scrubPassword } from '../store/postgres/url.js';

const COMMANDS = {
  seed: async () => (await import('./commands/seed.js')).seedCommand,
  checkout: async () => (await import('./commands/checkout.js')).checkoutCommand,
  recover: async () => (await import('./commands/recover.js')).recoverCommand,
  list: async () => (await import('./commands/list.js')).listCommand,
  show: async () => (await import('./commands/show.js')).showCommand,
  verify: async () => (await import('./commands/verify.js')).verifyCommand,
  inventory: async () => (await import('./commands/inventory.js')).inventoryCommand,
  bench: async () => (await import('./commands/bench.js')).benchCommand,
  explore: async () => (await import('./commands/explore.js')).exploreCommand,
  serve: async () => (await import('./commands/serve.js')).serveCommand,
  cancel: async () => (await import('./commands/cancel.js')).cancelCommand,
  retry: async () => (await import('./commands/retry.js')).retryCommand,
  prune: async () => (await import('./commands/prune.js')).pruneCommand,
} as const;

/**
 * The composition root: builds the program, resolves settings, runs the command, and hands any
 * error to `reportError`, the one place where errors become output and exit codes. Sets
 * `process.exitCode` rather than exiting, so buffered output is written.
 */
export async function main(argv: readonly string[]): Promise<void> {
  const stdout = process.stdout;
  const stderr = process.stderr;
  // A reader that goes away (`saga … | head -1`) makes writes fail with EPIPE. That must not kill
  // a saga half-way: drop the output and let the saga reach its end.
  for (const stream of [stdout, stderr]) stream.on('error', () => undefined);
  let exitCode: number = ExitCode.ok;
  // The database password, once known, is scrubbed from every line written below.
  let password = '';
  const program = buildProgram(packageVersion(), async (name, options) => {
    const flags = { ...program.opts(), ...options };
    const dotenv = readDotEnvFile(process.cwd());
    // A line .env cannot use is dropped by the parser without a word: say so, once per line.
    for (const { line, text } of dotenv.ignored) stderr.write(`saga: .env:${line}: ignored ${JSON.stringify(text)}: not KEY=VALUE\n`);
    // So is a misspelt setting (SAGA_FAIL_ATT=payment): it would change nothing, without a word.
    for (const [key, line] of Object.entries(dotenv.lines)) {
      if (key.startsWith('SAGA_') && !SAGA_SETTINGS.includes(key)) stderr.write(`saga: .env:${line}: ${key} is not a saga setting (ignored); see .env.example for the settings\n`);
    }
    const sources: Sources = { flags, env: process.env, dotenv: dotenv.values, dotenvLines: dotenv.lines };
    const settings = resolveGlobals(sources);
    if (isPostgresUrl(settings.db)) password = parsePostgresUrl(settings.db).password;
    const ctx: CommandContext = { sources, settings, stdout, stderr, color: wantsColor(stdout, process.env), colorErr: wantsColor(stderr, process.env) };
    const command = await COMMANDS[name as keyof typeof COMMANDS]();
    exitCode = await command(options as never, ctx);
  });
  // Commander's own parse errors are reworded into one line (see `usageError`) and reported
  // below with everything else, so they are not written here.
  let failedCommand = 'saga';
  for (const command of [program, ...program.commands]) {
    command.exitOverride();
    command.configureOutput({
      writeOut: (s) => stdout.write(s),
      writeErr: (s) => stderr.write(s),
      outputError: () => (failedCommand = command === program ? 'saga' : `saga ${command.name()}`),
    });
  }
  // A bare `saga` asks what it can do: the help, on stdout, exit 0 (as gh, cargo and kubectl do).
  // A wrong command is still a usage error (exit 2).
  if (argv.length <= 2) {
    program.outputHelp();
    return;
  }
  try {
    await program.parseAsync(argv as string[]);
  } catch (err) {
    // Help and --version end with code 0, having written what was asked for.
    if (err instanceof CommanderError && err.exitCode === 0) {
      process.exitCode = ExitCode.ok;
      return;
    }
    const scrubbed = (text: string) => scrubPassword(text, password);
    exitCode = reportError(err instanceof CommanderError ? usageError(err, failedCommand) : err, {
      stdout: { write: (text: string) => stdout.write(scrubbed(text)) },
      stderr: { write: (text: string) => stderr.write(scrubbed(text)) },
      json: wantsJson(argv),
    });
  }
  process.exitCode = exitCode;
}

/**
 * Commander's message as one line: "error: unknown option '--prodcut'\n(Did you mean --product?)"
 * becomes "unknown option '--prodcut' (did you mean --product?); see `saga checkout --help`".
 */
function usageError(err: CommanderError, command: string): UsageError {
  let text = err.message.replace(/^error: /, '');
  // "option '--qty <n>' argument 'x' is invalid. --qty must be …" becomes
  // "--qty x is invalid: must be …": the flag and the value the user typed, then what is valid.
  const invalid = /^option '(\S+)[^']*' argument '(.*)' is invalid\. (.*)$/s.exec(text);
  if (invalid !== null) {
    const [, flag, value, reason] = invalid as unknown as [string, string, string, string];
    const why = reason.startsWith(`${flag} `) ? reason.slice(flag.length + 1) : reason;
    text = `${flag} ${value} is invalid: ${why.charAt(0).toLowerCase()}${why.slice(1)}`;
  }
  const missing = /^option '(\S+)[^']*' argument missing$/.exec(text);
  if (missing !== null) text = `${missing[1]!} needs a value`;
  text = text
    .replace(/\s*\n\s*\(Did you mean (.*)\?\)/, ' (did you mean $1?)')
    .replace(/\s+/g, ' ')
    .replace(/\.$/, '')
    .trim();
  const code = err.code === 'commander.invalidArgument' ? 'invalid_value' : err.code === 'commander.conflictingOption' ? 'conflicting_options' : 'invalid_usage';
  return new UsageError(`${text} (see \`${command} --help\`)`, code);
}

/** `--json` anywhere among the options (not after `--`): then errors are JSON on stdout too. */
function wantsJson(argv: readonly string[]): boolean {
  const options = argv.slice(2);
  const end = options.indexOf('--');
  return (end === -1 ? options : options.slice(0, end)).includes('--json');
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
