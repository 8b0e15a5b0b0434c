import { errorBody } from '@codebay/contracts';
import type { ArtifactStore, BuildLogStream, InstanceStore, LogFollowers, Logger, Redis, Registry } from '@codebay/platform';
import cors from 'cors';
import express, { type Express, type RequestHandler } from 'express';
import { randomUUID } from 'node:crypto';
import { Counter, Histogram } from 'prom-client';
import type { GatewayConfig } from './config.ts';
import { requireApiToken } from './http/auth.ts';
import type { EditorProxy } from './http/editor-proxy.ts';
import { errorHandler } from './http/errors.ts';
import { openApiDocument, openApiPage } from './http/openapi.ts';
import { apiRouter } from './http/routes.ts';
import { workspaceSeedHandler } from './http/workspace-seed.ts';
import type { TokenDirectory } from './identity.ts';
import type { InstanceService } from './instances.ts';

export interface GatewayDeps {
  config: GatewayConfig;
  logger: Logger;
  redis: Redis;
  store: InstanceStore;
  logs: BuildLogStream;
  /** The instances' own logs (kind `instance`). */
  instanceLogs: BuildLogStream;
  followers: LogFollowers;
  artifacts: ArtifactStore;
  instances: InstanceService;
  editor: EditorProxy;
  metrics: Registry;
  tokens: TokenDirectory;
}

function httpMetrics(registry: Registry): RequestHandler {
  const duration = new Histogram({
    name: 'codebay_http_request_duration_seconds',
    help: 'Gateway HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return (req, res, next) => {
    const end = duration.startTimer();
    res.on('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };
}

export function createApp(deps: GatewayDeps): Express {
  const { logger, redis, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');

  new Counter({ name: 'codebay_gateway_up', help: 'Gateway process started', registers: [metrics] }).inc();

  app.use((req, res, next) => {
    const id = (req.get('x-request-id') ?? '').slice(0, 64) || randomUUID();
    res.setHeader('x-request-id', id);
    // Shutting down: every answer closes its connection, so keep-alive clients move on at once.
    if (app.locals.draining === true) res.setHeader('connection', 'close');
    next();
  });
  app.use(httpMetrics(metrics));

  // Editor traffic first (instance hosts, and the API origin's editor URLs, redirected): it must see the raw request body.
  app.use(deps.editor.middleware());

  app.get('/', (_req, res) => {
    res.json({ service: 'codebay', description: 'On-demand browser-based VS Code instances built from devcontainer.json', api: '/api' });
  });
  const health: RequestHandler = (_req, res) => {
    res.json({ status: 'ok' });
  };
  app.get(['/health', '/healthz', '/api/health'], health);
  // Ready: Redis answers and the process is not shutting down (main.ts sets `app.locals.draining`).
  app.get(['/readyz', '/api/readyz'], async (_req, res) => {
    if (app.locals.draining === true) {
      res.status(503).json({ status: 'shutting down' });
      return;
    }
    const ok = await redis.ping().then(
      (p) => p === 'PONG',
      () => false,
    );
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'redis unreachable' });
  });
  // Both built once: they depend only on the configuration.
  const doc = openApiDocument(deps.config.publicUrl);
  const page = openApiPage(doc);
  app.get(['/openapi.json', '/api/openapi.json'], (_req, res) => {
    res.json(doc);
  });
  app.get(['/docs', '/api/docs'], (_req, res) => {
    res.type('html').send(page);
  });

  // An instance fetching its own workspace upload (Kubernetes first start), with its own seeding token.
  app.get('/seed/instances/:id', workspaceSeedHandler(deps.store, deps.config.CODEBAY_SECRET_KEY, deps.artifacts));
  if (deps.config.CORS_ORIGINS.length > 0) {
    // Only the API, only the configured origins; bearer tokens, so no credentials mode.
    const allowCors = cors({
      origin: deps.config.CORS_ORIGINS,
      allowedHeaders: ['authorization', 'content-type', 'idempotency-key', 'last-event-id'],
      maxAge: 600,
    });
    app.use(['/api', '/instances'], allowCors);
  }
  const api = apiRouter({
    config: deps.config,
    uploadDir: deps.artifacts.incomingDir,
    instances: deps.instances,
    logs: deps.logs,
    instanceLogs: deps.instanceLogs,
    followers: deps.followers,
  });
  const auth = requireApiToken(deps.tokens);
  app.use('/api', auth, api);
  app.use('/', auth, api);

  app.use((req, res) => {
    res.status(404).json(errorBody('not_found', `no route for ${req.method} ${req.path}`));
  });
  app.use(errorHandler(logger));
  return app;
}
