import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runSaga, tempDir } from '../support/cli.js';

// The README shows the matrix `saga explore` prints for the checkout saga. It is not pasted by
// hand and left to rot: this test fails as soon as the two differ (paste the real output shown).

describe('the explore matrix in README.md', () => {
  it('is what `saga explore` prints, up to its summary line', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const shown = /```text\n(Depth 1: every single fault\n[\s\S]*?)\n```/.exec(readme)?.[1];
    expect(shown, 'README.md has a ```text block starting "Depth 1: every single fault"').toBeDefined();
    const r = await runSaga(['explore'], { cwd: tempDir('saga-explore-doc-') });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(/^✔ 56 scenarios, 0 violations, /);
    expect(shown).toBe(lines.slice(0, -1).join('\n').trimEnd());
  });
});
