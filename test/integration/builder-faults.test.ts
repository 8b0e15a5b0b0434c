import { BUILD_IMAGE_REPOSITORY } from '@codebay/contracts';
import { RegistryClient, createRedis } from '@codebay/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { createFromWorkspace, waitForStatus } from '../support/instances.ts';
import { readSse } from '../support/sse.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { containersRunning, dockerAt, processesMatching, salt, workspaceTarball } from '../support/workspaces.ts';

const TIMEOUT_SECONDS = 12;

async function logText(stack: Stack, id: string): Promise<string> {
  return ((await (await stack.api(`/api/instances/${id}/build-logs`)).json()) as { logs: string }).logs;
}

async function endOf(stack: Stack, id: string): Promise<{ outcome: string; reason: string | null }> {
  const events = await readSse(await stack.api(`/api/instances/${id}/build-logs?follow=1`), (e) => e.event === 'end', 120_000);
  return JSON.parse(events.at(-1)!.data) as { outcome: string; reason: string | null };
}

async function forget(user: string): Promise<void> {
  const redis = createRedis(components().redisUrl, 'test-faults');
  const ids = await redis.smembers(`codebay:user:${user}:instances`);
  if (ids.length > 0) await redis.srem('codebay:instances', ...ids);
  await redis.del(`codebay:user:${user}:instances`, ...ids.map((id) => `codebay:instance:${id}`));
  await redis.quit();
}

/** A Dockerfile build with one long RUN step, unique per call. */
const slowWorkspace = (marker: string) =>
  workspaceTarball({ config: { build: { dockerfile: 'Dockerfile' } }, dockerfile: `FROM debian:bookworm\nRUN echo ${marker} && sleep 60\n` });

/** Builds that must stop: deleted mid-build, over time, failing for good. Real gateway, builder, provisioner, dockerd, registry. */
describe('builder: cancellation, time limit, permanent failures', () => {
  let stack: Stack;
  const c = components();
  const user = `faults-${salt()}`;
  const docker = dockerAt(c.dockerHost);
  const registry = new RegistryClient(`http://${c.registry}`);

  beforeAll(async () => {
    stack = await startStack({ name: 'faults', env: { BUILD_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS), BUILDER_NAME: 'builder-faults' } });
  });
  afterAll(async () => {
    await stack?.stop();
    await forget(user);
  });

  /** Waits until the long RUN step runs in a container of the daemon. */
  const untilRunning = (marker: string) =>
    waitFor(`the RUN step with ${marker} to run`, async () => ((await containersRunning(docker, marker)).length > 0 ? true : undefined), 90_000, 200);

  it('deleting an instance mid-build stops the CLI and its docker build within seconds, pushes nothing, ends Deleted', async () => {
    const marker = `cancel-${salt()}`;
    const inst = await createFromWorkspace(stack, user, await slowWorkspace(marker));
    const id = inst.instance_id;
    await untilRunning(marker);
    expect(processesMatching(`${id}/workspace`).length).toBeGreaterThan(0);
    const t0 = Date.now();
    expect((await stack.api(`/api/instances/${id}`, { method: 'DELETE' })).status).toBe(202);
    await waitFor('the CLI to be gone', () => (processesMatching(`${id}/workspace`).length === 0 ? true : undefined), 10_000, 100);
    await waitFor('the build container to be gone', async () => ((await containersRunning(docker, marker, true)).length === 0 ? true : undefined), 15_000, 200);
    const stoppedIn = Date.now() - t0;
    expect(stoppedIn).toBeLessThan(15_000);
    await waitForStatus(stack, id, ['Deleted'], 60_000);
    expect(await registry.image(BUILD_IMAGE_REPOSITORY, inst.build!.key)).toBeUndefined();
    expect(await endOf(stack, id)).toMatchObject({ outcome: 'cancelled' });
    expect(await logText(stack, id)).toContain('build cancelled: the instance was deleted');
  });

  it(`a build over BUILD_TIMEOUT_SECONDS fails with the reason, its children killed`, async () => {
    const marker = `timeout-${salt()}`;
    const inst = await createFromWorkspace(stack, user, await slowWorkspace(marker));
    await untilRunning(marker);
    const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 90_000);
    expect(failed.error).toBe(`build timed out after ${TIMEOUT_SECONDS} s`);
    expect(failed.phase).toBe('build');
    expect(processesMatching(`${inst.instance_id}/workspace`)).toEqual([]);
    await waitFor('the build container to be gone', async () => ((await containersRunning(docker, marker, true)).length === 0 ? true : undefined), 15_000, 200);
    expect(await endOf(stack, inst.instance_id)).toMatchObject({ outcome: 'failure', reason: `build timed out after ${TIMEOUT_SECONDS} s` });
    expect(await logText(stack, inst.instance_id)).not.toContain('retrying');
  });

  it('a failing RUN step fails at once with the CLI’s message, without retrying', async () => {
    const inst = await createFromWorkspace(
      stack,
      user,
      await workspaceTarball({ config: { build: { dockerfile: 'Dockerfile' } }, dockerfile: `FROM debian:bookworm\nRUN echo broken-${salt()} && exit 3\n` }),
    );
    const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 120_000);
    expect(failed.error).toMatch(/returned a non-zero code: 3|An error occurred building the image/);
    const text = await logText(stack, inst.instance_id);
    expect(text).toContain('returned a non-zero code: 3');
    expect(text).not.toContain('retrying');
    expect(text.match(/on builder builder-faults/g)).toHaveLength(1);
  });

  it('an unknown feature fails at once, without retrying', async () => {
    const inst = await createFromWorkspace(
      stack,
      user,
      await workspaceTarball({ config: { image: 'debian:bookworm', features: { [`localhost:32000/codebay-test/no-such-feature-${salt()}:1`]: {} } } }),
    );
    const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 120_000);
    expect(failed.phase).toBe('build');
    expect(await logText(stack, inst.instance_id)).not.toContain('retrying');
  });
});

describe('builder: faults worth retrying', () => {
  let stack: Stack;
  const user = `transient-${salt()}`;

  beforeAll(async () => {
    // A builder whose Docker daemon does not answer: every attempt fails the same transient way.
    stack = await startStack({
      name: 'transient',
      services: ['gateway', 'builder'],
      env: { DOCKER_HOST: 'unix:///run/codebay-no-such-daemon.sock', BUILD_ATTEMPTS: '3', BUILD_BACKOFF_SECONDS: '1', BUILDER_NAME: 'builder-nodaemon' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await forget(user);
  });

  it('a daemon that does not answer is retried with backoff, then fails with the reason', async () => {
    const inst = await createFromWorkspace(
      stack,
      user,
      await workspaceTarball({ config: { build: { dockerfile: 'Dockerfile' } }, dockerfile: `FROM debian:bookworm\nRUN echo t-${salt()}\n` }),
    );
    const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 120_000);
    expect(failed.error).toMatch(/Cannot connect to the Docker daemon|docker\.sock|ENOENT|ECONNREFUSED/i);
    const text = await logText(stack, inst.instance_id);
    expect(text).toContain('retrying (attempt 2 of 3)');
    expect(text).toContain('retrying (attempt 3 of 3)');
    expect(text.match(/on builder builder-nodaemon/g)).toHaveLength(3);
    const ready = await fetch(`http://127.0.0.1:${stack.ports.builder}/readyz`);
    expect(ready.status).toBe(503);
  });
});
