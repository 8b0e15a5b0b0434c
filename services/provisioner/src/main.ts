import 'reflect-metadata';
import { PermanentError, QUEUES, deprovisionJobSchema, provisionJobSchema } from '@codebay/contracts';
import {
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
import { Counter, Histogram } from 'prom-client';
import type { ZodType } from 'zod';
import { loadConfig } from './config.ts';
import { DeprovisionInstance } from './deprovision-instance.ts';
import { ProvisionInstance } from './provision-instance.ts';
import { Reconciler } from './reconciler.ts';
import { createRuntime } from './runtime/index.ts';

// Composition root: parse config, build adapters, start the workers, install shutdown.
const config = loadConfig();
const logger = createLogger('provisioner', config.LOG_LEVEL);
const redis = createRedis(config.REDIS_URL, 'codebay-provisioner');
const queues = createQueues(redis, config.CODEBAY_QUEUE_PREFIX);
const store = new InstanceStore(redis);
const docker = dockerFromHost(config.DOCKER_HOST);
const runtime = createRuntime(config, { logger, store, docker });
const driver = runtime.driver;
await driver.start?.();
const metrics = createMetricsRegistry('provisioner');
registerQueueDepth(metrics, queues);
const duration = new Histogram({
  name: 'codebay_provision_duration_seconds',
  help: 'Time from claiming an instance to its editor answering, by outcome',
  labelNames: ['outcome'] as const,
  buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
  registers: [metrics],
});
if (runtime.kubernetes) {
  const k8s = runtime.kubernetes;
  new Counter({
    name: 'codebay_kubernetes_requests_total',
    help: 'Kubernetes API requests made by the runtime driver',
    registers: [metrics],
    collect() {
      this.reset();
      this.inc(k8s.requests);
    },
  });
}
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

const workerOptions = {
  connection: redis,
  prefix: config.CODEBAY_QUEUE_PREFIX,
  lockDuration: config.JOB_LOCK_SECONDS * 1000,
  stalledInterval: config.STALLED_INTERVAL_SECONDS * 1000,
};
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
  { ...workerOptions, concurrency: config.PROVISION_CONCURRENCY },
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

const ops = await startOpsServer(config.METRICS_HOST, config.METRICS_PORT, metrics, () =>
  config.CODEBAY_RUNTIME === 'docker' ? docker.ping().then(() => true) : Promise.resolve(true),
);
logger.info({ runtime: config.CODEBAY_RUNTIME, dockerHost: config.DOCKER_HOST, metrics: config.METRICS_PORT }, 'provisioner ready');

// The reconciler settles orphans and vanished instances now and then (Kubernetes runtime).
let reconcileTimer: NodeJS.Timeout | undefined;
if (runtime.inventory && config.RECONCILE_INTERVAL_SECONDS > 0) {
  const reconciler = new Reconciler(store, runtime.inventory, logger);
  reconcileTimer = setInterval(() => {
    reconciler.run(false).catch((err: Error) => logger.warn({ err: err.message }, 'reconcile failed'));
  }, config.RECONCILE_INTERVAL_SECONDS * 1000);
}

installShutdown(logger, [
  async () => clearInterval(reconcileTimer),
  () => provisionWorker.close(),
  () => deprovisionWorker.close(),
  () => closeQueues(queues),
  () => new Promise<void>((resolve) => ops.close(() => resolve())),
  () => redis.quit(),
]);
