import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Compiles src/ to dist/ so spawned `saga` processes run the code under test, not a stale build. */
export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', `${root}/tsconfig.build.json`], { cwd: root, stdio: 'inherit' });
}
