import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

// A SQLite-only run (see test/support/global-setup.ts) leaves out the files that test PostgreSQL
// alone, rather than reporting them as skipped.
const sqliteOnly = process.env.SAGA_TEST_BACKENDS === 'sqlite' || process.env.SAGA_TEST_SKIP_POSTGRES === '1';

// Kept under test/ so the top level holds only what the project is made of (`npm test` points here).
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...(sqliteOnly ? ['test/e2e/postgres-cli.test.ts', 'test/serve/event-feed.test.ts', 'test/explore/explore-postgres.test.ts'] : [])],
    // Build the CLI bundle and start a throwaway PostgreSQL once, before any test runs.
    globalSetup: ['test/support/global-setup.ts'],
    // Every test file removes the temporary directories it made.
    setupFiles: ['test/support/cleanup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // vitest's default on 2 cores is one worker (cores - 1): files one after another. Most of a
    // test's time is spent waiting on the processes it spawns, so 2 workers keep both cores busy (more make timing-sensitive cases fragile for little gain).
    maxWorkers: 2,
  },
});
