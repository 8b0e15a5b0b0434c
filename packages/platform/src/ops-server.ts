import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** A worker's small HTTP side door: `/metrics` for Prometheus and `/healthz` for probes. */
export async function startOpsServer(host: string, port: number, registry: Registry, healthy: () => Promise<boolean>): Promise<Server> {
  const server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/metrics') {
        res.setHeader('content-type', registry.contentType);
        res.end(await registry.metrics());
      } else if (req.url === '/healthz') {
        const ok = await healthy().catch(() => false);
        res.statusCode = ok ? 200 : 503;
        res.end(ok ? 'ok' : 'unhealthy');
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
