import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execIn, testDocker } from '../support/docker.ts';
import { packWorkspace, waitForStatus } from '../support/instances.ts';
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

  beforeAll(async () => {
    h = await startHostileStack('hostile-buildkit');
    victim = await startVictim(h);
  });
  afterAll(async () => {
    await h?.stop();
  });
  afterEach(async () => {
    if (victim) await expectVictimUnchanged(h, victim);
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
});
