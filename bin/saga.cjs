#!/usr/bin/env node
'use strict';
// Thin shim: runs the CLI bundle (dist/saga.cjs, built by `npm ci` through `prepare`) with a V8
// code cache (dist/saga.cjs.cache), so a cold `saga` neither compiles TypeScript nor parses and
// compiles the whole bundle from scratch. Without the cache it still runs, only slower.
// `node bin/saga.cjs --write-code-cache` (the last step of `npm run build`) makes the cache by
// running one checkout in a temporary directory, so it holds the functions a checkout needs.
// Why not Node's own compile cache (`module.enableCompileCache()`, Node 22.1+) instead: measured
// with `npm run bench:cold` (medians of 21 interleaved runs, see README "Performance"), it was no
// faster than this shim on 22, 24 or 26 (it was slower on most runs), and Node 20 lacks it, so this
// one mechanism serves every supported version.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

const bundle = path.join(__dirname, '..', 'dist', 'saga.cjs');
const cacheFile = `${bundle}.cache`;
if (!fs.existsSync(bundle)) {
  process.stderr.write('saga: the CLI is not built yet: run `npm ci` (or `npm run build`) in the project first\n');
  process.exitCode = 1;
  return;
}

// V8 checks a code cache against the source's length only, so a rebuilt bundle of the same length
// would run stale code: the cache is used only with the build it was made from (size and mtime).
const writing = process.argv[2] === '--write-code-cache';
const stat = fs.statSync(bundle);
const buildId = `${stat.size}:${stat.mtimeMs}`;
let cachedData;
try {
  const cache = fs.readFileSync(cacheFile);
  const newline = cache.indexOf(10);
  if (!writing && cache.subarray(0, newline).toString() === buildId) cachedData = cache.subarray(newline + 1);
} catch {
  cachedData = undefined;
}
const script = new vm.Script(Module.wrap(fs.readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
const bundleModule = { exports: {} };
script.runInThisContext()(bundleModule.exports, Module.createRequire(bundle), bundleModule, bundle, path.dirname(bundle));
const { main } = bundleModule.exports;

if (writing) {
  writeCodeCache().catch((err) => {
    process.stderr.write(`saga: could not write the code cache (saga still works, only starts slower): ${err.message}\n`);
  });
} else {
  main(process.argv);
}

async function writeCodeCache() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'saga-code-cache-'));
  process.env.LOG_LEVEL = 'silent';
  // The warm-up checkout is not the user's: it sends no trace to their collector.
  process.env.OTEL_SDK_DISABLED = 'true';
  const args = (...a) => [process.argv[0], process.argv[1], ...a, '--db', path.join(dir, 'warm.db'), '--log-file', path.join(dir, 'warm.log')];
  const [out, err] = [process.stdout.write, process.stderr.write];
  process.stdout.write = process.stderr.write = () => true; // the warm-up's own output is not the build's
  try {
    await main(args('checkout', '--product', '101', '--qty', '1'));
    await main(args('list'));
  } finally {
    [process.stdout.write, process.stderr.write] = [out, err];
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exitCode = 0;
  fs.writeFileSync(`${cacheFile}.tmp`, Buffer.concat([Buffer.from(`${buildId}\n`), script.createCachedData()]));
  fs.renameSync(`${cacheFile}.tmp`, cacheFile);
}
