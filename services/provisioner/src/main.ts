import 'reflect-metadata';
import { PermanentError, QUEUES, deprovisionJobSchema, provisionJobSchema } from '@codebay/contracts';
import {
  ArtifactStore,
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
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Histogram } from 'prom-client';
import type { ZodType } from 'zod';
import { loadConfig } from './config.ts';
import { DeprovisionInstance } from './deprovision-instance.ts';
import { EditorBundles } from './editor-bundles.ts';
import { ProvisionInstance } from './provision-instance.ts';
import { DockerDriver } from './runtime/docker-driver.ts';

// Composition root: parse config, build adapters, start the workers, install shutdown.
const config = loadConfig();
const logger = createLogger('provisioner', config.LOG_LEVEL);
const redis = createRedis(config.REDIS_URL, 'codebay-provisioner');
const queues = createQueues(redis, config.CODEBAY_QUEUE_PREFIX);
const store = new InstanceStore(redis);
const docker = dockerFromHost(config.DOCKER_HOST);
const driver = new DockerDriver(docker, new EditorBundles(config.CODEBAY_EDITOR_ROOT), new ArtifactStore(config.CODEBAY_ARTIFACT_DIR), store, logger, {
  publishHost: config.EDITOR_PUBLISH_HOST,
  launcherDir: config.CODEBAY_LAUNCHER_DIR,
  readyTimeoutMs: config.READY_TIMEOUT_SECONDS * 1000,
});
const metrics = createMetricsRegistry('provisioner');
registerQueueDepth(metrics, queues);
const duration = new Histogram({
  name: 'codebay_provision_duration_seconds',
  help: 'Time from claiming an instance to its editor answering, by outcome',
  labelNames: ['outcome'] as const,
  buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
  registers: [metrics],
});
const provision = new ProvisionInstance(store, driver, logger, duration);
const deprovision = new DeprovisionInstance(store, driver, logger, config.DELETED_RECORD_TTL_SECONDS);

function payload<T>(schema: ZodType<T>, job: Job): T {
  const parsed = schema.safeParse(job.data);
  if (!parsed.success) throw new UnrecoverableError(`bad job payload: ${parsed.error.message}`);
  return parsed.data;
}

const permanentIsFinal = async (fn: () => Promise<void>) => {
  try {
    await fn();
  } catch (err) {
    if (err instanceof PermanentError) throw new UnrecoverableError(err.message);
    throw err;
  }
};

const workerOptions = { connection: redis, prefix: config.CODEBAY_QUEUE_PREFIX, lockDuration: 60_000 };
const provisionWorker = new Worker(
  QUEUES.provision,
  (job, _token, signal) =>
    permanentIsFinal(() =>
      provision.run({
        instanceId: payload(provisionJobSchema, job).instanceId,
        attempt: job.attemptsMade + 1,
        maxAttempts: job.opts.attempts ?? 1,
        signal: signal ?? new AbortController().signal,
      }),
    ),
  { ...workerOptions, concurrency: 4 },
);
const deprovisionWorker = new Worker(QUEUES.deprovision, (job) => permanentIsFinal(() => deprovision.run(payload(deprovisionJobSchema, job).instanceId)), {
  ...workerOptions,
  concurrency: 4,
});
for (const [name, w] of [
  ['provision', provisionWorker],
  ['deprovision', deprovisionWorker],
] as const) {
  w.on('failed', (job, err) => logger.warn({ instanceId: job?.data?.instanceId, err: err.message }, `${name} job failed`));
  w.on('error', (err) => logger.error({ err: err.message }, `${name} worker error`));
}

const ops = await startOpsServer(config.METRICS_HOST, config.METRICS_PORT, metrics, () => docker.ping().then(() => true));
logger.info({ runtime: config.CODEBAY_RUNTIME, dockerHost: config.DOCKER_HOST, metrics: config.METRICS_PORT }, 'provisioner ready');

installShutdown(logger, [
  () => provisionWorker.close(),
  () => deprovisionWorker.close(),
  () => closeQueues(queues),
  () => new Promise<void>((resolve) => ops.close(() => resolve())),
  () => redis.quit(),
]);
