import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startPostgres, type PostgresServer } from './postgres-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the throwaway PostgreSQL server, or '' when SAGA_TEST_SKIP_POSTGRES=1. */
    pgAdminUrl: string;
  }
}

let server: PostgresServer | undefined;

/**
 * Before any test: bundle src/ into dist/saga.cjs (spawned `saga` processes run the code under
 * test) and start a throwaway PostgreSQL server on loopback. After all tests: stop and remove it.
 * SAGA_TEST_SKIP_POSTGRES=1 skips PostgreSQL for a quick local run; CI never sets it.
 */
export async function setup(project: TestProject): Promise<void> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  if (process.env.SAGA_TEST_SKIP_POSTGRES === '1') {
    if (process.env.CI === 'true') throw new Error('SAGA_TEST_SKIP_POSTGRES=1 is for local runs only; CI always tests PostgreSQL');
    project.provide('pgAdminUrl', '');
    return;
  }
  server = await startPostgres();
  project.provide('pgAdminUrl', server.adminUrl);
}

export async function teardown(): Promise<void> {
  server?.stop();
}
