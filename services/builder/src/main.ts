import 'reflect-metadata';
import { QUEUES, buildJobSchema } from '@codebay/contracts';
import {
  ArtifactStore,
  BuildLogStream,
  InstanceStore,
  closeQueues,
  createLogger,
  createMetricsRegistry,
  createQueues,
  createRedis,
  dockerFromHost,
  installShutdown,
  registerQueueDepth,
  startOpsServer,
} from '@codebay/platform';
import { UnrecoverableError, Worker } from 'bullmq';
import { Histogram } from 'prom-client';
import { BuildInstance } from './build-instance.ts';
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
const images = new ImageStore(dockerFromHost(config.DOCKER_HOST));
const metrics = createMetricsRegistry('builder');
registerQueueDepth(metrics, queues);
const duration = new Histogram({
  name: 'codebay_build_duration_seconds',
  help: 'Build duration (CLI build + push) by outcome',
  labelNames: ['outcome'] as const,
  buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800],
  registers: [metrics],
});
const useCase = new BuildInstance(
  config,
  new InstanceStore(redis),
  new BuildLogStream(redis),
  new DevcontainerCli(),
  images,
  new BuildWorkspace(config.CODEBAY_BUILD_DIR, artifacts),
  queues,
  logger,
  duration,
);

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
  { connection: redis, prefix: config.CODEBAY_QUEUE_PREFIX, concurrency: 1, lockDuration: 60_000, stalledInterval: 30_000, maxStalledCount: 2 },
);
worker.on('failed', (job, err) => logger.warn({ instanceId: job?.data?.instanceId, err: err.message }, 'build job failed'));
worker.on('error', (err) => logger.error({ err: err.message }, 'build worker error'));

const ops = await startOpsServer(config.METRICS_HOST, config.METRICS_PORT, metrics, () => images.ping());
logger.info({ dockerHost: config.DOCKER_HOST, registry: config.REGISTRY, metrics: config.METRICS_PORT }, 'builder ready');

installShutdown(logger, [
  () => worker.close(),
  () => closeQueues(queues),
  () => new Promise<void>((resolve) => ops.close(() => resolve())),
  () => redis.quit(),
]);
