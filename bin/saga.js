#!/usr/bin/env node
// Thin shim: run the compiled CLI. `npm ci` builds dist/ through the `prepare` script, so the
// installed command never pays a TypeScript compile. In a checkout without a build, say so.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('saga: the CLI is not built yet; run `npm ci` (or `npm run build`) in the project first\n');
  process.exitCode = 1;
} else {
  const { main } = await import(entry.href);
  await main(process.argv);
}
