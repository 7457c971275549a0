import { CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../paths.js';
import { readDotEnv, type Sources } from '../config.js';
import { ExitCode, SagaError } from '../errors.js';
import { wantsColor } from '../log.js';
import type { CommandContext } from './context.js';
import { buildProgram } from './program.js';
import { resolveGlobals } from './settings.js';

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
  const program = buildProgram(packageVersion(), async (name, options) => {
    const flags = { ...program.opts(), ...options };
    const sources: Sources = { flags, env: process.env, dotenv: readDotEnv(process.cwd()) };
    const ctx: CommandContext = { sources, settings: resolveGlobals(sources), stdout, stderr, color: wantsColor(stdout, process.env), colorErr: wantsColor(stderr, process.env) };
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
    exitCode = report(err, stderr);
  }
  process.exitCode = exitCode;
}

function report(err: unknown, stderr: NodeJS.WritableStream): number {
  if (err instanceof CommanderError) {
    // Help and --version end with code 0; every parse error is a usage error.
    return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (err instanceof SagaError) {
    stderr.write(`saga: ${err.message}\n`);
    return err.exitCode;
  }
  // The disk, not our code: one line. A saga caught half-way keeps its lease for `saga recover`.
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^SQLITE_(READONLY|IOERR|FULL|CANTOPEN|PERM)/.test(code)) {
    stderr.write(`saga: the database cannot be written (${code}: ${(err as Error).message}): check the file, its directory and free space, then run \`saga recover\`\n`);
    return ExitCode.internal;
  }
  stderr.write(`saga: internal error (a bug; please report it with this output):\n${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return ExitCode.internal;
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
