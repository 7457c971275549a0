import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { tempDir } from '../support/cli.js';
import { expectVerifyClean, postCheckout, startServer, stopServers, type Server } from '../serve/helpers.js';
import { launchChromium, watchPage } from './browser.js';

// The dashboard in a real browser: the real `saga serve --allow-faults` on a free port, Debian's
// Chromium driven by playwright-core. SQLite is enough here: the pages read the same JSON APIs on
// either backend, and test/serve covers those on both.

const sqlite = BACKENDS.find((b) => b.name === 'sqlite')!;

describe('the dashboard in Chromium', () => {
  let cwd: string;
  let db: string;
  let server: Server;
  let browser: Browser;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    cwd = tempDir('saga-dashboard-');
    db = await sqlite.seededDb(cwd);
    // Short back-offs, so a retried step ends in a moment (still long enough to be seen live).
    server = await startServer(['--allow-faults'], { cwd, env: { SAGA_DB: db, SAGA_LOG_FILE: join(cwd, 'saga.log'), SAGA_RETRY_BASE_MS: '100' } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await stopServers();
  });
  beforeEach(async () => {
    page = await browser.newPage();
    problems = watchPage(page, server.url);
  });
  afterEach(async () => {
    await page.close();
    expect(problems).toEqual([]);
  });

  // Outcomes that arrive in the background (the saga runs on after the 202) are waited for, up to a bound.
  const poll = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: 20_000, interval: 100 });
  const lane = (step: string) => page.locator(`svg g.lane[data-step="${step}"]`);
  const laneState = async (step: string) => [await lane(step).getAttribute('data-action'), await lane(step).getAttribute('data-compensation')];

  /** Fills the form on `/` and submits it; resolves on the new saga's timeline with its id. */
  async function runCheckout(fields: { product?: string; qty?: string; failAt?: string; mode?: string; times?: string; failCompensation?: string; compensationTimes?: string }): Promise<string> {
    await page.goto(`${server.url}/`);
    await page.getByLabel('Product').selectOption(fields.product ?? '101');
    await page.getByLabel('Quantity').fill(fields.qty ?? '1');
    if (fields.failAt !== undefined) await page.getByLabel('Fail at').selectOption(fields.failAt);
    if (fields.mode !== undefined) await page.getByLabel(/^Mode/).selectOption(fields.mode);
    if (fields.times !== undefined) await page.getByLabel(/^Times/).fill(fields.times);
    if (fields.failCompensation !== undefined) await page.getByLabel('Fail compensation of').selectOption(fields.failCompensation);
    if (fields.compensationTimes !== undefined) await page.getByLabel('Compensation times').fill(fields.compensationTimes);
    await page.getByRole('button', { name: 'Run checkout' }).click();
    await page.waitForURL(/\/sagas\/[0-9a-f-]{36}$/);
    return new URL(page.url()).pathname.split('/').pop()!;
  }

  it('a failure at payment: the timeline shows inventory done and compensated, payment failed, order and shipping not run; the list shows it compensated', async () => {
    const sagaId = await runCheckout({ failAt: 'payment', mode: 'error' });
    await poll(() => page.locator('#saga-title').textContent()).toContain('compensated');
    expect(await laneState('inventory')).toEqual(['done', 'compensated']);
    expect(await laneState('payment')).toEqual(['failed', '']);
    expect(await laneState('order')).toEqual(['not run', '']);
    expect(await laneState('shipping')).toEqual(['not run', '']);
    // The picture: one action bar and one compensation bar for inventory, the failure marked.
    expect(await page.locator('.bar[data-step="inventory"][data-phase="action"][data-outcome="succeeded"]').count()).toBe(1);
    expect(await page.locator('.bar[data-step="inventory"][data-phase="compensation"][data-outcome="succeeded"]').count()).toBe(1);
    expect(await page.locator('.bar[data-step="payment"][data-outcome="failed"]').count()).toBe(1);
    expect(await page.locator('.bar[data-step="order"], .bar[data-step="shipping"]').count()).toBe(0);
    expect(await page.locator('tr[data-row="reservation"] td').textContent()).toBe('1 released');
    expect(await page.locator('tr[data-row="payment"] td').textContent()).toBe('-');
    expect(await page.locator('#events tr').count()).toBe(6);

    await page.getByRole('link', { name: '← all sagas' }).click();
    const row = page.locator(`tr[data-saga-id="${sagaId}"]`);
    await poll(() => row.textContent()).toContain('↺ compensated');
    expect(await row.locator('.failed-step').textContent()).toBe('payment');
    expect(await row.getByRole('link').textContent()).toBe(sagaId.slice(-8));
    await expectVerifyClean(db, cwd);
  });

  it('the list and the inventory follow the live feed: a checkout made elsewhere appears without a reload', async () => {
    await page.goto(`${server.url}/`);
    const available = page.locator('#inventory tr[data-product-id="102"] .available');
    await poll(() => page.locator('#live').textContent()).toBe('● live');
    const before = Number(await available.textContent());
    const res = await postCheckout(server.url, { productId: 102, qty: 2 });
    const { sagaId } = (await res.json()) as { sagaId: string };
    await poll(() => page.locator(`tr[data-saga-id="${sagaId}"]`).textContent()).toContain('✓ completed');
    await poll(() => available.textContent()).toBe(String(before - 2));
  });

  it('a transient failure at payment: retried with visible back-offs, then the saga completes', async () => {
    await runCheckout({ failAt: 'payment', mode: 'transient', times: '2' });
    await poll(() => page.locator('#saga-title').textContent()).toContain('✓ completed');
    expect(await laneState('inventory')).toEqual(['done', '']);
    expect(await laneState('payment')).toEqual(['done after 3 attempts', '']);
    expect(await laneState('order')).toEqual(['done', '']);
    expect(await laneState('shipping')).toEqual(['done', '']);
    expect(await page.locator('.bar[data-step="payment"][data-outcome="failed"]').count()).toBe(2);
    expect(await page.locator('.bar[data-step="payment"][data-outcome="succeeded"]').count()).toBe(1);
    expect(await page.locator('line.backoff').count()).toBe(2);
    expect(await page.locator('tr[data-row="payment"] td').textContent()).toMatch(/charged$/);
    expect(await page.locator('tr[data-row="shipment"] td').textContent()).toMatch(/^#\d+ /);
  });

  it('a stuck saga (a refund that keeps failing) stands out with what to do, on its page and in the list', async () => {
    const sagaId = await runCheckout({ failAt: 'shipping', mode: 'error', failCompensation: 'payment', compensationTimes: '100' });
    await poll(() => page.locator('#saga-title').textContent()).toContain('⚠ stuck');
    expect(await laneState('shipping')).toEqual(['failed', '']);
    expect(await laneState('order')).toEqual(['done', 'compensated']);
    expect((await laneState('payment'))[1]).toMatch(/^compensation failed after \d+ attempts$/);
    expect(await laneState('inventory')).toEqual(['done', '']);
    const banner = page.locator('#stuck-banner');
    expect(await banner.isVisible()).toBe(true);
    expect(await banner.textContent()).toContain(`saga retry ${sagaId.slice(-8)}`);
    expect(await banner.textContent()).toContain('saga recover');

    await page.goto(`${server.url}/?status=stuck`);
    const row = page.locator(`tr[data-saga-id="${sagaId}"]`);
    await poll(() => row.textContent()).toContain('⚠ stuck');
    expect(await page.locator('.stuck-advice').first().textContent()).toContain('saga retry');
    expect(await page.locator('#stuck-banner').textContent()).toContain('saga recover');
    expect(await page.locator('#sagas tr.saga-row').count()).toBe(await page.locator('#sagas tr.status-row-stuck').count());

    // The operator fixed the cause: one button retries the compensations, and the saga ends rolled back.
    await page.goto(`${server.url}/sagas/${sagaId}`);
    await page.getByRole('button', { name: 'Retry its compensations now' }).click();
    await poll(() => page.locator('#saga-title').textContent()).toContain('compensated');
    expect(await laneState('payment')).toEqual(['done', 'compensated after 6 attempts']);
    expect(await page.locator('#stuck-banner').isVisible()).toBe(false);
    await expectVerifyClean(db, cwd);
  });

  it('a running saga can be cancelled with a button: the payment in flight is awaited, then refunded', async () => {
    // The payment hangs until its timeout (5 s): the saga is running while the button is pressed.
    const sagaId = await runCheckout({ failAt: 'payment', mode: 'timeout', times: '1' });
    await page.getByRole('button', { name: 'Cancel this saga' }).click();
    await poll(() => page.locator('#actions').textContent()).toMatch(/cancel requested by http:/);
    await poll(() => page.locator('#saga-title').textContent()).toContain('compensated');
    expect(await laneState('inventory')).toEqual(['done', 'compensated']);
    expect((await laneState('shipping'))[0]).not.toBe('done');
    expect(await page.locator('[data-row="payment"] td').textContent()).toMatch(/refunded|-/);
    expect(sagaId).toMatch(/^[0-9a-f-]{36}$/);
    await expectVerifyClean(db, cwd);
  });

  it('is usable by keyboard: Enter in the form runs the checkout', async () => {
    await page.goto(`${server.url}/`);
    await poll(() => page.locator('#product option').count()).toBeGreaterThan(0);
    await page.getByLabel('Quantity').focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/sagas\/[0-9a-f-]{36}$/);
    await poll(() => page.locator('#saga-title').textContent()).toContain('✓ completed');
  });
});
