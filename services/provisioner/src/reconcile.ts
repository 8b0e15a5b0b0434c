import { InstanceStore, createLogger, createRedis, dockerFromHost } from '@codebay/platform';
import { loadConfig } from './config.ts';
import { Reconciler } from './reconciler.ts';
import { createRuntime } from './runtime/index.ts';

// `tsx services/provisioner/src/reconcile.ts [--dry-run]`: one reconcile pass, the report as JSON.
const dryRun = process.argv.includes('--dry-run');
const config = loadConfig();
const logger = createLogger('reconcile', config.LOG_LEVEL);
const redis = createRedis(config.REDIS_URL, 'codebay-reconcile');
const store = new InstanceStore(redis);
const runtime = createRuntime(config, { logger, store, docker: dockerFromHost(config.DOCKER_HOST) });
if (!runtime.inventory) {
  process.stderr.write(`reconcile: the ${config.CODEBAY_RUNTIME} runtime has nothing to reconcile\n`);
  process.exit(2);
}
try {
  const report = await new Reconciler(store, runtime.inventory, logger).run(dryRun);
  process.stdout.write(`${JSON.stringify(report)}\n`);
} finally {
  redis.disconnect();
}
