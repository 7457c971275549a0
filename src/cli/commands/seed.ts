import { resetCatalog, seedCatalog, SEED_CUSTOMERS, SEED_PRODUCTS } from '../../checkout/catalog.js';
import { formatMoney } from '../../checkout/queries.js';
import { localMachine } from '../../engine/process-identity.js';
import { isAbandoned } from '../../engine/recovery.js';
import { OWNER_COLUMNS, toOwnerFields, type OwnerRow } from '../../store/saga-rows.js';
import { createInterface } from 'node:readline';
import { ExitCode, SagaError, UsageError } from '../../errors.js';
import { openApp, type App } from '../app.js';
import { lockWaitNotice, type CommandContext } from '../context.js';

/** `saga seed [--reset]`: create and migrate the database, load the demo catalog. */
export async function seedCommand(flags: { reset?: boolean; force?: boolean; yes?: boolean; json?: boolean }, ctx: CommandContext): Promise<number> {
  if (flags.force && !flags.reset) throw new UsageError('--force goes with --reset: add --reset, or leave --force out', 'conflicting_options');
  const app = await openApp(ctx.settings, 'if-missing', undefined, undefined, lockWaitNotice(ctx));
  try {
    let result: 'created' | 'reset' | 'added' | 'unchanged';
    if (flags.reset) {
      if (!flags.force) await refuseResetUnderLiveSagas(app);
      if (!flags.yes && !app.created) await confirmReset(app, ctx);
      await resetCatalog(app.db);
      result = 'reset';
    } else if (app.created) {
      result = 'created';
    } else {
      result = (await seedCatalog(app.db)) > 0 ? 'added' : 'unchanged';
    }
    const summary = {
      db: app.db.label,
      result,
      products: SEED_PRODUCTS.map((p) => ({ id: p.productId, name: p.name, priceCents: p.priceCents, stock: p.stock })),
      customers: SEED_CUSTOMERS.map((c) => ({ id: c.customerId, name: c.name })),
    };
    if (flags.json) {
      ctx.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      const said = {
        created: `created ${app.db.label} and loaded the demo catalog`,
        reset: `reset ${app.db.label}: catalog restored, orders, payments, shipments and sagas cleared`,
        added: `loaded the missing parts of the demo catalog into ${app.db.label}`,
        unchanged: `${app.db.label} already holds the demo catalog; nothing changed`,
      }[result];
      const catalog = SEED_PRODUCTS.map((p) => `  product ${p.productId}  ${p.name.padEnd(20)} ${formatMoney(p.priceCents).padStart(8)}  seeded stock ${p.stock}`);
      ctx.stdout.write(`${said}\n${catalog.join('\n')}\n(\`saga inventory\` shows what is available now)\n`);
    }
    return ExitCode.ok;
  } finally {
    await app.close();
  }
}

/**
 * A reset deletes every saga. One that another process is driving right now would lose its log
 * under its owner's feet, so that needs `--force`.
 */
async function refuseResetUnderLiveSagas(app: App): Promise<void> {
  const rows = await app.db.all<OwnerRow & { saga_id: string }>(`SELECT saga_id, ${OWNER_COLUMNS} FROM sagas WHERE status IN ('running', 'compensating')`);
  const machine = localMachine();
  const live = rows.filter((r) => !isAbandoned(toOwnerFields(r), Date.now(), machine));
  if (live.length > 0) {
    throw new UsageError(`${live.length} saga(s) are being driven right now (${live[0]!.saga_id}${live.length > 1 ? ', …' : ''}): wait for them, or pass --force to reset anyway`, 'sagas_in_flight');
  }
}

/**
 * A reset cannot be undone, so a person at a terminal is asked first (y/N; anything else, or
 * end of input, is no). A script (stdin not a terminal) is not asked: it said --reset.
 */
async function confirmReset(app: App, ctx: CommandContext): Promise<void> {
  if (process.stdin.isTTY !== true) return;
  const sagas = (await app.db.get<{ n: number }>('SELECT count(*) AS n FROM sagas'))?.n ?? 0;
  const rl = createInterface({ input: process.stdin, output: ctx.stderr });
  const answer = await new Promise<string>((resolve) => {
    rl.once('close', () => resolve(''));
    rl.question(`Reset ${app.db.label}? This deletes its ${sagas} saga(s) and every order, payment and shipment. [y/N] `, resolve);
  });
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim())) throw new SagaError('not_confirmed', `nothing was reset: answer y to reset ${app.db.label}, or pass --yes`);
}
