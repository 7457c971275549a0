import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Bundles src/ into dist/saga.mjs so spawned `saga` processes run the code under test, not a stale build. */
export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
}
