import 'reflect-metadata';
import {
  ArtifactStore,
  BuildCache,
  BuildLogStream,
  InstanceStore,
  LogFollowers,
  RegistryClient,
  closeQueues,
  createLogger,
  createMetricsRegistry,
  createQueues,
  createRedis,
  installShutdown,
  registerQueueDepth,
  registrySettings,
} from '@codebay/platform';
import { Counter } from 'prom-client';
import { container } from 'tsyringe';
import { createApp } from './app.ts';
import { loadConfig } from './config.ts';
import { EditorProxy } from './http/editor-proxy.ts';
import { IdempotencyKeys } from './idempotency.ts';
import { TokenDirectory } from './identity.ts';
import { InstanceService } from './instances.ts';

// Composition root: the only place that reads the environment and wires adapters.
const config = loadConfig();
const logger = createLogger('gateway', config.LOG_LEVEL);
const redis = createRedis(config.REDIS_URL, 'codebay-gateway');
const queues = createQueues(redis, config.CODEBAY_QUEUE_PREFIX);
const artifacts = new ArtifactStore(config.CODEBAY_ARTIFACT_DIR);
const registries = registrySettings(config);
await artifacts.init();

container.register('config', { useValue: config });
container.register(InstanceStore, { useValue: new InstanceStore(redis) });
container.register(BuildLogStream, { useValue: new BuildLogStream(redis) });
const metrics = createMetricsRegistry('gateway');
const cacheLookups = new Counter({
  name: 'codebay_build_cache_lookups_total',
  help: 'Registry lookups of build keys at create time: hit (no build) or miss',
  labelNames: ['result'] as const,
  registers: [metrics],
});
container.register(InstanceService, {
  useFactory: (c) =>
    new InstanceService(
      config,
      c.resolve(InstanceStore),
      queues,
      logger,
      // A slow registry must not hold creates up for long: no answer in 3 s counts as a miss.
      new BuildCache(redis, new RegistryClient(registries.apiUrl, { timeoutMs: 3_000, auth: registries.pullAuth }), registries.pull),
      c.resolve(BuildLogStream),
      cacheLookups,
    ),
});
container.register(EditorProxy, {
  useFactory: (c) => new EditorProxy(c.resolve(InstanceStore), logger, config.origins, config.CODEBAY_SECRET_KEY),
});

registerQueueDepth(metrics, queues);
const editor = container.resolve(EditorProxy);
const followers = new LogFollowers(redis, { onError: (err) => logger.warn({ err }, 'build log reader: redis error, retrying') });
const app = createApp({
  config,
  logger,
  redis,
  queues,
  artifacts,
  metrics,
  editor,
  store: container.resolve(InstanceStore),
  logs: container.resolve(BuildLogStream),
  followers,
  instances: container.resolve(InstanceService),
  tokens: new TokenDirectory(config.adminToken, config.CODEBAY_TOKENS_FILE, logger),
  idempotency: new IdempotencyKeys(redis),
});

const server = app.listen(config.GATEWAY_PORT, config.GATEWAY_HOST, () => {
  logger.info(
    {
      url: `http://${config.GATEWAY_HOST}:${config.GATEWAY_PORT}`,
      publicUrl: config.publicUrl,
      editors: `${config.origins.protocol}//<id>.${config.origins.domain}${config.origins.port}`,
    },
    'gateway listening',
  );
  if (config.adminTokenGenerated) {
    // Printed once, on the terminal, so a first-time operator can call the API; never logged as JSON.
    process.stderr.write(`\ncodebay: CODEBAY_ADMIN_TOKEN was not set; this run's admin API token is:\n  ${config.adminToken}\n\n`);
  }
});
// Idle keep-alive sockets outlive a load balancer's (60 s), so a proxy never reuses one the gateway just closed.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
editor.attach(server);

installShutdown(logger, [
  () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 2_000).unref();
    }),
  async () => editor.close(),
  () => followers.close(),
  () => closeQueues(queues),
  () => redis.quit(),
]);
