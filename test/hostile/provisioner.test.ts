import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '@codebay/contracts';
import { createRedis } from '@codebay/platform';
import { components } from '../support/components.ts';
import { testDocker } from '../support/docker.ts';
import { forgetUsers } from '../support/records.ts';
import { createFromDevcontainer, getInstance, waitForLifecycle, waitForStatus } from '../support/instances.ts';
import { waitFor } from '../support/wait.ts';
import { startStack, type Stack } from '../support/stack.ts';

/** Resident memory of a process, bytes (`VmRSS` in /proc/<pid>/status). */
function rss(pid: number): number {
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kib) * 1024;
}

/**
 * An instance's output is the tenant's: the provisioner reads it (to notice the editor
 * listening) and must stay up and small whatever the instance writes.
 */
describe('hostile tenant: its instance’s output against the provisioner', () => {
  let stack: Stack;
  const user = `flood-${randomBytes(3).toString('hex')}`;
  const created: string[] = [];

  beforeAll(async () => {
    stack = await startStack({ name: 'hostile-flood' });
  });
  afterAll(async () => {
    // Whatever this suite started goes, pass or fail.
    for (const id of created) {
      await stack?.api(`/api/instances/${id}`, { method: 'DELETE' }).catch(() => undefined);
      await waitForStatus(stack, id, ['Deleted'], 60_000).catch(() => undefined);
    }
    if (stack) await stack.stop();
    await forgetUsers(user);
  });

  it('200 MB of log without a newline while the editor starts: the instance still becomes Running, the provisioner stays up and does not hold it', async () => {
    const provisioner = stack.processes.get('provisioner')!;
    const before = rss(provisioner.pid!);
    const dir = await mkdtemp(join(tmpdir(), 'codebay-flood-'));
    const file = join(dir, 'devcontainer.json');
    await writeFile(
      file,
      JSON.stringify({
        image: 'debian:bookworm',
        containerEnv: { FLOOD_RUN: randomBytes(4).toString('hex') },
        // Root writes straight into the container's log (PID 1's stdout), in the background, no newline ever.
        postCreateCommand: "(head -c 200000000 /dev/zero | tr '\\000' x > /proc/1/fd/1) &",
      }),
    );
    const flooding = await createFromDevcontainer(stack, user, file);
    created.push(flooding.instance_id);
    const running: InstanceResponse = await waitForStatus(stack, flooding.instance_id, ['Running'], 300_000);
    expect(running.status).toBe('Running');
    expect(provisioner.exitCode).toBeNull();
    // The editor started with a CPU burst (EDITOR_START_CPU); once Running, the instance's own limit (cpu_limit 1000m).
    const info = await testDocker().getContainer(stack.names.container(flooding.instance_id)).inspect();
    expect(info.HostConfig.NanoCpus).toBe(1_000_000_000);
    const grown = rss(provisioner.pid!) - before;
    expect(grown, `provisioner grew by ${Math.round(grown / 2 ** 20)} MiB`).toBeLessThan(64 * 2 ** 20);
    // And it still provisions: another instance starts.
    const res = await stack.api('/api/instances/simple', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: user, base_image: 'debian:bookworm' }),
    });
    expect(res.status).toBe(202);
    const next = (await res.json()) as InstanceResponse;
    created.push(next.instance_id);
    expect((await waitForStatus(stack, next.instance_id, ['Running'], 120_000)).status).toBe('Running');
    for (const id of created.splice(0)) {
      expect((await stack.api(`/api/instances/${id}`, { method: 'DELETE' })).status).toBe(202);
      await waitForStatus(stack, id, ['Deleted'], 60_000);
    }
  });

  it('forged launcher lines and a flood in its own log: its record stays readable and deletable, only the launcher’s own properties and the spec’s commands are read, the provisioner stays small, the log is rate-limited and capped', async () => {
    const provisioner = stack.processes.get('provisioner')!;
    const before = rss(provisioner.pid!);
    const dir = await mkdtemp(join(tmpdir(), 'codebay-forge-'));
    const file = join(dir, 'devcontainer.json');
    // Root writes straight into the container's log (PID 1's stdout, the launcher's), as if it were the launcher.
    const line = (json: string) => `printf '%s\\n' '[codebay-launcher] 2026-01-01T00:00:00Z lifecycle ${json}' > /proc/1/fd/1`;
    const forge = [
      `for i in $(seq 1 80); do printf '[codebay-launcher] 2026-01-01T00:00:00Z lifecycle {"warning":{"property":"features[\\"x%s\\"].privileged","message":"phish"}}\\n' $i; done > /proc/1/fd/1`,
      line('{"phase":"evilCommand","state":"failed","exitCode":1}'),
      // JSON's 1e999 is Infinity: stored, it would make the record unreadable (and undeletable).
      line('{"phase":"postStartCommand","state":"failed","durationMs":1e999,"exitCode":1e999}'),
      // A flood of lifecycle lines (each once cost a record read), then of plain output.
      `(yes '[codebay-launcher] 2026-01-01T00:00:00Z lifecycle {"event":"started","ok":true}' | head -n 300000 > /proc/1/fd/1; yes flood-line-of-the-tenant-padding | head -c 60000000 > /proc/1/fd/1) &`,
    ].join('; ');
    await writeFile(file, JSON.stringify({ image: 'debian:bookworm', containerEnv: { FORGE_RUN: randomBytes(4).toString('hex') }, postStartCommand: forge }));
    const forged = await createFromDevcontainer(stack, user, file);
    await waitForStatus(stack, forged.instance_id, ['Running'], 300_000);
    await waitForLifecycle(stack, forged.instance_id, 120_000);
    // The flood is cut to the instance log's rate and said in the log.
    await waitFor(
      'the flood to be cut',
      async () => {
        const res = await stack.api(`/api/instances/${forged.instance_id}/logs`);
        return ((await res.json()) as { logs: string }).logs.includes('line(s) left out here') || undefined;
      },
      120_000,
    );
    const inst = await getInstance(stack, forged.instance_id);
    expect(inst.warnings.filter((w) => w.property.startsWith('features['))).toEqual([]);
    expect(Object.keys(inst.lifecycle?.commands ?? {})).not.toContain('evilCommand');
    const grown = rss(provisioner.pid!) - before;
    expect(grown, `provisioner grew by ${Math.round(grown / 2 ** 20)} MiB`).toBeLessThan(64 * 2 ** 20);
    const redis = createRedis(components().redisUrl, 'hostile-test');
    try {
      const key = redisKeys.instanceLogs(forged.instance_id);
      expect(await redis.xlen(key)).toBeLessThan(2_500);
      expect(Number(await redis.call('MEMORY', 'USAGE', key))).toBeLessThan(4 * 2 ** 20);
    } finally {
      redis.disconnect();
    }
    // Still the owner's to delete.
    expect((await stack.api(`/api/instances/${forged.instance_id}`, { method: 'DELETE' })).status).toBe(202);
    await waitForStatus(stack, forged.instance_id, ['Deleted'], 60_000);
  }, 400_000);

  it('an instance that exits before its editor answers fails with its last lines, without a byte of Docker’s log framing', async () => {
    const run = randomBytes(4).toString('hex');
    // 40 characters and a newline each: Docker sends each line as a 41-byte frame, whose header
    // ends in 0x29 (")", printable) — the byte that used to end up in front of every line.
    const lines = [1, 2, 3].map((i) => `codebay-frame-check-${i}-${run}-`.padEnd(40, 'x'));
    // The launcher's own node runs this first (containerEnv reaches PID 1): three lines on stderr, exit 3.
    const script = `${lines.map((l) => `console.error(%22${l}%22)`).join(';')};process.exit(3)`;
    const dir = await mkdtemp(join(tmpdir(), 'codebay-exit-'));
    const file = join(dir, 'devcontainer.json');
    await writeFile(file, JSON.stringify({ image: 'debian:bookworm', containerEnv: { NODE_OPTIONS: `--import=data:text/javascript,${script}` } }));
    const inst = await createFromDevcontainer(stack, user, file);
    created.push(inst.instance_id);
    const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 300_000);
    expect(failed.phase).toBe('provision');
    expect(failed.error).toBe(`the instance exited (code 3) before the editor answered: ${lines.join(' | ')}`);
  });
});
