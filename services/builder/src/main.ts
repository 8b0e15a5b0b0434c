import { installShutdown, resolve, startOpsServer, startWorkers } from '@codebay/platform';
import { loadConfig } from './config.ts';
import { T, builderContainer } from './container.ts';
import { buildxVersion } from './devcontainer-cli.ts';

// Composition root: parse config, resolve the use-case, start the worker, install shutdown.
const config = loadConfig();
const c = builderContainer(config);
const logger = resolve(c, T.logger);
const redis = resolve(c, T.redis);
const jobs = resolve(c, T.jobs);
const images = resolve(c, T.images);
const useCase = resolve(c, T.build);
const registries = resolve(c, T.registries);

// Builds use BuildKit through buildx, as the reference CLI does; without it the CLI would quietly use the classic builder.
const buildx = await buildxVersion(config.DOCKER_PATH, config.DOCKER_HOST).catch((err: Error) => {
  logger.fatal({ err: err.message }, 'cannot build without buildx');
  process.exit(1);
});

// A builder killed mid-build left its daemon with the pieces of that build: clear them before taking jobs.
await useCase.housekeeping();
// The extension source's fingerprint, published before the first build and kept in step with the folder.
const sourceWatch = resolve(c, T.sourceWatch);
const sourceFingerprint = await sourceWatch.start();

const workers = startWorkers(
  'builder',
  {
    build: {
      run: ({ instanceId }, ctx) => useCase.run({ instanceId, ...ctx }),
      settleFinalFailure: ({ instanceId }, reason) => useCase.settleFinalFailure(instanceId, reason),
      // One build at a time: the CLI's feature builds race on a shared daemon.
      concurrency: 1,
    },
  },
  {
    connection: redis,
    prefix: config.CODEBAY_QUEUE_PREFIX,
    catalog: resolve(c, T.catalog),
    logger,
    // A builder that dies mid-build stops renewing its lock: after this long, another builder takes the job.
    lockDurationMs: config.JOB_LOCK_SECONDS * 1000,
    stalledIntervalMs: config.STALLED_INTERVAL_SECONDS * 1000,
    maxStalledCount: 2,
  },
);

const ops = await startOpsServer(config.METRICS_HOST, config.METRICS_PORT, resolve(c, T.metrics), () => images.ping());
logger.info(
  {
    dockerHost: config.DOCKER_HOST,
    buildx,
    registry: { pull: registries.pull, push: registries.push },
    metrics: config.METRICS_PORT,
    extensionSource: sourceFingerprint,
  },
  'builder ready',
);

installShutdown(
  logger,
  [
    // Stop taking jobs; one running gets the grace period, then goes back to its queue.
    () => {
      sourceWatch.stop();
      return workers.close(config.SHUTDOWN_GRACE_SECONDS * 1000);
    },
    () => jobs.close(),
    () => new Promise<void>((done) => ops.close(() => done())),
    () => redis.quit(),
  ],
  (config.SHUTDOWN_GRACE_SECONDS + 10) * 1000,
);
