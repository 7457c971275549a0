import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * Debian's Chromium (installed by `.ci/run`), driven by playwright-core. `--no-sandbox` because
 * tests and CI run as root, where Chromium's sandbox refuses to start. SAGA_CHROMIUM names another
 * binary.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.SAGA_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
}

/**
 * Everything that went wrong in a page, as lines: console errors, uncaught exceptions, failed
 * requests, and any request to a host other than the server's (the dashboard must work offline).
 */
export function watchPage(page: Page, serverUrl: string): string[] {
  const problems: string[] = [];
  const host = new URL(serverUrl).host;
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.protocol !== 'data:' && url.host !== host) problems.push(`request to another host: ${r.url()}`);
  });
  page.on('requestfailed', (r) => {
    // Leaving a page cancels the reads it still had open (the live feed is an endless response,
    // and a refresh may be under way): the browser reports them as aborted GETs, which lose
    // nothing. Anything else that fails (a POST cut short, a refused connection) is a problem.
    if (r.method() === 'GET' && new URL(r.url()).pathname.startsWith('/api/') && r.failure()?.errorText === 'net::ERR_ABORTED') return;
    problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  return problems;
}
