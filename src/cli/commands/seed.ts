import { resetCatalog, seedCatalog, SEED_CUSTOMERS, SEED_PRODUCTS } from '../../checkout/catalog.js';
import { ExitCode } from '../../errors.js';
import { openApp } from '../app.js';
import type { CommandContext } from '../context.js';

/** `saga seed [--reset]`: create and migrate the database, load the demo catalog. */
export async function seedCommand(flags: { reset?: boolean; json?: boolean }, ctx: CommandContext): Promise<number> {
  const app = await openApp(ctx.settings, 'if-missing');
  try {
    let result: 'created' | 'reset' | 'added' | 'unchanged';
    if (flags.reset) {
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
      ctx.stdout.write(`${said}\n${SEED_PRODUCTS.map((p) => `  product ${p.productId}  ${p.name.padEnd(20)} $${(p.priceCents / 100).toFixed(2).padStart(7)}  stock ${p.stock}`).join('\n')}\n`);
    }
    return ExitCode.ok;
  } finally {
    await app.close();
  }
}
