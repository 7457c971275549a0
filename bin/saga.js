#!/usr/bin/env node
// Thin shim: run the bundled CLI. `npm ci` builds dist/saga.mjs through the `prepare` script
// (one esbuild bundle: no TypeScript compile and no module-by-module loading at start-up).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/saga.mjs', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('saga: the CLI is not built yet: run `npm ci` (or `npm run build`) in the project first\n');
  process.exitCode = 1;
} else {
  const { main } = await import(entry.href);
  await main(process.argv);
}
