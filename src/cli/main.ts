import { CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../paths.js';
import { readDotEnv, type Sources } from '../config.js';
import { ExitCode, SagaError } from '../errors.js';
import { wantsColor } from './color.js';
import type { CommandContext } from './context.js';
import { buildProgram } from './program.js';
import { resolveGlobals } from './settings.js';
import { databaseTrouble } from '../store/db-errors.js';
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
} as const;

/**
 * The composition root and the one place where errors become output and exit codes: a
 * `SagaError` was meant for the user (its message, its code); anything else is a bug (its stack,
 * exit 1). Sets `process.exitCode` rather than exiting, so buffered output is written.
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
    const sources: Sources = { flags, env: process.env, dotenv: readDotEnv(process.cwd()) };
    const settings = resolveGlobals(sources);
    if (isPostgresUrl(settings.db)) password = parsePostgresUrl(settings.db).password;
    const ctx: CommandContext = { sources, settings, stdout, stderr, color: wantsColor(stdout, process.env), colorErr: wantsColor(stderr, process.env) };
    const command = await COMMANDS[name as keyof typeof COMMANDS]();
    exitCode = await command(options as never, ctx);
  });
  program.exitOverride();
  program.configureOutput({
    writeOut: (s) => stdout.write(s),
    writeErr: (s) => stderr.write(s),
    outputError: (s, write) => write(`saga: ${s.replace(/^error: /, '').trimEnd()} (see \`saga --help\`)\n`),
  });
  for (const sub of program.commands) {
    sub.exitOverride();
    sub.configureOutput({
      writeOut: (s) => stdout.write(s),
      writeErr: (s) => stderr.write(s),
      outputError: (s, write) => write(`saga: ${s.replace(/^error: /, '').trimEnd()} (see \`saga ${sub.name()} --help\`)\n`),
    });
  }
  try {
    await program.parseAsync(argv as string[]);
  } catch (err) {
    exitCode = report(err, { write: (text: string) => stderr.write(scrubPassword(text, password)) });
  }
  process.exitCode = exitCode;
}

function report(err: unknown, stderr: { write(text: string): unknown }): number {
  if (err instanceof CommanderError) {
    // Help and --version end with code 0; every parse error is a usage error.
    return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (err instanceof SagaError) {
    stderr.write(`saga: ${err.message}\n`);
    return err.exitCode;
  }
  // The database, not our code (connection lost, server down, disk full): one line. A saga
  // caught half-way keeps its lease for `saga recover`.
  const trouble = databaseTrouble(err);
  if (trouble !== undefined) {
    stderr.write(`saga: the database failed (${trouble}): check that it is running, reachable and has free space, then run the command again; \`saga recover\` finishes any saga it interrupted\n`);
    return ExitCode.internal;
  }
  stderr.write(`saga: internal error (a bug; please report it with this output):\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return ExitCode.internal;
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
