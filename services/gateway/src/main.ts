import { installShutdown, resolve, startOpsServer } from '@codebay/platform';
import { createApp } from './app.ts';
import { loadConfig } from './config.ts';
import { T, gatewayContainer } from './container.ts';
import { appServer } from './http/server.ts';

// Composition root: the only place that reads the environment; the container wires adapters.
const config = loadConfig();
const c = gatewayContainer(config);
const logger = resolve(c, T.logger);
await resolve(c, T.artifacts).init();
const deps = resolve(c, T.app);
const app = createApp(deps);

// Requests and responses made with express's prototypes from the start (see appServer).
const server = appServer(app);
server.once('error', (err) => {
  logger.fatal({ err }, 'gateway cannot listen');
  process.exit(1);
});
server.listen(config.GATEWAY_PORT, config.GATEWAY_HOST, () => {
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
deps.editor.attach(server);
// Prometheus scrapes a port of its own (not exposed through the ingress).
const ops = await startOpsServer(config.METRICS_HOST, config.METRICS_PORT, deps.metrics, () => deps.redis.ping().then((p) => p === 'PONG'));

installShutdown(
  logger,
  [
    // Not ready from now on; no new connections; requests in flight get the grace period.
    // Long-lived streams end at once (build-log followers resume on another gateway from their
    // last event, editors reconnect).
    () =>
      new Promise<void>((done) => {
        app.locals.draining = true;
        server.close(() => done());
        server.closeIdleConnections();
        void deps.followers.close();
        deps.editor.close();
        setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_GRACE_SECONDS * 1000).unref();
      }),
    () => resolve(c, T.jobs).close(),
    () => new Promise<void>((done) => ops.close(() => done())),
    () => deps.redis.quit(),
  ],
  (config.SHUTDOWN_GRACE_SECONDS + 10) * 1000,
);
