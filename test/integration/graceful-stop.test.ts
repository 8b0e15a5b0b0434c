import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { createFromWorkspace, getInstance, waitForStatus } from '../support/instances.ts';
import { buildLogLines, forgetUsers } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { buildStepsRunning, salt, workspaceTarball } from '../support/workspaces.ts';

/** A Dockerfile build with one RUN step of `seconds`, unique per call. */
const buildOf = (marker: string, seconds: number) =>
  workspaceTarball({ config: { build: { dockerfile: 'Dockerfile' } }, dockerfile: `FROM debian:bookworm\nRUN echo ${marker} && sleep ${seconds}\n` });

/**
 * A builder stopped (SIGTERM: a rolling update, a scale-down) stops taking work, lets a running
 * build finish within SHUTDOWN_GRACE_SECONDS, and otherwise hands it back to the queue unused.
 * Real gateway, builders, provisioner, dockerd, registry.
 */
describe('builders stop gracefully', () => {
  let stack: Stack;
  let redis: Redis;
  let queue: Queue;
  const c = components();
  const user = `graceful-${salt()}`;
  const untilRunning = (marker: string) =>
    waitFor(`the RUN step with ${marker} to run`, async () => (buildStepsRunning(marker).length > 0 ? true : undefined), 90_000, 200);

  beforeAll(async () => {
    stack = await startStack({ name: 'graceful', services: ['gateway', 'provisioner'] });
    redis = new Redis(c.redisUrl, { maxRetriesPerRequest: null });
    queue = new Queue('codebay-build', { connection: redis, prefix: stack.queuePrefix });
  });
  afterAll(async () => {
    await queue?.close();
    redis?.disconnect();
    await stack?.stop();
    await forgetUsers(user);
  });

  it('a build still running when the grace period ends goes back to the queue, attempts unused, and another builder completes it', async () => {
    await stack.startService('builder', { as: 'builder-a', env: { BUILDER_NAME: 'builder-a', SHUTDOWN_GRACE_SECONDS: '2' } });
    const marker = `release-${salt()}`;
    const inst = await createFromWorkspace(stack, user, await buildOf(marker, 10));
    await untilRunning(marker);
    const t0 = Date.now();
    await stack.stopService('builder-a', 'SIGTERM');
    const stoppedIn = Date.now() - t0;
    expect(stoppedIn).toBeLessThan(12_000);
    // Handed back: waiting again, no attempt used; the instance waits for a builder; its docker build stopped.
    const job = await queue.getJob(`build-${inst.instance_id}`);
    expect(await job!.getState()).toBe('waiting');
    expect(job!.attemptsMade).toBe(0);
    expect((await getInstance(stack, inst.instance_id)).status).toBe('Queued');
    expect((await buildLogLines(stack, inst.instance_id)).join('\n')).toContain(
      'codebay: this builder is shutting down: the build goes back to the queue for another builder',
    );
    await waitFor('the build step to be gone', async () => (buildStepsRunning(marker).length === 0 ? true : undefined), 15_000, 200);
    await stack.startService('builder', { as: 'builder-b', env: { BUILDER_NAME: 'builder-b' } });
    const running = await waitForStatus(stack, inst.instance_id, ['Running'], 300_000);
    expect(running.status).toBe('Running');
    const lines = await buildLogLines(stack, inst.instance_id);
    expect(lines.some((l) => /building build key \w+ on builder builder-b/.test(l))).toBe(true);
    await stack.stopService('builder-b');
  });

  it('a build that ends within the grace period finishes before the builder exits', async () => {
    await stack.startService('builder', { as: 'builder-c', env: { BUILDER_NAME: 'builder-c', SHUTDOWN_GRACE_SECONDS: '60' } });
    const marker = `finish-${salt()}`;
    const inst = await createFromWorkspace(stack, user, await buildOf(marker, 4));
    await untilRunning(marker);
    const exited = new Promise<number | null>((resolve) => stack.processes.get('builder-c')!.once('exit', (code) => resolve(code)));
    stack.processes.get('builder-c')!.kill('SIGTERM');
    expect(await exited).toBe(0);
    // Finished (pushed: Built, then provisioned) by the builder that was stopping; no other builder runs.
    const running = await waitForStatus(stack, inst.instance_id, ['Running'], 120_000);
    expect(running.build?.cache).toBe('miss');
    const job = await queue.getJob(`build-${inst.instance_id}`);
    expect(await job?.getState()).toBe('completed');
    expect((await buildLogLines(stack, inst.instance_id)).some((l) => l.includes('shutting down'))).toBe(false);
  });
});
