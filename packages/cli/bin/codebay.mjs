#!/usr/bin/env node
// The `codebay` command: runs the compiled CLI (`pnpm build` writes dist/).
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('codebay: the CLI is not built yet (no packages/cli/dist/main.js); run `pnpm build` in the repository first\n');
  process.exit(1);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));
