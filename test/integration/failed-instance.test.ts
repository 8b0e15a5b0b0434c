// Debugging a failed instance, through the whole system on the Docker runtime (real gateway,
// builder, provisioner, Redis, dockerd, registry, Dev Containers CLI): an instance whose
// provisioning fails keeps its container, stopped, for FAILED_INSTANCE_KEEP_SECONDS — with its
// log, its volume and the deadline said by the API — through a provisioner restart; the
// provisioner's reconciler removes it once the deadline passed, and a delete removes it at once.
import type { InstanceResponse } from '@codebay/contracts';
import { demuxDockerLog, dockerFromHost } from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { createFromDevcontainer, getInstance, waitForStatus } from '../support/instances.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';

/** Short enough to wait for, long enough for a delete to land well before it. */
const KEEP_SECONDS = 45;
const docker = () => dockerFromHost(components().dockerHost);
const user = `keep-${randomBytes(3).toString('hex')}`;
let stack: Stack;

/** The instance's container as the daemon has it, or undefined once it is gone. */
async function containerOf(id: string) {
  return docker()
    .getContainer(stack.names.container(id))
    .inspect()
    .catch((err: { statusCode?: number }) => {
      if (err.statusCode === 404) return undefined;
      throw err;
    });
}

async function volumeExists(id: string): Promise<boolean> {
  return docker()
    .getVolume(stack.names.workspaceVolume(id))
    .inspect()
    .then(
      () => true,
      (err: { statusCode?: number }) => {
        if (err.statusCode === 404) return false;
        throw err;
      },
    );
}

/** Polls until the instance's container is gone; returns when that was seen (ms since the epoch). */
async function goneAt(id: string, timeoutMs: number): Promise<number> {
  return waitFor(`the container of ${id} to be removed`, async () => ((await containerOf(id)) ? undefined : Date.now()), timeoutMs, 250);
}

/**
 * Waits until the instance is Failed and checks, at once, what is kept: the API's deadline (about
 * KEEP_SECONDS away), the container stopped (not restarting: its restart policy gave way to the
 * stop) with the launcher's refusal in its log, and its workspace volume.
 */
async function failedAndKept(id: string): Promise<InstanceResponse> {
  const f = await waitForStatus(stack, id, ['Failed', 'Running'], 300_000);
  expect(f.status, f.error ?? '').toBe('Failed');
  expect(f.phase).toBe('provision');
  expect(f.error).toMatch(/remoteUser "nobody-here-keep" does not exist in the image/);
  expect(f.kept_until).not.toBeNull();
  const left = Date.parse(f.kept_until!) - Date.now();
  expect(left).toBeGreaterThan(0);
  expect(left).toBeLessThanOrEqual(KEEP_SECONDS * 1000);
  const info = await containerOf(id);
  expect(info?.Config.Labels['codebay.instance']).toBe(id);
  expect(info?.State).toMatchObject({ Running: false, Restarting: false });
  const log = demuxDockerLog((await docker().getContainer(info!.Id).logs({ stdout: true, stderr: true })) as unknown as Buffer, false);
  expect(log).toMatch(/remoteUser "nobody-here-keep" does not exist in the image/);
  expect(await volumeExists(id)).toBe(true);
  return f;
}

beforeAll(async () => {
  stack = await startStack({
    name: 'keepfailed',
    // A reconcile pass every 2 s: the removal follows the deadline closely.
    env: { FAILED_INSTANCE_KEEP_SECONDS: String(KEEP_SECONDS), RECONCILE_INTERVAL_SECONDS: '2', READY_TIMEOUT_SECONDS: '60' },
  });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('a failed instance kept for inspection (Docker runtime)', () => {
  it('keeps the failed container stopped with its log until the deadline the API says, through a provisioner restart; then removes it; a delete removes it at once', async () => {
    // The launcher refuses a remoteUser the image does not have (exit 2): provisioning fails for good.
    const file = join(await mkdtemp(join(tmpdir(), 'codebay-keep-')), 'devcontainer.json');
    await writeFile(
      file,
      JSON.stringify({ image: 'debian:bookworm', remoteUser: 'nobody-here-keep', containerEnv: { CODEBAY_TEST_RUN: randomBytes(6).toString('hex') } }),
    );

    // The first (built) is deleted while kept: removed at once, long before its deadline.
    const first = await failedAndKept((await createFromDevcontainer(stack, user, file)).instance_id);
    expect((await stack.api(`/api/instances/${first.instance_id}`, { method: 'DELETE' })).status).toBe(202);
    await waitForStatus(stack, first.instance_id, ['Deleted'], 30_000);
    expect(await goneAt(first.instance_id, 10_000)).toBeLessThan(Date.parse(first.kept_until!));
    expect(await volumeExists(first.instance_id)).toBe(false);

    // The second (the same config: its image from the build cache) is left to its deadline, which is
    // on the record: a provisioner started again meanwhile still removes the container after it.
    const second = await failedAndKept((await createFromDevcontainer(stack, user, file)).instance_id);
    await stack.stopService('provisioner');
    await stack.startService('provisioner');
    const removedAt = await goneAt(second.instance_id, (KEEP_SECONDS + 60) * 1000);
    expect(removedAt).toBeGreaterThanOrEqual(Date.parse(second.kept_until!));
    // Still Failed with its reason and its log; nothing kept any more (said once all of it is removed).
    const after = await waitFor(
      'the API to say nothing is kept',
      async () => {
        const i = await getInstance(stack, second.instance_id);
        return i.kept_until === null ? i : undefined;
      },
      10_000,
    );
    expect(await volumeExists(second.instance_id)).toBe(false);
    expect(after).toMatchObject({ status: 'Failed', phase: 'provision' });
    expect(after.error).toMatch(/remoteUser/);
    const logs = (await (await stack.api(`/api/instances/${second.instance_id}/logs`)).json()) as { logs: string };
    expect(logs.logs).toMatch(/remoteUser "nobody-here-keep" does not exist in the image/);
    await stack.api(`/api/instances/${second.instance_id}`, { method: 'DELETE' });
  }, 600_000);
});
