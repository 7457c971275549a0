/**
 * Every recipe and transcript in README.md and docs/*.md runs, with the real built CLI, in a shop
 * that has completed, rolled-back and recovered sagas and a saga.log with `recover --watch` lines
 * (see doc-blocks.ts for how blocks are marked). A recipe's commands exit 0 or the code their
 * comment names; a transcript's output matches what the doc shows, in shape (output-shape.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { allDocBlocks, recipeCommands, transcriptCommands, type DocBlock } from './doc-blocks.js';
import { matchOutput, substituteIds, type IdMap } from './output-shape.js';
import { hasJq, makeShop, shell, type Shop } from './shop.js';

const blocks = allDocBlocks();
const recipes = blocks.filter((b) => b.lang === 'sh' && b.meta === '');
const transcripts = blocks.filter((b) => b.lang === 'console');

describe('the docs mark every code block', () => {
  it('as a recipe, a transcript, a recipe not run, a JSON example or plain text', () => {
    const unmarked = blocks.filter((b) => {
      if (b.lang === 'sh') return b.meta !== '' && b.meta !== 'no-test';
      // docs/errors.md's error object is compared whole, value for value, by error-codes.test.ts.
      if (b.lang === 'json') return !b.meta.startsWith('from: ') && !b.where.startsWith('docs/errors.md:');
      if (b.lang === 'console' || b.lang === 'text') return b.meta !== '';
      // Anything else (an unmarked block, bash, shell) would be shown and never run.
      return true;
    });
    expect(unmarked.map((b) => `${b.where} \`\`\`${b.lang} ${b.meta}`)).toEqual([]);
  });

  it('jq is installed (recipes use it; Debian package jq)', () => {
    expect(hasJq()).toBe(true);
  });

  it('there are recipes and transcripts to run', () => {
    expect(recipes.length).toBeGreaterThan(3);
    expect(transcripts.length).toBeGreaterThan(3);
  });
});

/** The script of a recipe: each command in turn, stopping at the first whose exit code is not the promised one. */
function recipeScript(block: DocBlock): string {
  return ['set -o pipefail']
    .concat(
      recipeCommands(block).map(
        ({ command, exitCode }, i) =>
          `${command}\nrc=$?; if [ $rc -ne ${exitCode} ]; then echo "recipe line ${i + 1} exited $rc, the doc says ${exitCode}: ${command.replace(/["`$\\]/g, '\\$&')}" >&2; exit 99; fi`,
      ),
    )
    .join('\n');
}

describe.each(BACKENDS)('docs on $name', (backend) => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await makeShop(backend);
  });

  it.each(recipes.map((b) => [b.where, b] as const))('recipe %s runs', async (_where, block) => {
    const { cwd, env } = await shop.copy();
    const r = await shell(recipeScript(block), { cwd, env });
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
  });

  it.each(transcripts.map((b) => [b.where, b] as const))('transcript %s shows what the CLI prints', async (_where, block) => {
    const { cwd, env } = await shop.copy();
    const ids: IdMap = new Map();
    for (const { command, exitCode, output } of transcriptCommands(block)) {
      const real = substituteIds(command, ids);
      const r = await shell(real, { cwd, env, merged: true });
      expect(r.code, `${real}\n${r.stdout}`).toBe(exitCode);
      if (output.length > 0) {
        const mismatch = matchOutput(output, r.stdout.split('\n'), ids);
        expect(mismatch, `$ ${real}`).toBeNull();
      }
    }
  });
});
