// `npm run screenshots`: PNGs of the dashboard for the docs (docs/dashboard-list.png,
// docs/dashboard-timeline.png), from a real `saga serve --allow-faults` on a throwaway database
// with a few sagas of every kind. Also prints how long the first load of `/` took in Chromium.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './browser.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'saga-screenshots-'));
const server = spawn(process.execPath, [join(ROOT, 'bin/saga.cjs'), 'serve', '--port', '0', '--allow-faults'], {
  cwd: dir,
  env: { ...process.env, SAGA_DB: join(dir, 'saga.db'), SAGA_LOG_FILE: join(dir, 'saga.log'), SAGA_RETRY_BASE_MS: '100', NO_COLOR: '1' },
  stdio: ['ignore', 'pipe', 'ignore'],
});

try {
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m !== null) resolve(m[1]!);
    });
    server.on('exit', (code) => reject(new Error(`saga serve exited (${code}) before listening`)));
  });
  const checkout = async (body: unknown) => {
    const res = await fetch(`${url}/api/checkouts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status !== 201) throw new Error(`checkout answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { sagaId: string }).sagaId;
  };
  await checkout({ productId: 101, qty: 1 });
  await checkout({ productId: 102, qty: 3 });
  await checkout({ productId: 103, qty: 1, faults: { failAt: 'payment', mode: 'error' } });
  await checkout({ productId: 102, qty: 1, faults: { failAt: 'payment', mode: 'transient', times: 2 } });
  await checkout({ productId: 104, qty: 1, faults: { failAt: 'shipping', mode: 'error', failCompensation: 'payment', compensationMode: 'transient', compensationTimes: 100 } });
  // The rolled-back saga of the timeline picture: shipping fails, the refund fails once and is retried.
  const rolledBack = await checkout({ productId: 101, qty: 2, faults: { failAt: 'shipping', mode: 'error', failCompensation: 'payment', compensationMode: 'transient', compensationTimes: 1 } });

  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
    await page.goto(`${url}/`);
    await page.locator('#sagas tr.saga-row').nth(5).waitFor();
    const nav = JSON.parse(String(await page.evaluate('JSON.stringify(performance.getEntriesByType("navigation")[0])'))) as { domContentLoadedEventEnd: number; loadEventEnd: number };
    // list.js marks the moment the sagas and the inventory are on screen.
    const shown = Number(await page.evaluate('performance.getEntriesByName("saga:list-shown")[0]?.startTime ?? NaN'));
    console.log(`first load of /: DOMContentLoaded ${nav.domContentLoadedEventEnd.toFixed(0)} ms, load ${nav.loadEventEnd.toFixed(0)} ms, sagas and inventory shown at ${shown.toFixed(0)} ms (Chromium, new page, from navigation start)`);
    await page.screenshot({ path: join(ROOT, 'docs/dashboard-list.png'), fullPage: true });
    await page.goto(`${url}/sagas/${rolledBack}`);
    await page.locator('svg g.lane[data-step="inventory"][data-compensation="compensated"]').waitFor();
    await page.screenshot({ path: join(ROOT, 'docs/dashboard-timeline.png'), fullPage: true });
    console.log('wrote docs/dashboard-list.png and docs/dashboard-timeline.png');
  } finally {
    await browser.close();
  }
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
