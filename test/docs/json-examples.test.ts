/**
 * Every `--json` example in the docs (```json from: <command>) has exactly the keys, recursively,
 * of what that command really prints, run in a copy of the docs' shop (shop.ts). Arrays compare by
 * the keys of all their elements together, so an example may show one event of each kind.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { allDocBlocks } from './doc-blocks.js';
import { makeShop, shell, type Shop } from './shop.js';

// docs/errors.md's plain ```json error object is checked value for value by error-codes.test.ts.
const examples = allDocBlocks().filter((b) => b.lang === 'json' && b.meta.startsWith('from: '));

/** The keys of a JSON value, recursively: an object's keys with theirs, an array's elements' together. */
type Shape = { [key: string]: Shape } | 'value';

function shapeOf(value: unknown): Shape {
  if (Array.isArray(value)) return value.map(shapeOf).reduce<Shape>(merge, 'value');
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shapeOf(v)]));
  }
  return 'value';
}

function merge(a: Shape, b: Shape): Shape {
  if (a === 'value') return b;
  if (b === 'value') return a;
  const out: { [key: string]: Shape } = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = k in out ? merge(out[k]!, v) : v;
  return out;
}

/** Where two shapes differ: keys one has and the other lacks, by path. */
function differences(doc: Shape, real: Shape, path = '$'): string[] {
  if (doc === 'value' && real === 'value') return [];
  if (doc === 'value') return [`${path}: the doc shows a value, the output an object with ${Object.keys(real).join(', ')}`];
  if (real === 'value') return [`${path}: the doc shows an object, the output a value`];
  const out: string[] = [];
  for (const k of Object.keys(real)) if (!(k in doc)) out.push(`${path}.${k}: in the output, missing from the doc`);
  for (const k of Object.keys(doc)) {
    if (!(k in real)) out.push(`${path}.${k}: in the doc, not in the output`);
    else out.push(...differences(doc[k]!, real[k]!, `${path}.${k}`));
  }
  return out;
}

/** One JSON value, or JSON lines (as `recover --watch --json` prints): their shapes together. */
function parseOutput(text: string): Shape {
  try {
    return shapeOf(JSON.parse(text));
  } catch {
    return shapeOf(text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown));
  }
}

describe('the docs show --json examples', () => {
  it('of every command with --json', () => {
    const commands = new Set(examples.map((b) => /^from: (?:.*; )?saga (\w+)/.exec(b.meta)?.[1]));
    expect([...commands].sort()).toEqual(['bench', 'cancel', 'checkout', 'inventory', 'list', 'prune', 'recover', 'retry', 'seed', 'show', 'verify']);
  });
});

describe.each(BACKENDS)('--json examples on $name', (backend) => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await makeShop(backend);
  });

  it.each(examples.map((b) => [b.where, b] as const))('%s has the keys of the real output', async (_where, block) => {
    const command = block.meta.slice('from: '.length);
    const docShape = shapeOf(JSON.parse(block.lines.join('\n')));
    const { cwd, env } = await shop.copy();
    const r = await shell(command, { cwd, env });
    expect(r.stdout, `${command}\n${r.stderr}`).not.toBe('');
    expect(differences(docShape, parseOutput(r.stdout)), command).toEqual([]);
  });
});
