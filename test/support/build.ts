import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Vitest global setup of the suites under test/: compiles what changed (`tsc -b`, as
 * `pnpm build`; a no-op takes ~0.2 s), so the services they start run the current code
 * from dist/, never a stale build. A compile error stops the run with tsc's own message.
 */
export default function setup(): void {
  execFileSync(process.execPath, [`${ROOT}/node_modules/typescript/bin/tsc`, '-b', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
}
