import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * A worker's small HTTP side door: `/metrics` for Prometheus, `/healthz` (the process
 * answers: liveness) and `/readyz` (what it depends on answers, e.g. its Docker daemon:
 * readiness; a daemon restarting must not get the worker killed).
 */
export async function startOpsServer(host: string, port: number, registry: Registry, ready: () => Promise<boolean>): Promise<Server> {
  const server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/metrics') {
        res.setHeader('content-type', registry.contentType);
        res.end(await registry.metrics());
      } else if (req.url === '/healthz') {
        res.end('ok');
      } else if (req.url === '/readyz') {
        const ok = await ready().catch(() => false);
        res.statusCode = ok ? 200 : 503;
        res.end(ok ? 'ready' : 'not ready');
      } else {
        res.statusCode = 404;
        res.end();
      }
    })().catch(() => {
      res.statusCode = 500;
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
