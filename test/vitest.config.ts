import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Kept under test/ so the top level holds only what the project is made of (`npm test` points here).
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/**/*.test.ts'],
    // Build the CLI bundle and start a throwaway PostgreSQL once, before any test runs.
    globalSetup: ['test/support/global-setup.ts'],
    // Every test file removes the temporary directories it made.
    setupFiles: ['test/support/cleanup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
