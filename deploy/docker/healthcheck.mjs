// The image's HEALTHCHECK: GET /healthz of the service this container runs (the entrypoint's
// argument, read from PID 1's command line): the gateway on GATEWAY_PORT, the builder and the
// provisioner on their ops server (METRICS_PORT). Exit 0 when it answers 200.
import { readFileSync } from 'node:fs';

const DEFAULT_PORTS = { gateway: 8080, builder: 9101, provisioner: 9102 };
const argv = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
const service = argv.map((a) => /(?:^|\/services\/)(gateway|builder|provisioner)(?:\/|$)/.exec(a)?.[1]).find(Boolean) ?? 'gateway';
const [hostVar, portVar] = service === 'gateway' ? ['GATEWAY_HOST', 'GATEWAY_PORT'] : ['METRICS_HOST', 'METRICS_PORT'];
const bound = process.env[hostVar] ?? '0.0.0.0';
const host = bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound;
const port = Number(process.env[portVar] ?? DEFAULT_PORTS[service]);
try {
  const res = await fetch(`http://${host.includes(':') ? `[${host}]` : host}:${port}/healthz`, { signal: AbortSignal.timeout(4000) });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
} catch (err) {
  console.error(`${service} /healthz on ${host}:${port}: ${err.message}`);
  process.exit(1);
}
