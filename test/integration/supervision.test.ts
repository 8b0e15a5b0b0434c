import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { createFromWorkspace, waitForStatus, type ApiTarget } from '../support/instances.ts';
import { forgetUsers } from '../support/records.ts';
import { freePort } from '../support/ports.ts';
import { LOG_DIR, removeDeployment } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { salt, workspaceTarball } from '../support/workspaces.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * `npm start` (deploy/local/start.sh) as a person runs it — its own ports, Redis database, queue
 * prefix and Docker deployment name, so a running system is left alone — with its services
 * killed under it: a service that dies is started again, the others keep serving.
 */
describe('npm start supervises its services', () => {
  const c = components();
  const user = `supervise-${salt()}`;
  const deployment = `codebay-t${randomBytes(4).toString('hex')}`;
  const work = mkdtempSync(join(tmpdir(), 'codebay-supervise-'));
  const adminToken = randomBytes(24).toString('hex');
  const output: string[] = [];
  let start: ChildProcess;
  let gatewayPort: number;
  let builderMetrics: number;
  let api: ApiTarget;

  const pidOf = (service: string) => Number(readFileSync(join(work, 'run', `${service}.pid`), 'utf8'));
  const answers = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined))?.ok === true;

  beforeAll(async () => {
    [gatewayPort, builderMetrics] = await Promise.all([freePort(), freePort()]);
    writeFileSync(join(work, 'tokens.json'), '{"tokens": []}', { mode: 0o600 });
    const log = createWriteStream(join(LOG_DIR, `supervise-${salt()}.log`));
    start = spawn('bash', [join(ROOT, 'deploy/local/start.sh')], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        REDIS_URL: c.redisUrl,
        GATEWAY_PORT: String(gatewayPort),
        BUILDER_METRICS_PORT: String(builderMetrics),
        GATEWAY_METRICS_PORT: String(await freePort()),
        PROVISIONER_METRICS_PORT: String(await freePort()),
        CODEBAY_RUN_DIR: join(work, 'run'),
        CODEBAY_ARTIFACT_DIR: join(work, 'artifacts'),
        CODEBAY_BUILD_DIR: join(work, 'builds'),
        CODEBAY_TOKENS_FILE: join(work, 'tokens.json'),
        CODEBAY_ADMIN_TOKEN: adminToken,
        CODEBAY_SECRET_KEY: randomBytes(32).toString('base64'),
        CODEBAY_QUEUE_PREFIX: `codebay-test:supervise-${salt()}`,
        CODEBAY_DEPLOYMENT: deployment,
        // A killed builder's job goes to the next one after its lock runs out.
        JOB_LOCK_SECONDS: '10',
        STALLED_INTERVAL_SECONDS: '5',
      },
    });
    for (const stream of [start.stdout!, start.stderr!]) {
      stream.pipe(log);
      stream.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    }
    api = {
      api: (path, init = {}) => {
        const headers = new Headers(init.headers);
        headers.set('authorization', `Bearer ${adminToken}`);
        return fetch(`http://127.0.0.1:${gatewayPort}${path}`, { ...init, headers });
      },
    } as ApiTarget;
    await waitFor('npm start to serve', async () => ((await answers(`http://127.0.0.1:${gatewayPort}/health`)) ? true : undefined), 180_000, 250);
    await waitFor('the builder to answer', async () => ((await answers(`http://127.0.0.1:${builderMetrics}/healthz`)) ? true : undefined), 60_000, 250);
  }, 300_000);

  afterAll(async () => {
    if (start?.exitCode === null) {
      const exited = new Promise((resolve) => start.once('exit', resolve));
      process.kill(start.pid!, 'SIGINT');
      await exited;
    }
    await removeDeployment(components().dockerHost, deployment);
    await forgetUsers(user);
  });

  it('SIGKILL of the builder mid-build: the gateway keeps answering, the builder is back within seconds, the build completes', async () => {
    const marker = `supervise-${salt()}`;
    const inst = await createFromWorkspace(
      api,
      user,
      await workspaceTarball({ config: { build: { dockerfile: 'Dockerfile' } }, dockerfile: `FROM debian:bookworm\nRUN echo ${marker} && sleep 8\n` }),
    );
    await waitFor(
      'the build to start',
      async () => ((await (await api.api(`/api/instances/${inst.instance_id}`)).json()) as { status: string }).status === 'Building' || undefined,
      60_000,
      100,
    );
    const killed = pidOf('builder');
    let gatewayMisses = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) if (!(await answers(`http://127.0.0.1:${gatewayPort}/health`))) gatewayMisses++;
    })();
    const t0 = Date.now();
    process.kill(killed, 'SIGKILL');
    await waitFor('a new builder process', () => (pidOf('builder') !== killed ? true : undefined), 15_000, 50);
    await waitFor('the new builder to answer', async () => ((await answers(`http://127.0.0.1:${builderMetrics}/healthz`)) ? true : undefined), 30_000, 100);
    const backIn = Date.now() - t0;
    const running = await waitForStatus(api, inst.instance_id, ['Running'], 240_000);
    sampling = false;
    await sampler;
    expect(running.status).toBe('Running');
    expect(gatewayMisses).toBe(0);
    expect(backIn).toBeLessThan(15_000);
    expect(output.join('')).toMatch(/codebay: builder was killed by signal KILL after \d+ s; starting it again in 1 s \(restart 1\)/);
    expect(start.exitCode).toBeNull();
  });
});
