import { runBench, type BenchResult } from '../../bench/run-bench.js';
import { checkoutSaga, CHECKOUT_SAGA } from '../../checkout/checkout-saga.js';
import { ExitCode } from '../../errors.js';
import { createLogger } from '../../log.js';
import { openApp, processOwner } from '../app.js';
import type { CommandContext } from '../context.js';
import { chalkFor, table } from '../output/format.js';

export interface BenchFlags {
  readonly n?: number;
  readonly concurrency?: number;
  readonly failRate?: number;
  readonly product?: number;
  readonly seed?: number;
  readonly json?: boolean;
}

/** `saga bench`: throughput and latency of the engine, in this process, then `verify`. */
export async function benchCommand(flags: BenchFlags, ctx: CommandContext): Promise<number> {
  const app = await openApp(ctx.settings, 'if-missing');
  // Injected timeouts and retries should show the paths, not dominate the run.
  const checkout = checkoutSaga({ provider: app.provider, now: Date.now, timeoutMs: 50, retryBaseDelayMs: 1 });
  const { logger, close } = createLogger({ level: ctx.settings.logLevel, logFile: ctx.settings.logFile });
  const n = flags.n ?? 1000;
  const progress = (ctx.stderr as { isTTY?: boolean }).isTTY === true && !flags.json ? progressBar(ctx.stderr, n) : undefined;
  try {
    const result = await runBench(
      { n, concurrency: flags.concurrency ?? 1, failRate: flags.failRate ?? 0, productId: flags.product ?? 101, seed: flags.seed ?? 1 },
      {
        db: app.db, store: app.store, checkout, definitions: new Map([[CHECKOUT_SAGA, checkout]]), logger,
        owner: processOwner(), leaseMs: ctx.settings.leaseMs,
        ...(progress === undefined ? {} : { onProgress: progress.update }),
      },
    );
    progress?.done();
    const report = { ...result, durability: ctx.settings.durability, db: app.db.label };
    ctx.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : render(result, ctx.settings.durability, ctx.color));
    return result.violations === 0 ? ExitCode.ok : ExitCode.violations;
  } finally {
    close();
    await app.close();
  }
}

function render(r: BenchResult, durability: string, color: boolean): string {
  const c = chalkFor(color);
  const rows = [
    ['checkouts', `${r.n} (concurrency ${r.concurrency}, durability ${durability}, fail rate ${r.failRate}, seed ${r.seed})`],
    ['duration', `${r.durationMs.toFixed(0)} ms`],
    ['throughput', c.bold(`${r.throughput.toFixed(1)} checkouts/s`)],
    ['latency', `p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`],
    ['outcomes', `${r.outcomes.completed} completed, ${r.outcomes.compensated} compensated, ${r.outcomes.stuck} stuck (${r.crashedAndRecovered} crashed and recovered, ${r.crashedBeforeFirstCommit} crashed before their first commit)`],
    ['verify', r.violations === 0 ? c.green('all invariants hold') : c.red(`${r.violations} violation(s): run \`saga verify\``)],
  ];
  return `${table(rows.map(([k, v]) => [c.dim(k!), v!]))}\n`;
}

function progressBar(out: NodeJS.WritableStream, total: number) {
  let last = 0;
  const started = performance.now();
  const draw = (done: number) => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    const rate = done / ((performance.now() - started) / 1000);
    out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}  ${rate.toFixed(0)}/s `);
  };
  return {
    update(done: number) {
      const now = performance.now();
      if (now - last > 100 || done === total) {
        last = now;
        draw(done);
      }
    },
    done: () => out.write('\n'),
  };
}
