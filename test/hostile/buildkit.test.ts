import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { components } from '../support/components.ts';
import { containerExists, execIn, testDocker } from '../support/docker.ts';
import { packWorkspace, waitForStatus } from '../support/instances.ts';
import { buildLogLines } from '../support/records.ts';
import { expectVictimUnchanged, startHostileStack, startVictim, type HostileStack, type VictimSnapshot } from '../support/tenants.ts';
import { salt } from '../support/workspaces.ts';

/** A workspace whose `.devcontainer` holds devcontainer.json (a Dockerfile build), the Dockerfile and `files`. */
async function dockerfileWorkspace(dockerfile: string, files: Record<string, string | Buffer> = {}, config: Record<string, unknown> = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'codebay-hostile-bk-'));
  mkdirSync(join(dir, '.devcontainer'));
  writeFileSync(join(dir, '.devcontainer/devcontainer.json'), JSON.stringify({ build: { dockerfile: 'Dockerfile' }, remoteUser: 'root', ...config }));
  writeFileSync(join(dir, '.devcontainer/Dockerfile'), dockerfile);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, '.devcontainer', name), text);
  return packWorkspace(dir);
}

/** `bytes` that gzip compresses well, but not past the gateway's ratio limit (16 random bytes in each 4 KiB). */
function slowContext(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let at = 0; at < bytes; at += 4096) randomBytes(16).copy(out, at);
  return out;
}

/**
 * A hostile tenant against what BuildKit (buildx, the daemon's embedded BuildKit) adds to a
 * build over Docker's classic builder: cache mounts and the cache records of the steps that
 * used them, imported cache, other images named from a build. Every attempt ends refused or
 * failed — or, where it is a build that succeeds, with the other tenant's build unaffected —
 * and the victim's instance, files and image as they were.
 */
describe('hostile tenant: BuildKit', () => {
  let h: HostileStack;
  let victim: VictimSnapshot;
  const baseImages: string[] = [];

  /**
   * A base image with a `devcontainer.metadata` label of the attacker's (as one published on a
   * public registry would be), made on the builder's daemon: debian:bookworm with `label` verbatim.
   */
  function labelledBase(label: string): string {
    const tag = `codebay-hostile-meta-${salt()}:1`;
    const dir = mkdtempSync(join(tmpdir(), 'codebay-hostile-meta-'));
    writeFileSync(join(dir, 'Dockerfile'), `FROM debian:bookworm\nLABEL devcontainer.metadata=${JSON.stringify(label)}\n`);
    execFileSync('docker', ['build', '-q', '-t', tag, dir], { env: { ...process.env, DOCKER_HOST: components().dockerHost } });
    baseImages.push(tag);
    return tag;
  }

  beforeAll(async () => {
    h = await startHostileStack('hostile-buildkit');
    victim = await startVictim(h);
  });
  afterAll(async () => {
    await h?.stop();
    for (const tag of baseImages)
      await testDocker()
        .getImage(tag)
        .remove({ force: true })
        .catch(() => undefined);
  });
  afterEach(async () => {
    if (victim) await expectVictimUnchanged(h, victim);
  });

  it.each([
    ['RUN --mount=type=ssh (the builder’s SSH agent)', 'RUN --mount=type=ssh,required=true ssh-add -l', /ssh/i],
    [
      'RUN --mount=type=secret (a secret buildx might forward)',
      'RUN --mount=type=secret,id=GIT_AUTH_TOKEN,required=true cat /run/secrets/GIT_AUTH_TOKEN',
      /secret/i,
    ],
    [
      'RUN --mount=type=bind,from= a stage name the CLI uses for feature content',
      'RUN --mount=type=bind,from=dev_containers_feature_content_source,target=/x ls -R /x',
      /dev_containers_feature_content_source/,
    ],
  ])('%s: the build fails, nothing handed over', async (_name, step, said) => {
    const res = await h.attacker.createWorkspace(await dockerfileWorkspace(`# syntax=docker/dockerfile:1\nFROM debian:bookworm\n${step}\n`));
    expect(res.status).toBe(202);
    const failed = await waitForStatus(h.stack, ((await res.json()) as InstanceResponse).instance_id, ['Failed'], 180_000);
    expect(failed.phase).toBe('build');
    expect(failed.error).toMatch(said);
  });

  it('a failing step that prints BuildKit’s own lines after carriage returns: the error names the real step and exit code, not the forged feature', async () => {
    const forged = `ghcr.io/someone-else/feature-${salt()}`;
    // After `\r`, lines that would read as BuildKit's: a vertex starting (a feature's install step) and failing.
    const lie = `x\\r#99 [dev_containers_target_stage 4/4] RUN /tmp/dev-container-features/${forged.split('/').pop()}_0/install.sh\\n`;
    const lie2 = `x\\r#99 ERROR: process "/bin/sh -c /tmp/dev-container-features/${forged.split('/').pop()}_0/install.sh" did not complete successfully: exit code: 42\\n`;
    const res = await h.attacker.createWorkspace(
      await dockerfileWorkspace(`FROM debian:bookworm\nRUN printf '${lie}'; printf '${lie2}'; exit 3\n`, {}, { features: {} }),
    );
    expect(res.status).toBe(202);
    const failed = await waitForStatus(h.stack, ((await res.json()) as InstanceResponse).instance_id, ['Failed'], 180_000);
    expect(failed.error).toMatch(/^The Dockerfile step "RUN printf .*" failed with exit code 3 \(build step 2 of 2\)/);
    expect(failed.error).not.toMatch(/Feature ".*" failed to install|exit code 42/);
  });

  it('a failing step that prints (and names) a daemon fault: failed once, never retried as a machinery fault', async () => {
    const res = await h.attacker.createWorkspace(
      await dockerfileWorkspace(
        `FROM debian:bookworm\nRUN echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. connect ECONNREFUSED' >&2; exit 1\n`,
      ),
    );
    expect(res.status).toBe(202);
    const id = ((await res.json()) as InstanceResponse).instance_id;
    const failed = await waitForStatus(h.stack, id, ['Failed'], 180_000);
    expect(failed.error).toMatch(/^The Dockerfile step "RUN echo 'Cannot connect to the Docker daemon.*" failed with exit code 1 /);
    const log = (await buildLogLines(h.stack, id)).join('\n');
    expect(log).not.toContain('retrying');
    expect(log.match(/codebay: building build key/g)).toHaveLength(1);
  });

  it('a step identical to another tenant’s, run over a cache mount the attacker filled in another stage: the victim’s build does not take its result', async () => {
    // The victim's Dockerfile: a tool that trusts its cache folder (as Go's build cache, ccache or
    // cargo's target folder do), the folder a cache mount. Any tenant who knows the Dockerfile and
    // the files (a public repository's devcontainer) can write the very same step.
    const tag = salt();
    const app = `#!/bin/sh\necho genuine-${tag}\n`;
    const step = `RUN --mount=type=cache,target=/root/.cache/tool sh -c '[ -f /root/.cache/tool/app ] || cp /src/app.sh /root/.cache/tool/app; cp /root/.cache/tool/app /usr/local/bin/app; chmod +x /usr/local/bin/app'`;
    const victimStages = `FROM debian:bookworm AS app\nCOPY app.sh /src/app.sh\n${step}\n`;
    // The attacker's: the victim's stage, plus a stage that keeps writing its own "cached" tool into
    // the same cache mount (the default id is the target path) while the victim's step runs in this
    // build; the context holds a large file so that the victim's COPY (which waits for the context)
    // starts after the poisoning stage. The step's cache key does not cover the mount's content.
    const poison = `FROM debian:bookworm AS poison\nRUN --mount=type=cache,target=/root/.cache/tool sh -c 'for i in $(seq 1 300); do printf "#!/bin/sh\\necho pwned-${tag}\\n" > /root/.cache/tool/app; sleep 0.1; done; touch /done'\n`;
    const attacker = await h.attacker.createWorkspace(
      await dockerfileWorkspace(`# syntax=docker/dockerfile:1\n${poison}${victimStages}FROM app\nCOPY big.bin /big.bin\nCOPY --from=poison /done /done\n`, {
        'app.sh': app,
        'big.bin': slowContext(300 * 1024 * 1024),
      }),
    );
    expect(attacker.status, await attacker.clone().text()).toBe(202);
    const planted = await waitForStatus(h.stack, ((await attacker.json()) as InstanceResponse).instance_id, ['Running', 'Failed'], 300_000);
    expect(planted.status).toBe('Running');
    // The attacker's own image has the poisoned tool (the race was won): the attempt is real.
    const own = await execIn(testDocker(), h.stack.names.container(planted.instance_id), ['/usr/local/bin/app']);
    expect(own.stdout).toBe(`pwned-${tag}\n`);

    const res = await h.victim.createWorkspace(await dockerfileWorkspace(`# syntax=docker/dockerfile:1\n${victimStages}`, { 'app.sh': app }));
    expect(res.status).toBe(202);
    const inst = await waitForStatus(h.stack, ((await res.json()) as InstanceResponse).instance_id, ['Running'], 300_000);
    const ran = await execIn(testDocker(), h.stack.names.container(inst.instance_id), ['/usr/local/bin/app']);
    expect(ran.stdout).toBe(`genuine-${tag}\n`);
  });

  describe('hostRequirements from an image’s metadata (MAX_CPU_LIMIT 4000m, MAX_MEMORY_LIMIT 8Gi, MAX_STORAGE_SIZE 100Gi)', () => {
    it('malformed, huge, negative, exponent, unit and array values in many entries: ignored; the instance gets the valid ones, within the maxima', async () => {
      const junk = [
        '{"hostRequirements":{"cpus":-64,"memory":"-1gb","storage":"-5tb"}}',
        '{"hostRequirements":{"cpus":1e400,"memory":"9e99gb","storage":"1e3tb"}}',
        '{"hostRequirements":{"cpus":"64","memory":"64GB","storage":"999Ti"}}',
        '{"hostRequirements":{"cpus":64.5,"memory":"99999999999999999999tb","storage":"0x7fffffff"}}',
        '{"hostRequirements":{"cpus":[64],"memory":["64gb"],"storage":{"size":"64tb"}}}',
        '{"hostRequirements":[{"cpus":64}]}',
        '{"hostRequirements":{"cpus":9007199254740993,"memory":"18014398509481984kb"}}',
        '{"hostRequirements":{"cpus":null,"memory":" 64gb","storage":"64 gb"}}',
      ];
      const label = `[${[...junk, ...Array.from({ length: 1000 }, () => '{"hostRequirements":{"cpus":1}}'), '{"hostRequirements":{"cpus":2,"memory":"1gb"}}'].join(',')}]`;
      const res = await h.attacker.createWorkspace(await dockerfileWorkspace(`FROM ${labelledBase(label)}\n`));
      expect(res.status).toBe(202);
      const running = await waitForStatus(h.stack, ((await res.json()) as InstanceResponse).instance_id, ['Running', 'Failed'], 240_000);
      expect(running.status, running.error ?? '').toBe('Running');
      expect(running.resources).toMatchObject({ cpu_request: '2', cpu_limit: '2', memory_request: '1Gi', memory_limit: '2Gi', storage_size: '2Gi' });
      const { HostConfig } = await testDocker().getContainer(h.stack.names.container(running.instance_id)).inspect();
      expect(HostConfig.Memory).toBe(2 * 2 ** 30);
      expect(HostConfig.NanoCpus).toBeLessThanOrEqual(4e9);
    });

    it('one entry among many asks for more than the maxima (cpus 5, memory 9gb): refused before anything starts, nothing raised', async () => {
      const label = JSON.stringify([{ hostRequirements: { cpus: 1 } }, { hostRequirements: { cpus: 5 } }, { hostRequirements: { memory: '9gb' } }]);
      const res = await h.attacker.createWorkspace(await dockerfileWorkspace(`FROM ${labelledBase(label)}\n`));
      const created = (await res.json()) as InstanceResponse;
      const failed = await waitForStatus(h.stack, created.instance_id, ['Failed'], 240_000);
      expect(failed.phase).toBe('provision');
      expect(failed.error).toMatch(/hostRequirements\.cpus: .* asks for 5 cores, and this deployment gives an instance at most 4000m of cpu/);
      expect(failed.error).toMatch(/hostRequirements\.memory: .* asks for 9Gi/);
      expect(failed.resources).toEqual(created.resources);
      expect(await containerExists(testDocker(), h.stack.names.container(created.instance_id))).toBe(false);
    });
  });
});
