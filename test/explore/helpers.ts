import { join } from 'node:path';
import { tempDir } from '../support/cli.js';
import { writeShims } from '../docs/shop.js';

export interface ExploreJson {
  scenarios: number;
  violations: number;
  complete: boolean;
  planned: number;
  results: { id: string; cell: string; depth: number; finalStatus: string; run: { status?: string; crashedAt?: string }; violations: { invariant: string }[]; replay: string[] }[];
}

/** A directory with `saga` on PATH and its own TMPDIR, so a test can see explore leaves nothing behind. */
export function workplace() {
  const cwd = tempDir('saga-explore-');
  const tmp = tempDir('saga-explore-tmp-');
  const bin = join(cwd, '.bin');
  writeShims(bin);
  const env = { TMPDIR: tmp };
  return { cwd, tmp, env, shellEnv: { ...process.env, ...env, PATH: `${bin}:${process.env.PATH ?? ''}`, NO_COLOR: '1', SAGA_RETRY_BASE_MS: '0' } };
}

export async function until(check: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

