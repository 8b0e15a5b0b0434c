import { EditorVersionsBoard, installShutdown, resolve, startOpsServer, startWorkers } from '@codebay/platform';
import { loadConfig } from './config.ts';
import { EditorVersionsPublisher } from './editor-bundles.ts';
import { T, provisionerContainer } from './container.ts';

// Composition root: parse config, resolve the use-cases, start the workers, install shutdown.
const config = loadConfig();
const c = provisionerContainer(config);
const logger = resolve(c, T.logger);
const redis = resolve(c, T.redis);
const jobs = resolve(c, T.jobs);
const runtime = resolve(c, T.runtime);
await runtime.driver.start?.();
// Docker runtime: the editor versions its bundles provide, for the gateway (API list, vscode_version checks).
const editorVersions = runtime.bundles
  ? new EditorVersionsPublisher({
      bundles: runtime.bundles,
      board: new EditorVersionsBoard(redis, config.CODEBAY_QUEUE_PREFIX),
      logger,
      intervalMs: config.EDITOR_VERSIONS_PUBLISH_SECONDS * 1000,
    })
  : undefined;
const published = await editorVersions?.start();
const provision = resolve(c, T.provision);
// The Running instances' logs, followed again from where this deployment's last provisioner left them.
const instanceLogs = resolve(c, T.instanceLogs);
instanceLogs
  .resume(config.CODEBAY_RUNTIME)
  .then((n) => logger.info({ instances: n }, 'instance logs: following the running instances'))
  .catch((err: Error) => logger.warn({ err: err.message }, 'instance logs: could not resume'));
const deprovision = resolve(c, T.deprovision);

const workers = startWorkers(
  'provisioner',
  {
    provision: {
      run: ({ instanceId }, ctx) => provision.run({ instanceId, ...ctx }),
      settleFinalFailure: ({ instanceId }, reason) => provision.settleFinalFailure(instanceId, reason),
      concurrency: config.PROVISION_CONCURRENCY,
    },
    deprovision: {
      run: ({ instanceId }) => deprovision.run(instanceId),
      settleFinalFailure: ({ instanceId }, reason) => deprovision.settleFinalFailure(instanceId, reason),
      concurrency: 4,
    },
  },
  {
    connection: redis,
    prefix: config.CODEBAY_QUEUE_PREFIX,
    catalog: resolve(c, T.catalog),
    logger,
    lockDurationMs: config.JOB_LOCK_SECONDS * 1000,
    stalledIntervalMs: config.STALLED_INTERVAL_SECONDS * 1000,
  },
);

const ops = await startOpsServer(config.METRICS_HOST, config.METRICS_PORT, resolve(c, T.metrics), () =>
  config.CODEBAY_RUNTIME === 'docker'
    ? resolve(c, T.docker)
        .ping()
        .then(() => true)
    : Promise.resolve(true),
);
logger.info(
  {
    runtime: config.CODEBAY_RUNTIME,
    dockerHost: config.DOCKER_HOST,
    metrics: config.METRICS_PORT,
    editorVersions: published?.map((v) => `${v.vscode_version} (code-server ${v.code_server_version})`),
  },
  'provisioner ready',
);

// The reconciler settles orphans and vanished instances now and then, and removes failed instances
// kept for inspection past their deadline (Kubernetes runtime).
let reconcileTimer: NodeJS.Timeout | undefined;
if (runtime.inventory && config.RECONCILE_INTERVAL_SECONDS > 0) {
  const reconciler = resolve(c, T.reconciler);
  reconcileTimer = setInterval(() => {
    reconciler.run(false).catch((err: Error) => logger.warn({ err: err.message }, 'reconcile failed'));
  }, config.RECONCILE_INTERVAL_SECONDS * 1000);
}

// Docker runtime: Running records follow their editor containers (events, and a sweep that also
// removes failed instances' containers kept for inspection past their deadline).
const dockerReconciler = config.CODEBAY_RUNTIME === 'docker' ? resolve(c, T.dockerReconciler) : undefined;
dockerReconciler?.start();

installShutdown(
  logger,
  [
    async () => clearInterval(reconcileTimer),
    async () => editorVersions?.stop(),
    async () => dockerReconciler?.stop(),
    // Stop taking jobs; one running gets the grace period, then goes back to its queue.
    () => workers.close(config.SHUTDOWN_GRACE_SECONDS * 1000),
    async () => runtime.driver.stop?.(),
    async () => instanceLogs.close(),
    () => jobs.close(),
    () => new Promise<void>((done) => ops.close(() => done())),
    () => redis.quit(),
  ],
  (config.SHUTDOWN_GRACE_SECONDS + 10) * 1000,
);
