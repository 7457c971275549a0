import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../support/cli.js';

/**
 * bin/saga.cjs loads the bundle through a V8 code cache. V8 accepts a cache for any source of the
 * same length, so the shim must tie the cache to the build it was made from, or a rebuilt bundle
 * would run the old build's code.
 */
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function fakeBundle(word: string): string {
  return `exports.main = async (argv) => { process.stdout.write('${word} ' + argv.slice(2).join(' ') + '\\n'); };\n`;
}

describe('the code cache', () => {
  it('is used only with the bundle it was made from', () => {
    const d = tempDir();
    dirs.push(d);
    mkdirSync(join(d, 'bin'));
    mkdirSync(join(d, 'dist'));
    copyFileSync(join(ROOT, 'bin/saga.cjs'), join(d, 'bin/saga.cjs'));
    const run = (...args: string[]) => execFileSync(process.execPath, [join(d, 'bin/saga.cjs'), ...args], { encoding: 'utf8' });

    writeFileSync(join(d, 'dist/saga.cjs'), fakeBundle('old'));
    run('--write-code-cache');
    expect(run('list')).toBe('old list\n');

    // A rebuild of exactly the same length, as a one-word change often is.
    writeFileSync(join(d, 'dist/saga.cjs'), fakeBundle('new'));
    expect(run('list')).toBe('new list\n');
  });
});
