import 'reflect-metadata';
import { QUEUES, buildJobSchema } from '@codebay/contracts';
import {
  ArtifactStore,
  BuildCache,
  BuildLogStream,
  buildPolicy,
  InstanceStore,
  closeQueues,
  createLogger,
  createMetricsRegistry,
  createQueues,
  createRedis,
  dockerFromHost,
  installShutdown,
  registerQueueDepth,
  RegistryClient,
  registryAuthConfig,
  registrySettings,
  startOpsServer,
} from '@codebay/platform';
import { UnrecoverableError, Worker } from 'bullmq';
import { Counter, Gauge, Histogram } from 'prom-client';
import { BuildInstance } from './build-instance.ts';
import { BuildLocks } from './build-lock.ts';
import { loadConfig } from './config.ts';
import { DevcontainerCli } from './devcontainer-cli.ts';
import { ImageStore } from './images.ts';
import { BuildWorkspace } from './workspace.ts';
import { PermanentError } from '@codebay/contracts';

// Composition root: parse config, build adapters, start the worker, install shutdown.
const config = loadConfig();
const logger = createLogger('builder', config.LOG_LEVEL);
const redis = createRedis(config.REDIS_URL, 'codebay-builder');
const queues = createQueues(redis, config.CODEBAY_QUEUE_PREFIX);
const artifacts = new ArtifactStore(config.CODEBAY_ARTIFACT_DIR);
const registries = registrySettings(config);
const images = new ImageStore(dockerFromHost(config.DOCKER_HOST), {
  push: registryAuthConfig(registries.push, registries.pushAuth),
  pull: registryAuthConfig(registries.pull, registries.pullAuth),
});
const metrics = createMetricsRegistry('builder');
registerQueueDepth(metrics, queues);
const buildMetrics = {
  duration: new Histogram({
    name: 'codebay_build_duration_seconds',
    help: 'Build job duration (waiting for the key, CLI build, push) by outcome: success, cached, failure, timeout, cancelled',
    labelNames: ['outcome'] as const,
    buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800],
    registers: [metrics],
  }),
  inProgress: new Gauge({ name: 'codebay_builds_in_progress', help: 'Builds this builder is running', registers: [metrics] }),
  cache: new Counter({
    name: 'codebay_build_cache_lookups_total',
    help: 'Registry lookups of build keys by the builder: hit (nothing built) or miss',
    labelNames: ['result'] as const,
    registers: [metrics],
  }),
};
const store = new InstanceStore(redis);
const logs = new BuildLogStream(redis);
const useCase = new BuildInstance({
  config,
  registries,
  store,
  logs,
  cli: new DevcontainerCli(),
  images,
  cache: new BuildCache(redis, new RegistryClient(registries.apiUrl, { auth: registries.pullAuth }), registries.pull),
  locks: new BuildLocks(redis, config.JOB_LOCK_SECONDS * 1000),
  workspace: new BuildWorkspace(config.CODEBAY_BUILD_DIR, artifacts, buildPolicy(config)),
  queues,
  logger,
  metrics: buildMetrics,
});

// A builder killed mid-build left its daemon with the pieces of that build: clear them before taking jobs.
await useCase.housekeeping();

// One build at a time: the CLI's feature builds race on a shared daemon.
const worker = new Worker(
  QUEUES.build,
  async (job, _token, signal) => {
    const parsed = buildJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`bad build job payload: ${parsed.error.message}`);
    const timeout = AbortSignal.timeout(config.BUILD_TIMEOUT_SECONDS * 1000);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      await useCase.run({ instanceId: parsed.data.instanceId, attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1, signal: combined });
    } catch (err) {
      if (err instanceof PermanentError) throw new UnrecoverableError(err.message);
      throw err;
    }
  },
  {
    connection: redis,
    prefix: config.CODEBAY_QUEUE_PREFIX,
    concurrency: 1,
    // A builder that dies mid-build stops renewing its lock: after this long, another builder takes the job.
    lockDuration: config.JOB_LOCK_SECONDS * 1000,
    stalledInterval: config.STALLED_INTERVAL_SECONDS * 1000,
    maxStalledCount: 2,
  },
);
worker.on('failed', (job, err) => {
  const instanceId = (job?.data as { instanceId?: string } | undefined)?.instanceId;
  logger.warn({ instanceId, err: err.message }, 'build job failed');
  // The last word on a job that will not run again (stalled too often, or an error the use-case did
  // not settle): its instance must not stay Queued or Building.
  const final = err instanceof UnrecoverableError || (job && job.attemptsMade >= (job.opts.attempts ?? 1)) || /stalled/i.test(err.message);
  if (!instanceId || !final) return;
  void store
    .transition(instanceId, ['Queued', 'Building'], 'Failed', { failure: { phase: 'build', reason: err.message }, buildEndedAt: new Date().toISOString() })
    .then(async (moved) => {
      if (moved.ok) await logs.end(instanceId, 'failure', err.message);
    })
    .catch((e: Error) => logger.error({ instanceId, err: e.message }, 'could not mark the instance Failed'));
});
worker.on('error', (err) => logger.error({ err: err.message }, 'build worker error'));

const ops = await startOpsServer(config.METRICS_HOST, config.METRICS_PORT, metrics, () => images.ping());
logger.info({ dockerHost: config.DOCKER_HOST, registry: { pull: registries.pull, push: registries.push }, metrics: config.METRICS_PORT }, 'builder ready');

installShutdown(logger, [
  () => worker.close(),
  () => closeQueues(queues),
  () => new Promise<void>((resolve) => ops.close(() => resolve())),
  () => redis.quit(),
]);
