import { resolve } from '@codebay/platform';
import { loadConfig } from './config.ts';
import { T, provisionerContainer } from './container.ts';

// `node services/provisioner/dist/reconcile.js [--dry-run]`: one reconcile pass, the report as JSON.
const dryRun = process.argv.includes('--dry-run');
const c = provisionerContainer(loadConfig());
const { inventory } = resolve(c, T.runtime);
if (!inventory) {
  process.stderr.write(`reconcile: the ${resolve(c, T.config).CODEBAY_RUNTIME} runtime has nothing to reconcile\n`);
  process.exit(2);
}
try {
  const report = await resolve(c, T.reconciler).run(dryRun);
  process.stdout.write(`${JSON.stringify(report)}\n`);
} finally {
  resolve(c, T.redis).disconnect();
}
