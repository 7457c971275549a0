/**
 * The docs can be followed from a clone: every relative link and #anchor in README.md and docs/
 * leads somewhere, every "rule N" names a rule docs/guarantees.md has (in the docs, as a link to
 * it; in a source file, one that names docs/guarantees.md), and nothing points outside the
 * repository to where the semantics were first written.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';
import { docFiles } from './doc-blocks.js';

const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** Markdown outside code blocks (a recipe's `#` is not a heading, its `[..]` not a link). */
function prose(file: string): string {
  return read(file).replace(/^```[^\n]*\n[\s\S]*?^```\s*$/gm, '');
}

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(file: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of prose(file).matchAll(/^#{1,6}\s+(.*)$/gm)) {
    const s = slug(m[1]!);
    const n = seen.get(s) ?? 0;
    seen.set(s, n + 1);
    out.add(n === 0 ? s : `${s}-${n}`);
  }
  return out;
}

const RULES = new Set(
  [.../^## Rules\n([\s\S]*?)^## /m.exec(read('docs/guarantees.md'))![1]!.matchAll(/^(\d+)\. /gm)].map((m) => Number(m[1])),
);

/** The rule numbers a text refers to: "rule 5", "rules 4 and 5", "rules 1, 2 and 3". */
function ruleRefs(text: string): { ref: string; numbers: number[]; index: number }[] {
  return [...text.matchAll(/\brules? (\d+(?:(?:, | and )\d+)*)/g)].map((m) => ({
    ref: m[0],
    numbers: m[1]!.split(/, | and /).map(Number),
    index: m.index,
  }));
}

/**
 * The repository's files: git's list when this is a clone; else (CI's passes on other Node
 * versions test a copy without .git) every file under the root but what is never committed.
 */
function trackedFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter((f) => f !== '' && existsSync(join(ROOT, f)) && !f.startsWith('node_modules'));
  } catch {
    const skip = new Set(['.git', 'node_modules', 'dist', 'coverage']);
    const out: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        const rel = dir === '' ? entry.name : `${dir}/${entry.name}`;
        if (entry.isDirectory()) {
          if (!skip.has(entry.name)) walk(rel);
        } else if (entry.isFile() && !/\.(db|db-wal|db-shm|log|png)$/.test(entry.name)) {
          out.push(rel);
        }
      }
    };
    walk('');
    return out;
  }
}

describe('docs links', () => {
  it.each(docFiles())('every relative link in %s leads to a file and heading that exist', (file) => {
    const broken: string[] = [];
    for (const m of prose(file).matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const resolved = path === '' ? file : normalize(join(dirname(file), path));
      if (!existsSync(join(ROOT, resolved))) {
        broken.push(`${target}: no file ${resolved}`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) broken.push(`${target}: no heading #${anchor} in ${resolved}`);
    }
    expect(broken).toEqual([]);
  });

  it.each(docFiles())('every "rule N" in %s links to that rule in docs/guarantees.md', (file) => {
    const text = prose(file);
    const bad: string[] = [];
    for (const { ref, numbers, index } of ruleRefs(text)) {
      const missing = numbers.filter((n) => !RULES.has(n));
      if (missing.length > 0) bad.push(`${ref}: docs/guarantees.md has no rule ${missing.join(', ')}`);
      if (file === 'docs/guarantees.md') continue;
      const link = /^\]\(((?:\.\.\/|docs\/)?guarantees\.md)#rules\)/.exec(text.slice(index + ref.length));
      const expected = file === 'README.md' ? 'docs/guarantees.md' : 'guarantees.md';
      if (text[index - 1] !== '[' || link === null || link[1] !== expected) bad.push(`${ref}: write it as [${ref}](${expected}#rules)`);
    }
    expect(bad).toEqual([]);
  });

  it('every "rule N" in the code is one docs/guarantees.md has, and its file names docs/guarantees.md', () => {
    const bad: string[] = [];
    for (const file of trackedFiles().filter((f) => /^(src|test)\/.*\.ts$/.test(f))) {
      const text = read(file);
      const refs = ruleRefs(text);
      if (refs.length === 0) continue;
      if (!text.includes('docs/guarantees.md')) bad.push(`${file}: says ${refs[0]!.ref} but never names docs/guarantees.md`);
      for (const { ref, numbers } of refs) if (numbers.some((n) => !RULES.has(n))) bad.push(`${file}: ${ref} is not a rule of docs/guarantees.md`);
    }
    expect(RULES.size).toBeGreaterThan(0);
    expect(bad).toEqual([]);
  });

  it('nothing in the repository points outside it for the saga semantics', () => {
    const outside = ['../', 'shared'].join('') + '|' + ['SAGA', 'SEMANTICS'].join('-');
    const hits = trackedFiles().filter((f) => !/\.(db|png|cache)$/.test(f) && new RegExp(outside).test(read(f)));
    expect(hits).toEqual([]);
  });
});
