import type { InstanceResponse } from '@codebay/contracts';
import { dockerFromHost } from '@codebay/platform';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { uniqueDevcontainer, waitForStatus } from '../support/instances.ts';
import { forgetUsers } from '../support/records.ts';
import { startStack, type ServiceName, type Stack } from '../support/stack.ts';
import { pidAlive, waitFor } from '../support/wait.ts';
import { salt } from '../support/workspaces.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../samples', import.meta.url));

/**
 * Upgrades and restarts lose nothing: every service restarted in turn (SIGTERM, as a rolling
 * update does) while creates, builds and provisioning are in flight, and Redis restarted (AOF)
 * mid-burst. Clients retry what the gateway could not take with the same Idempotency-Key, as
 * the API asks them to. Real gateway, builder, provisioner, Redis, dockerd, registry.
 */
describe('restarts during work lose nothing', () => {
  let stack: Stack;
  const c = components();
  const user = `restarts-${salt()}`;
  const user2 = `restarts-${salt()}`;
  const docker = dockerFromHost(c.dockerHost);

  /** One create, retried with its Idempotency-Key until the gateway takes it (it may be restarting). */
  const create = async (kind: 'simple' | 'devcontainer', owner = user): Promise<InstanceResponse> => {
    const key = randomUUID();
    const body = async (): Promise<{ body: string | FormData; headers: Record<string, string> }> => {
      if (kind === 'simple')
        return { body: JSON.stringify({ user_id: owner, base_image: 'debian:bookworm' }), headers: { 'content-type': 'application/json' } };
      const form = new FormData();
      form.set('user_id', owner);
      form.set(
        'devcontainer_json',
        new Blob([readFileSync(await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`))], { type: 'application/json' }),
        'devcontainer.json',
      );
      return { body: form, headers: {} };
    };
    const made = await body();
    return waitFor(
      `the gateway to take a ${kind} create`,
      async () => {
        const res = await stack
          .api(`/api/instances/${kind}`, { method: 'POST', body: made.body, headers: { ...made.headers, 'idempotency-key': key } })
          .catch(() => undefined);
        if (res?.status === 202) return (await res.json()) as InstanceResponse;
        if (res && res.status < 500) throw new Error(`create refused: ${res.status} ${await res.text()}`);
        return undefined;
      },
      120_000,
      200,
    );
  };
  const restart = async (service: ServiceName) => {
    await stack.stopService(service, 'SIGTERM');
    await stack.startService(service);
  };
  /** Each instance's containers: exactly one per instance, none left over. */
  const containersByInstance = async (ids: string[]) => {
    const list = await docker.listContainers({ all: true, filters: { label: ['codebay.kind=instance'] } });
    return ids.map((id) => list.filter((ct) => ct.Labels['codebay.instance'] === id).length);
  };

  beforeAll(async () => {
    // A worker that dies is noticed sooner than the default minute.
    stack = await startStack({ name: 'restarts', env: { JOB_LOCK_SECONDS: '10', STALLED_INTERVAL_SECONDS: '5' } });
  });
  afterAll(async () => {
    await stack?.stop();
    await forgetUsers(user, user2);
  });

  it('gateway, builder and provisioner restarted in turn during 10 concurrent creates: all end Running, none duplicated', async () => {
    const creating = Promise.all([...Array<'devcontainer'>(6).fill('devcontainer'), ...Array<'simple'>(4).fill('simple')].map((k) => create(k)));
    // Restarts as the work flows through each service: the gateway while creates arrive, then the
    // builder mid-build, then the provisioner while it provisions.
    await restart('gateway');
    await waitFor(
      'a build to run',
      async () =>
        /^codebay_builds_in_progress\{[^}]*\} 1$/m.test(await (await fetch(`http://127.0.0.1:${stack.ports.builder}/metrics`)).text()) ? true : undefined,
      120_000,
      50,
    );
    await restart('builder');
    await restart('provisioner');
    const created = await creating;
    const ids = created.map((i) => i.instance_id);
    expect(new Set(ids).size).toBe(10);
    for (const id of ids) await waitForStatus(stack, id, ['Running'], 600_000);
    const listed = (await (await stack.api(`/api/instances?user_id=${user}`)).json()) as { instances: InstanceResponse[] };
    expect(listed.instances.map((i) => i.instance_id).sort()).toEqual([...ids].sort());
    expect(await containersByInstance(ids)).toEqual(ids.map(() => 1));
  });

  it('Redis restarted (append-only file) mid-burst: no record lost, every instance ends Running', async () => {
    const before = new Set(((await (await stack.api('/api/instances')).json()) as { instances: InstanceResponse[] }).instances.map((i) => i.instance_id));
    // Another user: the first test's 10 instances are the per-user limit.
    const burst = await Promise.all([create('devcontainer', user2), create('devcontainer', user2), create('simple', user2), create('simple', user2)]);
    const pid = Number(readFileSync('/var/lib/codebay/run/redis.pid', 'utf8'));
    process.kill(pid, 'SIGTERM');
    await waitFor('Redis to stop', () => (pidAlive(pid) ? undefined : true), 30_000, 100);
    await run('bash', [`${ROOT}/deploy/local/components.sh`, 'up'], { env: process.env, maxBuffer: 16 << 20 });
    for (const inst of burst) await waitForStatus(stack, inst.instance_id, ['Running'], 600_000);
    const after = new Set(((await (await stack.api('/api/instances')).json()) as { instances: InstanceResponse[] }).instances.map((i) => i.instance_id));
    for (const id of [...before, ...burst.map((i) => i.instance_id)]) expect(after.has(id), id).toBe(true);
    expect(await containersByInstance(burst.map((i) => i.instance_id))).toEqual([1, 1, 1, 1]);
  });
});
