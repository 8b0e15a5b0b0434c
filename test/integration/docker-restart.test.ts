import type { InstanceResponse } from '@codebay/contracts';
import { dockerFromHost } from '@codebay/platform';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { execIn } from '../support/docker.ts';
import { editorRequest } from '../support/editor.ts';
import { createFromDevcontainer, getInstance, uniqueDevcontainer, waitForStatus } from '../support/instances.ts';
import { forgetUsers } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { salt } from '../support/workspaces.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../samples', import.meta.url));

/**
 * Instances on the Docker runtime when their containers or their daemon go away, on the Docker
 * daemon `npm start` uses (deploy/local/components.sh's first), which this suite kills and starts
 * again with `components.sh up` (a running `npm start`'s instances live through it as these do).
 */
describe('Docker runtime: instances after their container or daemon went away', () => {
  let stack: Stack;
  const c = components();
  const user = `restart-${salt()}`;
  const docker = dockerFromHost(c.dockerHost);

  const editorAnswers = async (inst: InstanceResponse) =>
    (await editorRequest(`${inst.editor_url}healthz`, { headers: { cookie: `codebay_tkn=${inst.access_token}` }, timeoutMs: 3_000 }).catch(() => undefined))
      ?.status === 200;
  /** The instance's editor container (running), by its label. */
  const containerOf = async (id: string) => {
    const list = await docker.listContainers({ filters: { label: [`codebay.instance=${id}`, 'codebay.kind=instance'] } });
    return list[0]?.Id ?? '';
  };
  const exec = async (containerId: string, cmd: string[]) => (await execIn(docker, containerId, cmd, 'root')).stdout;
  const running = async () => {
    const inst = await createFromDevcontainer(stack, user, await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`));
    await waitForStatus(stack, inst.instance_id, ['Running'], 240_000);
    const marker = salt();
    await exec(await containerOf(inst.instance_id), ['sh', '-c', `echo ${marker} > /workspace/.kept`]);
    return { inst, marker };
  };

  beforeAll(async () => {
    stack = await startStack({ name: 'restart' });
  });
  const componentsUp = () => run('bash', [`${ROOT}/deploy/local/components.sh`, 'up'], { env: process.env, maxBuffer: 16 << 20 });
  afterAll(async () => {
    // The daemon is back for whatever runs next, however the test ended.
    if (
      !(await docker.ping().then(
        () => true,
        () => false,
      ))
    )
      await componentsUp();
    await stack?.stop();
    await forgetUsers(user);
  });

  it('an editor container stopped behind codebay’s back: the instance leaves Running within seconds, then runs again on a new container with /workspace kept', async () => {
    const { inst, marker } = await running();
    const before = await containerOf(inst.instance_id);
    await docker.getContainer(before).stop({ t: 1 });
    const t0 = Date.now();
    const moved = await waitFor(
      'the record to leave Running',
      async () => {
        const r = await getInstance(stack, inst.instance_id);
        return r.status !== 'Running' ? r : undefined;
      },
      15_000,
      100,
    );
    const leftIn = Date.now() - t0;
    expect(['Provisioning', 'Running']).toContain(moved.status);
    expect(moved.warning).toMatch(/the editor container stopped at .* \(exit code \d+\): a new one is started on the same volumes/);
    const back = await waitForStatus(stack, inst.instance_id, ['Running'], 120_000);
    const now = await containerOf(inst.instance_id);
    expect(now).not.toBe(before);
    expect(await editorAnswers(back)).toBe(true);
    expect((await exec(now, ['cat', '/workspace/.kept'])).trim()).toBe(marker);
    expect(leftIn).toBeLessThan(5_000);
  });

  it('SIGKILL of the Docker daemon with two instances Running: both editors answer throughout and after it is back, /workspace kept, still Running', async () => {
    const a = await running();
    const b = await running();
    const containers = new Map([
      [a.inst.instance_id, await containerOf(a.inst.instance_id)],
      [b.inst.instance_id, await containerOf(b.inst.instance_id)],
    ]);
    const pid = Number(readFileSync('/run/codebay-docker/docker.pid', 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitFor(
      'the daemon to be gone',
      async () =>
        (await docker.ping().then(
          () => false,
          () => true,
        ))
          ? true
          : undefined,
      10_000,
      100,
    );
    // Live restore: the containers outlive their daemon; published ports keep working.
    expect(await editorAnswers(a.inst)).toBe(true);
    expect(await editorAnswers(b.inst)).toBe(true);
    const t0 = Date.now();
    await componentsUp();
    const restartedIn = Date.now() - t0;
    for (const { inst, marker } of [a, b]) {
      await waitFor(`${inst.instance_id}'s editor to answer`, async () => ((await editorAnswers(inst)) ? true : undefined), 30_000, 200);
      const record = await getInstance(stack, inst.instance_id);
      expect(record.status).toBe('Running');
      // The same container, restored with its daemon: nothing had to start again.
      expect(await containerOf(inst.instance_id)).toBe(containers.get(inst.instance_id));
      expect((await exec(await containerOf(inst.instance_id), ['cat', '/workspace/.kept'])).trim()).toBe(marker);
    }
    expect(restartedIn).toBeLessThan(120_000);
  });
});
