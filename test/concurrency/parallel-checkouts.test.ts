import { describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { runSaga, tempDir } from '../support/cli.js';

/**
 * Many `saga checkout` processes at once on one database, more demand than stock: no overselling,
 * no lock error reaching a user, every process ending 0 or 3 (4 only where a compensation fault
 * was injected), every saga terminal, and `verify` clean.
 */
const PROCESSES = 10;
const ROUNDS = 2;
const PRODUCT = '103'; // seeded stock 12: 20 units are asked for in all
const SEEDED_STOCK = 12;

describe.concurrent.each(BACKENDS)('parallel checkouts on $name', (backend) => {
  it(`${PROCESSES} processes × ${ROUNDS} rounds never oversell`, async () => {
    const dir = tempDir();
    const opts = { cwd: dir, env: { SAGA_DB: await backend.seededDb(dir) } };

    const codes: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const results = await Promise.all(Array.from({ length: PROCESSES }, () => runSaga(['checkout', '--product', PRODUCT, '--qty', '1', '--json'], opts)));
      for (const r of results) {
        expect(r.stderr).not.toMatch(/database is locked|SQLITE_BUSY|deadlock|could not serialize/i);
        expect([0, 3], r.stderr).toContain(r.code);
        const out = JSON.parse(r.stdout) as { status: string; failedStep: string | null; error: string | null };
        if (r.code === 3) {
          expect(out.failedStep).toBe('inventory');
          expect(out.error).toMatch(/out of stock/);
        }
        codes.push(r.code!);
      }
    }
    expect(codes.filter((c) => c === 0)).toHaveLength(SEEDED_STOCK);
    expect(codes.filter((c) => c === 3)).toHaveLength(PROCESSES * ROUNDS - SEEDED_STOCK);

    const inventory = JSON.parse((await runSaga(['inventory', '--json'], opts)).stdout) as { productId: number; available: number; sold: number; reserved: number }[];
    expect(inventory.find((p) => p.productId === Number(PRODUCT))).toMatchObject({ available: 0, sold: SEEDED_STOCK, reserved: 0 });
    const verify = await runSaga(['verify', '--json'], opts);
    expect(verify.code, verify.stdout).toBe(0);
    const list = JSON.parse((await runSaga(['list', '--json', '--limit', '1000'], opts)).stdout) as { status: string }[];
    expect(list).toHaveLength(PROCESSES * ROUNDS);
    expect(list.every((s) => s.status === 'completed' || s.status === 'compensated')).toBe(true);
  });

  it('with compensation faults injected, processes end 0, 3 or 4 and the data stays right', async () => {
    const dir = tempDir();
    const opts = { cwd: dir, env: { SAGA_DB: await backend.seededDb(dir) } };
    const faults = [[], ['--fail-at', 'shipping'], ['--fail-at', 'order', '--fail-compensation', 'payment', '--fail-times', '2'], ['--fail-at', 'shipping', '--fail-compensation', 'inventory']];
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => runSaga(['checkout', '--product', '101', '--qty', '2', ...faults[i % faults.length]!], opts)),
    );
    const codes = results.map((r) => r.code);
    results.forEach((r) => expect(r.stderr).not.toMatch(/database is locked|SQLITE_BUSY|deadlock/i));
    expect(codes.filter((c) => c === 0)).toHaveLength(2);
    expect(codes.filter((c) => c === 3)).toHaveLength(4);
    expect(codes.filter((c) => c === 4)).toHaveLength(2);
    // Stuck sagas hold their stock until recovered; verify counts them as holding it.
    expect((await runSaga(['verify'], opts)).code).toBe(0);
    expect((await runSaga(['recover'], opts)).code).toBe(0);
    const inventory = JSON.parse((await runSaga(['inventory', '--json'], opts)).stdout) as { productId: number; available: number; sold: number }[];
    expect(inventory.find((p) => p.productId === 101)).toMatchObject({ available: 25 - 4, sold: 4 });
    expect((await runSaga(['verify'], opts)).code).toBe(0);
  });
});
