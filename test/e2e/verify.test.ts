import { beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { openReader, type Reader } from '../support/reader.js';
import { runSaga, tempDir } from '../support/cli.js';

/**
 * `saga verify` names each way the data can go wrong. Each case starts from a consistent
 * database (one completed checkout, one rolled back), tampers with it the way a bug would, and
 * expects exit 5 with that invariant named; the untouched database verifies clean (exit 0).
 */
interface Fixture {
  dbArg: string;
  completed: string;
  compensated: string;
}

const tampers: [string, string, (db: Reader, f: Fixture) => Promise<void>][] = [
  ['stock-conserved', 'stock that does not add up for a product', (db) => db.run('UPDATE inventory SET stock = stock + 1 WHERE product_id = 101')],
  ['charge-without-cause', 'a charged payment with no completed saga', (db, f) => db.run(`UPDATE payments SET status = 'charged' WHERE saga_id = ?`, [f.compensated])],
  ['charged-twice', 'a saga charged twice', (db, f) => db.run(`INSERT INTO provider_ledger (idempotency_key, kind, customer_id, amount_cents, created_at) VALUES (?, 'charge', 1, 8999, 0)`, [`${f.completed}:payment:again`])],
  ['shipment-for-cancelled-order', 'a shipment for a cancelled order', (db, f) => db.run(`UPDATE orders SET status = 'cancelled' WHERE saga_id = ?`, [f.completed])],
  ['saga-abandoned', 'a saga that is not terminal and not owned', (db, f) => db.run(`UPDATE sagas SET status = 'running', owner_id = NULL, lease_until = NULL WHERE saga_id = ?`, [f.completed])],
  ['completed-saga-incomplete', 'a completed saga with a missing shipment', (db, f) => db.run('DELETE FROM shipments WHERE saga_id = ?', [f.completed])],
  ['completed-saga-incomplete', 'a completed saga with a refunded payment', (db, f) => db.run(`UPDATE payments SET status = 'refunded' WHERE saga_id = ?`, [f.completed])],
  ['stock-held-by-rolled-back-saga', 'a rolled-back saga still holding stock', (db, f) => db.run(`UPDATE reservations SET status = 'held' WHERE saga_id = ?`, [f.compensated])],
  ['money-conserved', 'money that does not add up for a customer', (db) => db.run('UPDATE provider_accounts SET balance_cents = balance_cents - 1 WHERE customer_id = 1')],
  ['payment-disagrees-with-provider', 'a payment marked charged whose charge the provider refunded', (db, f) =>
    db.run(`INSERT INTO provider_ledger (idempotency_key, kind, customer_id, amount_cents, charge_key, created_at) VALUES (?, 'refund', 1, 8999, ?, 0)`, [`${f.completed}:payment:compensate`, `${f.completed}:payment`])],
  ['log-disagrees', 'a completed saga whose log lacks a step', (db, f) => db.run(`DELETE FROM saga_events WHERE saga_id = ? AND step = 'shipping'`, [f.completed])],
];

describe.each(BACKENDS)('saga verify on $name', (backend) => {
  async function fixture(): Promise<Fixture> {
    const dir = tempDir();
    const dbArg = await backend.freshDb(dir);
    const opts = { cwd: dir, env: { SAGA_DB: dbArg } };
    const ok = await runSaga(['checkout', '--product', '101', '--qty', '1', '--json'], opts);
    const failed = await runSaga(['checkout', '--product', '101', '--qty', '1', '--fail-at', 'shipping', '--json'], opts);
    expect([ok.code, failed.code]).toEqual([0, 3]);
    return { dbArg, completed: JSON.parse(ok.stdout).sagaId, compensated: JSON.parse(failed.stdout).sagaId };
  }

  let clean: Fixture;
  beforeAll(async () => {
    clean = await fixture();
  });

  it('a consistent database verifies clean: exit 0', async () => {
    const r = await runSaga(['verify', '--json', '--db', await backend.copyDb(clean.dbArg, tempDir())], { cwd: tempDir() });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, sagas: 2, violations: [] });
  });

  // Each case tampers with its own copy of the clean fixture, so the cases can run at once.
  it.concurrent.each(tampers)('names %s: %s', async (invariant, _what, tamper) => {
    const f = { ...clean, dbArg: await backend.copyDb(clean.dbArg, tempDir()) };
    const db = await openReader(f.dbArg);
    try {
      await tamper(db, f);
    } finally {
      await db.close();
    }
    const json = await runSaga(['verify', '--json', '--db', f.dbArg], { cwd: tempDir() });
    expect(json.code).toBe(5);
    const violations = (JSON.parse(json.stdout) as { violations: { invariant: string; message: string; rows: unknown[] }[] }).violations;
    expect(violations.map((v) => v.invariant)).toContain(invariant);
    expect(violations.find((v) => v.invariant === invariant)!.rows.length).toBeGreaterThan(0);
  });

  it('without --json, each violation is a line naming its invariant, the rows below it, and a count: exit 5', async () => {
    const f = { ...clean, dbArg: await backend.copyDb(clean.dbArg, tempDir()) };
    const db = await openReader(f.dbArg);
    try {
      for (const [, , tamper] of tampers.filter(([name]) => name === 'stock-conserved' || name === 'shipment-for-cancelled-order')) await tamper(db, f);
    } finally {
      await db.close();
    }
    const human = await runSaga(['verify', '--db', f.dbArg], { cwd: tempDir() });
    expect(human.code).toBe(5);
    expect(human.stdout).toMatch(/^✖ stock-conserved: .+\n {4}\[.+\]$/m);
    expect(human.stdout).toMatch(/^✖ shipment-for-cancelled-order: .+\n {4}\[.+\]$/m);
    expect(human.stdout).toMatch(/\n\d+ violation\(s\) over 2 saga\(s\)\n$/);
  });
});
