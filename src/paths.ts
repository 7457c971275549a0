import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root (where package.json and migrations/ live), found by walking up from this
 * module: the same answer from src/ under tsx or vitest, and from the single bundled file in dist/.
 */
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'migrations'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the saga package root (package.json beside migrations/)');
}

export const PACKAGE_ROOT = findPackageRoot();
