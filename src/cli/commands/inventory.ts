import { formatMoney } from '../../checkout/queries.js';
import { ExitCode } from '../../errors.js';
import { inventoryReport } from '../../store/read-models.js';
import { openApp } from '../app.js';
import type { CommandContext } from '../context.js';
import { chalkFor, table } from '../output/format.js';

/** `saga inventory`: each product's seeded, available, reserved and sold quantities. */
export async function inventoryCommand(flags: { json?: boolean }, ctx: CommandContext): Promise<number> {
  const app = await openApp(ctx.settings, 'read-only');
  try {
    const rows = await inventoryReport(app.db);
    if (flags.json) {
      ctx.stdout.write(`${JSON.stringify(rows)}\n`);
      return ExitCode.ok;
    }
    const c = chalkFor(ctx.color);
    const body = rows.map((r) => [String(r.productId), r.name, formatMoney(r.priceCents), String(r.seeded), r.available === 0 ? c.red('0') : String(r.available), String(r.reserved), String(r.sold)]);
    ctx.stdout.write(`${table([['PRODUCT', 'NAME', 'PRICE', 'SEEDED', 'AVAILABLE', 'RESERVED', 'SOLD'].map((h) => c.dim(h)), ...body])}\n`);
    return ExitCode.ok;
  } finally {
    await app.close();
  }
}
