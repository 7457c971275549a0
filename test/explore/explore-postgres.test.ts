import { describe, expect, inject, it } from 'vitest';
import { runSaga } from '../support/cli.js';
import { createPostgresDatabase, withPg } from '../support/pg-database.js';
import { workplace, type ExploreJson } from './helpers.js';

// `saga explore --db postgres://…`: a throwaway database per scenario. A SQLite-only run leaves
// this file out (test/vitest.config.ts) rather than reporting it skipped.
const adminUrl = inject('pgAdminUrl');

describe.runIf(adminUrl !== '')('saga explore on PostgreSQL', { concurrent: true }, () => {
  // A database per scenario is made with CREATE DATABASE … TEMPLATE: slower than a file copy.
  it('explores a PostgreSQL database on a throwaway database per scenario, finds a planted trigger, drops every copy', { timeout: 180_000 }, async () => {
    const w = workplace();
    const url = await createPostgresDatabase(adminUrl);
    expect((await runSaga(['seed', '--db', url], { cwd: w.cwd })).code).toBe(0);
    await withPg(url, (c) => c.query(`
      CREATE FUNCTION saga.lose_a_unit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN UPDATE saga.inventory SET stock = stock - 1 WHERE product_id = NEW.product_id; RETURN NEW; END $$;
      CREATE TRIGGER lose_a_unit AFTER UPDATE OF status ON saga.reservations FOR EACH ROW
        WHEN (NEW.status = 'released') EXECUTE FUNCTION saga.lose_a_unit();`));
    // One run shows both sides: the scenarios that release stock break the invariant, the others hold.
    const buggy = await runSaga(['explore', '--json', '--jobs', '2', '--db', url], { cwd: w.cwd, env: w.env });
    expect(buggy.code, buggy.stderr).toBe(5);
    const out = JSON.parse(buggy.stdout) as ExploreJson;
    expect(out.results.find((x) => x.id === 'payment.action.error')!.violations.map((v) => v.invariant)).toContain('stock-conserved');
    expect(out.results.find((x) => x.id === 'payment.action.crash-after-effect')).toMatchObject({ cell: 'recovered', finalStatus: 'completed' });
    expect(out.results.find((x) => x.id === 'payment.action.transient-below')!.cell).toBe('completed');
    // The explored database itself was not touched, and no copy is left on the server.
    const left = await withPg(adminUrl, (c) => c.query(`SELECT datname FROM pg_database WHERE datname LIKE 'saga\\_explore\\_%'`));
    expect(left.rows).toEqual([]);
    const sagas = await withPg(url, (c) => c.query('SELECT count(*)::int AS n FROM saga.sagas'));
    expect(sagas.rows[0]).toEqual({ n: 0 });
  });
});
