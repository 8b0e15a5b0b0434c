import type { InstanceResponse } from '@codebay/contracts';
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseSourcePolicy, planBuild } from '@codebay/devcontainer';
import { RegistryClient, dockerFromHost, followProgress, inspectWorkspaceArchive } from '@codebay/platform';
import { components, pullLogin, pushLogin } from '../support/components.ts';
import { execIn, testDocker } from '../support/docker.ts';
import { packWorkspace, waitForStatus } from '../support/instances.ts';
import { freePort } from '../support/ports.ts';
import { buildLogLines } from '../support/records.ts';
import { expectVictimUnchanged, startHostileStack, startVictim, type HostileStack, type VictimSnapshot } from '../support/tenants.ts';
import { salt, workspaceTarball } from '../support/workspaces.ts';

/** An error answer: its status and `error.code`. */
async function refusal(res: Response): Promise<{ status: number; code: string; message: string; problems: string[] }> {
  const body = (await res.json()) as { error?: { code: string; message: string; details?: { problems?: unknown[] } } };
  const problems = (body.error?.details?.problems ?? []).map((p) => (typeof p === 'string' ? p : JSON.stringify(p)));
  return { status: res.status, code: body.error?.code ?? '', message: body.error?.message ?? '', problems };
}

/** A workspace folder written from a map of paths (strings are files, `{ link }` symlinks, `{ hardlink }` hard links). */
function workspaceDir(entries: Record<string, string | { link: string } | { hardlink: string }>): string {
  const dir = mkdtempSync(join(tmpdir(), 'codebay-hostile-ws-'));
  for (const [path, what] of Object.entries(entries)) {
    const full = join(dir, path);
    mkdirSync(join(full, '..'), { recursive: true });
    if (typeof what === 'string') writeFileSync(full, what);
    else if ('link' in what) symlinkSync(what.link, full);
    else linkSync(join(dir, what.hardlink), full);
  }
  return dir;
}

const dockerfileBuild = (extra: Record<string, unknown> = {}) => ({ build: { dockerfile: 'Dockerfile', ...extra } });

/**
 * A hostile tenant's uploads, each an attempt to make the builder's privileged tools (the
 * Dev Containers CLI, the builder's Docker daemon, its network) reach what is not theirs:
 * the builder's environment, the host's files and network, codebay's own services and
 * registry, another tenant's build. Every attempt must end in a clear 4xx or a build that
 * fails with a reason — and leave the other tenant's instance, files and image as they were.
 */
describe('hostile tenant: build inputs', () => {
  let h: HostileStack;
  let victim: VictimSnapshot;
  let blackhole: Server;
  let blackholePort: number;
  const held: Socket[] = [];
  const c = components();

  beforeAll(async () => {
    // A listed feature source that accepts connections and never answers.
    blackhole = createServer((s) => held.push(s));
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    blackholePort = (blackhole.address() as { port: number }).port;
    h = await startHostileStack('hostile-build', {
      FEATURE_SOURCES: `*,127.0.0.1:${blackholePort}`,
      FETCH_IDLE_TIMEOUT_SECONDS: '5',
      FETCH_CONNECT_TIMEOUT_SECONDS: '5',
    });
    victim = await startVictim(h);
  });
  afterAll(async () => {
    await h?.stop();
    for (const s of held) s.destroy();
    blackhole?.close();
  });
  afterEach(async () => {
    if (victim) await expectVictimUnchanged(h, victim);
  });

  describe('the builder’s environment (${localEnv} / ${env} substitution)', () => {
    it.each([
      ['containerEnv', { image: 'debian:bookworm', containerEnv: { X: '${localEnv:REDIS_URL}' } }, 'containerEnv.X'],
      ['remoteEnv (the ${env:} form)', { image: 'debian:bookworm', remoteEnv: { X: '${env:REGISTRY_PUSH_AUTH}' } }, 'remoteEnv.X'],
      [
        'a feature option',
        { image: 'debian:bookworm', features: { 'ghcr.io/devcontainers/features/common-utils:2': { username: '${localEnv:HOME}' } } },
        'features.',
      ],
      ['a lifecycle command', { image: 'debian:bookworm', postCreateCommand: 'echo ${localEnv:PATH}' }, 'postCreateCommand'],
      ['mounts', { image: 'debian:bookworm', mounts: ['source=${localEnv:HOME},target=/h,type=bind'] }, 'mounts[0]'],
      ['a default value', { image: 'debian:bookworm', containerEnv: { X: '${localEnv:CODEBAY_SECRET_KEY:none}' } }, 'containerEnv.X'],
    ])('%s naming a builder variable: 422 naming the property', async (_what, config, property) => {
      const r = await refusal(await h.attacker.createDevcontainer(config));
      expect(r.status).toBe(422);
      expect(r.code).toBe('forbidden_by_policy');
      expect(r.message).toContain('BUILD_LOCAL_ENV_ALLOWLIST');
      expect(r.message).toContain(`devcontainer.json: ${property}`);
    });

    it('build.args naming a builder variable (the admin token): 422 naming the property', async () => {
      const config = dockerfileBuild({ args: { X: '${localEnv:CODEBAY_ADMIN_TOKEN}' } });
      const r = await refusal(await h.attacker.createWorkspace(await workspaceTarball({ config, dockerfile: 'FROM debian:bookworm\nARG X\n' })));
      expect(r.status).toBe(422);
      expect(r.code).toBe('forbidden_by_policy');
      expect(r.message).toContain('devcontainer.json: build.args.X: ${localEnv:CODEBAY_ADMIN_TOKEN}');
    });

    it('the image name built from a builder variable: 422', async () => {
      const r = await refusal(await h.attacker.createDevcontainer({ image: 'debian:${localEnv:CODEBAY_SECRET_KEY:bookworm}' }));
      expect(r.status).toBe(422);
    });
  });

  describe('flags handed to docker build (build.options)', () => {
    it.each([
      ['--network=host'],
      ['--network', 'host'],
      ['--iidfile=/tmp/codebay-hostile-iid'],
      ['--add-host=registry:127.0.0.1'],
      ['--build-arg', 'X=y'],
      ['--secret', 'id=x,src=/var/lib/codebay/admin-token'],
      ['-f', '/etc/passwd'],
      ['--output=type=local,dest=/'],
    ])('build.options %j: 422, nothing reaches the daemon', async (...options) => {
      const r = await refusal(
        await h.attacker.createWorkspace(await workspaceTarball({ config: dockerfileBuild({ options }), dockerfile: 'FROM debian:bookworm\n' })),
      );
      expect(r.status).toBe(422);
      expect(r.code).toBe('forbidden_by_policy');
      expect(r.message).toContain('build.options[0]');
      expect(existsSync('/tmp/codebay-hostile-iid')).toBe(false);
    });
  });

  describe('paths that leave the workspace', () => {
    const cases: [string, Record<string, string | { link: string } | { hardlink: string }>, number, string][] = [
      [
        'build.context climbing to the artifact store',
        {
          '.devcontainer/devcontainer.json': JSON.stringify(dockerfileBuild({ context: '../../../../artifacts' })),
          '.devcontainer/Dockerfile': 'FROM debian:bookworm\n',
        },
        422,
        'unsafe_path',
      ],
      [
        'build.dockerfile climbing to the admin token',
        { '.devcontainer/devcontainer.json': JSON.stringify({ build: { dockerfile: '../../../../admin-token' } }) },
        422,
        'unsafe_path',
      ],
      ['an absolute build.dockerfile', { '.devcontainer/devcontainer.json': JSON.stringify({ build: { dockerfile: '/etc/passwd' } }) }, 422, 'unsafe_path'],
      [
        'an absolute build.context',
        { '.devcontainer/devcontainer.json': JSON.stringify(dockerfileBuild({ context: '/' })), '.devcontainer/Dockerfile': 'FROM debian:bookworm\n' },
        422,
        'unsafe_path',
      ],
      [
        'a local feature outside .devcontainer',
        { '.devcontainer/devcontainer.json': JSON.stringify({ image: 'debian:bookworm', features: { '../../etc': {} } }) },
        422,
        'invalid_feature',
      ],
      [
        'a .devcontainer that is a link to another folder',
        { 'other/devcontainer.json': JSON.stringify({ image: 'debian:bookworm' }), '.devcontainer': { link: 'other' } },
        400,
        'missing_devcontainer',
      ],
      [
        'a chain of links that resolves to /',
        {
          '.devcontainer/devcontainer.json': JSON.stringify(dockerfileBuild({ context: 'l5' })),
          '.devcontainer/Dockerfile': 'FROM debian:bookworm\n',
          '.devcontainer/l1': { link: '.' },
          '.devcontainer/l2': { link: 'l1/..' },
          '.devcontainer/l3': { link: 'l2/..' },
          '.devcontainer/l4': { link: 'l3/..' },
          '.devcontainer/l5': { link: 'l4/..' },
        },
        400,
        'unsafe_archive',
      ],
      [
        'a Dockerfile that is a link to a host file',
        { '.devcontainer/devcontainer.json': JSON.stringify(dockerfileBuild()), '.devcontainer/Dockerfile': { link: '/var/lib/codebay/admin-token' } },
        400,
        'unsafe_archive',
      ],
      [
        'a context folder that is a link out of the workspace',
        {
          '.devcontainer/devcontainer.json': JSON.stringify(dockerfileBuild({ context: 'ctx' })),
          '.devcontainer/Dockerfile': 'FROM debian:bookworm\n',
          '.devcontainer/ctx': { link: '../../../..' },
        },
        400,
        'unsafe_archive',
      ],
      [
        'a local feature that is a link out of the workspace',
        { '.devcontainer/devcontainer.json': JSON.stringify({ image: 'debian:bookworm', features: { './feat': {} } }), '.devcontainer/feat': { link: '/etc' } },
        400,
        'unsafe_archive',
      ],
    ];
    it.each(cases)('%s: refused, nothing built', async (_what, entries, status, code) => {
      const r = await refusal(await h.attacker.createWorkspace(await packWorkspace(workspaceDir(entries))));
      expect(r.status).toBe(status);
      expect(r.code).toBe(code);
    });

    it('an archive entry under a link (extraction order would decide what is built): 400', async () => {
      // An archive no folder can produce: `lnk -> /tmp` first, then `lnk/x` appended from elsewhere.
      const a = workspaceDir({ '.devcontainer/devcontainer.json': JSON.stringify({ image: 'debian:bookworm' }), lnk: { link: '/tmp' } });
      const b = workspaceDir({ 'lnk/x': 'written through the link' });
      const out = join(mkdtempSync(join(tmpdir(), 'codebay-hostile-tar-')), 'ws.tar');
      execFileSync('tar', ['-cf', out, '-C', a, '.devcontainer', 'lnk']);
      execFileSync('tar', ['-rf', out, '-C', b, 'lnk/x']);
      execFileSync('gzip', [out]);
      const r = await refusal(await h.attacker.createWorkspace(`${out}.gz`));
      expect(r.status).toBe(400);
      expect(r.code).toBe('unsafe_archive');
    });
  });

  describe('codebay’s own registry and build cache', () => {
    it.each([
      ['base_image in the pull registry', `${c.registry}/codebay-devcontainer:family-0123456789abcdef`],
      ['base_image by digest', `${c.registry}/codebay-devcontainer@${'sha256:'.padEnd(71, 'a')}`],
      ['base_image in the push registry', `${c.registryPush}/codebay-devcontainer:latest`],
      ['base_image by 127.0.0.1', c.registry.replace('localhost', '127.0.0.1') + '/codebay-devcontainer:x'],
    ])('%s: 422', async (_what, image) => {
      const r = await refusal(await h.attacker.createSimple({ base_image: image }));
      expect(r.status).toBe(422);
      expect(r.code).toBe('forbidden_by_policy');
    });

    it('devcontainer.json image naming codebay’s registry: 422', async () => {
      const r = await refusal(await h.attacker.createDevcontainer({ image: `${c.registry}/codebay-devcontainer:family-0123456789abcdef` }));
      expect(r.status).toBe(422);
      expect(r.message).toContain('devcontainer.json: image');
    });

    it('build.cacheFrom naming codebay’s registry: 422', async () => {
      const config = { build: { dockerfile: 'Dockerfile', cacheFrom: [`${c.registryPush}/codebay-devcontainer:x`] } };
      const r = await refusal(await h.attacker.createWorkspace(await workspaceTarball({ config, dockerfile: 'FROM debian:bookworm\n' })));
      expect(r.status).toBe(422);
      expect(r.message).toContain('build.cacheFrom[0]');
    });
  });

  describe('fetches: loopback, link-local, private, and a source that never answers', () => {
    it.each([
      ['a feature on the builder’s loopback', { 'localhost:18999/x/y:1': {} }],
      ['a feature on the Redis port', { [`127.0.0.1:${new URL(c.redisUrl).port}/x/y:1`]: {} }],
      ['a feature on link-local metadata', { '169.254.169.254/x/y:1': {} }],
      ['a feature on a private address', { '10.0.0.1:5000/x/y:1': {} }],
      ['a feature tarball on loopback', { 'https://127.0.0.1:6380/feature.tgz': {} }],
    ])('%s: 422 naming FEATURE_SOURCES', async (_what, features) => {
      const r = await refusal(await h.attacker.createDevcontainer({ image: 'debian:bookworm', features }));
      expect(r.status).toBe(422);
      expect(r.message).toContain('FEATURE_SOURCES');
    });

    it.each([['localhost:6380/x:1'], ['169.254.169.254/x:1'], ['127.0.0.1:32001/codebay-devcontainer:x']])('image %s: 422', async (image) => {
      const r = await refusal(await h.attacker.createDevcontainer({ image }));
      expect(r.status).toBe(422);
    });

    it('a listed source that accepts and never answers: the build fails within the fetch timeout, naming it, and the builder takes the next build', async () => {
      const res = await h.attacker.createDevcontainer({ image: 'debian:bookworm', features: { [`127.0.0.1:${blackholePort}/x/y:1`]: {} } });
      expect(res.status).toBe(202);
      const inst = (await res.json()) as InstanceResponse;
      const t0 = Date.now();
      const failed = await waitForStatus(h.stack, inst.instance_id, ['Failed'], 120_000);
      expect(Date.now() - t0).toBeLessThan(90_000);
      expect(failed.error).toContain(`127.0.0.1:${blackholePort}`);
      expect(failed.error).toMatch(/timed out/);
      // The only builder is free again.
      const next = (await (await h.attacker.createDevcontainer({ image: 'debian:bookworm', containerEnv: { RUN: salt() } })).json()) as InstanceResponse;
      await waitForStatus(h.stack, next.instance_id, ['Built', 'Provisioning', 'Running'], 120_000);
    });
  });

  describe('the build cache serves only what a builder built and recorded', () => {
    const repo = () => `${c.registryPush}/codebay-devcontainer`;
    /** Pushes an image whose /opt/state says `poisoned` under `repo:tag`, from the second daemon (the builder's daemon stays untouched), as someone holding the push credentials would. */
    async function pushPoison(tag: string): Promise<string> {
      const docker = dockerFromHost(c.dockerHost2);
      await followProgress(docker, await docker.pull('debian:bookworm'));
      const box = await docker.createContainer({
        Image: 'debian:bookworm',
        Entrypoint: ['sh', '-c', 'mkdir -p /opt/victim && echo poisoned > /opt/state && echo poisoned > /opt/victim/secret.txt'],
      });
      await box.start();
      await box.wait();
      await box.commit({ repo: repo(), tag });
      await box.remove();
      let digest = '';
      await followProgress(docker, await docker.getImage(`${repo()}:${tag}`).push({ tag, authconfig: pushLogin(c) }), (e) => {
        if (e.aux?.Digest) digest = e.aux.Digest;
      });
      expect(digest).toMatch(/^sha256:/);
      return digest;
    }

    it('a build key’s tag overwritten behind the builder’s back: the identical request still gets the recorded digest, never the tag', async () => {
      const key = victim.instance.build!.key;
      const poisoned = await pushPoison(key);
      expect(poisoned).not.toBe(victim.recordedDigest);
      const registry = new RegistryClient(`http://${c.registry}`, { auth: pullLogin(c) });
      expect((await registry.image('codebay-devcontainer', key))?.digest).toBe(poisoned);
      const res = await h.victim.createWorkspace(victim.tarball);
      expect(res.status).toBe(202);
      const again = (await res.json()) as InstanceResponse;
      expect(again.build).toEqual({ key, cache: 'hit' });
      expect(again.devcontainer_image).toBe(victim.instance.devcontainer_image);
      await waitForStatus(h.stack, again.instance_id, ['Running'], 120_000);
      const files = await execIn(testDocker(), h.stack.names.container(again.instance_id), ['cat', '/opt/victim/secret.txt']);
      expect(files.stdout.trim()).toBe(victim.imageSecret);
      await h.victim.api(`/api/instances/${again.instance_id}`, { method: 'DELETE' });
    });

    it('an image pushed in advance under the key of a configuration someone will upload is never served: the upload is built', async () => {
      const dir = workspaceDir({
        '.devcontainer/devcontainer.json': JSON.stringify(dockerfileBuild()),
        '.devcontainer/Dockerfile': `FROM debian:bookworm\nRUN echo clean-${salt()} > /opt/state\n`,
      });
      const tarball = await packWorkspace(dir);
      // The key is computable offline from the inputs (it is a hash of them).
      const summary = await inspectWorkspaceArchive(tarball, { maxEntries: 1000, maxUnpackedBytes: 1e8 });
      const policy = { localEnv: [], platformRegistries: [c.registry, c.registryPush], sources: parseSourcePolicy(['*']) };
      const key = planBuild(summary, policy).key.key;
      await pushPoison(key);
      const res = await h.victim.createWorkspace(tarball);
      const inst = (await res.json()) as InstanceResponse;
      expect(inst.build).toEqual({ key, cache: 'miss' });
      await waitForStatus(h.stack, inst.instance_id, ['Running'], 180_000);
      const state = await execIn(testDocker(), h.stack.names.container(inst.instance_id), ['cat', '/opt/state']);
      expect(state.stdout.trim()).toMatch(/^clean-/);
      await h.victim.api(`/api/instances/${inst.instance_id}`, { method: 'DELETE' });
    });

    it.each([['the pull registry'], ['the push registry']])(
      'a Dockerfile FROM the victim’s layer-cache family in %s, tagged as anyone could compute it before (sha256 of the config): the build fails, nothing of the victim’s is read',
      async (which) => {
        const registry = which === 'the pull registry' ? c.registry : c.registryPush;
        // What the family tag used to be: the first 16 hex of the config's own hash, the same for everyone.
        const summary = await inspectWorkspaceArchive(victim.tarball, { maxEntries: 1000, maxUnpackedBytes: 1e8 });
        const policy = { localEnv: [], platformRegistries: [c.registry, c.registryPush], sources: parseSourcePolicy(['*']) };
        const family = planBuild(summary, policy).key.family;
        const res = await h.attacker.createWorkspace(
          await workspaceTarball({
            config: dockerfileBuild(),
            dockerfile: `FROM ${registry}/codebay-devcontainer:family-${family}\nRUN cat /opt/victim/secret.txt\n`,
          }),
        );
        expect(res.status).toBe(202);
        const inst = (await res.json()) as InstanceResponse;
        const failed = await waitForStatus(h.stack, inst.instance_id, ['Failed'], 180_000);
        expect(failed.error).toContain(`${registry}/codebay-devcontainer:family-${family}`);
        expect((await buildLogLines(h.stack, inst.instance_id)).join('\n')).not.toContain(victim.imageSecret);
      },
    );
  });

  describe('the builder’s daemon fetching for a build step (ADD <url>, FROM), from the host’s own network', () => {
    const targets = async (): Promise<[string, string][]> => {
      const info = await testDocker().getContainer(victim.containerId).inspect();
      const victimIp = Object.values(info.NetworkSettings.Networks)[0]!.IPAddress;
      return [
        ['the gateway on loopback', `http://127.0.0.1:${new URL(h.stack.url).port}/health`],
        ['the builder’s metrics', `http://127.0.0.1:${h.stack.ports.builder}/metrics`],
        ['Redis', `http://127.0.0.1:${new URL(c.redisUrl).port}/`],
        ['the victim’s editor by container IP', `http://${victimIp}:8080/healthz`],
        ['link-local metadata', 'http://169.254.169.254/latest/meta-data/'],
      ];
    };

    it('ADD of each platform address, the victim’s container and link-local metadata: the build fails, nothing fetched', async () => {
      for (const [what, url] of await targets()) {
        const res = await h.attacker.createWorkspace(
          await workspaceTarball({ config: dockerfileBuild(), dockerfile: `FROM debian:bookworm\nADD ${url} /loot\nRUN cat /loot\n` }),
        );
        expect(res.status, what).toBe(202);
        const inst = (await res.json()) as InstanceResponse;
        const failed = await waitForStatus(h.stack, inst.instance_id, ['Failed'], 120_000);
        // Refused by the host's rules for the daemon's own connections (a reject, at once).
        expect(failed.error, what).toMatch(
          new RegExp(`^The build failed at "${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": .*connect: connection refused\\. `),
        );
        const lines = (await buildLogLines(h.stack, inst.instance_id)).join('\n');
        expect(lines, what).not.toMatch(/"status":"ok"|codebay_|code-server|ami-id/);
      }
    });

    it('FROM an image on the Redis port: the pull fails, nothing reaches Redis', async () => {
      const res = await h.attacker.createWorkspace(
        await workspaceTarball({ config: dockerfileBuild(), dockerfile: `FROM 127.0.0.1:${new URL(c.redisUrl).port}/x:1\n` }),
      );
      const inst = (await res.json()) as InstanceResponse;
      const failed = await waitForStatus(h.stack, inst.instance_id, ['Failed'], 120_000);
      expect(failed.error).toContain(`127.0.0.1:${new URL(c.redisUrl).port}/x:1`);
      expect((await buildLogLines(h.stack, inst.instance_id)).join('\n')).toMatch(/connection refused/);
    });
  });

  describe('what the builder holds', () => {
    it('the builder process has neither the platform key nor the admin token: code run through it could not forge an editor secret or open the API', () => {
      const environ = readFileSync(`/proc/${h.stack.processes.get('builder')!.pid}/environ`, 'utf8').split('\0');
      const names = environ.map((e) => e.split('=', 1)[0]);
      expect(names).not.toContain('CODEBAY_SECRET_KEY');
      expect(names).not.toContain('CODEBAY_ADMIN_TOKEN');
      expect(environ.join('\n')).not.toContain(h.stack.env.CODEBAY_SECRET_KEY!);
      expect(environ.join('\n')).not.toContain(h.stack.adminToken);
      // Nor does the gateway hold the registry's push user.
      const gateway = readFileSync(`/proc/${h.stack.processes.get('gateway')!.pid}/environ`, 'utf8');
      expect(gateway).not.toContain(c.registryPushAuth);
    });
  });

  describe('the builder’s second look at what it builds', () => {
    it('a gateway configured more loosely than the builder: the builder refuses the build before the CLI runs, naming the setting', async () => {
      const port = await freePort();
      h.stack.ports['lax-gateway'] = port;
      await h.stack.startService('gateway', { as: 'lax-gateway', env: { GATEWAY_PORT: String(port), BUILD_LOCAL_ENV_ALLOWLIST: 'CODEBAY_ADMIN_TOKEN' } });
      try {
        const form = new FormData();
        form.set(
          'devcontainer_json',
          new Blob([JSON.stringify({ image: 'debian:bookworm', containerEnv: { X: '${localEnv:CODEBAY_ADMIN_TOKEN}' } })]),
          'devcontainer.json',
        );
        const res = await fetch(`http://127.0.0.1:${port}/api/instances/devcontainer`, {
          method: 'POST',
          body: form,
          headers: { authorization: `Bearer ${h.attacker.token}` },
        });
        expect(res.status).toBe(202);
        const inst = (await res.json()) as InstanceResponse;
        const failed = await waitForStatus(h.stack, inst.instance_id, ['Failed'], 120_000);
        expect(failed.error).toContain('BUILD_LOCAL_ENV_ALLOWLIST');
        const lines = (await buildLogLines(h.stack, inst.instance_id)).join('\n');
        expect(lines).not.toContain('@devcontainers/cli'); // the CLI's first line: it never ran
        for (const text of [failed.error ?? '', lines]) expect(text).not.toContain(h.stack.adminToken);
      } finally {
        await h.stack.stopService('lax-gateway');
      }
    });
  });

  describe('BuildKit’s own reach (RUN --mount, RUN --network, # syntax=)', () => {
    it('a cache mount another tenant’s build filled: the next build on the daemon finds it empty', async () => {
      const poison = `poison-${salt()}`;
      const cacheId = `codebay-shared-${salt()}`;
      const dockerfile = (run: string) => `# syntax=docker/dockerfile:1\nFROM debian:bookworm\nRUN --mount=type=cache,id=${cacheId},target=/cache ${run}\n`;
      const planted = await h.attacker.createWorkspace(
        await workspaceTarball({ config: dockerfileBuild(), dockerfile: dockerfile(`echo ${poison} > /cache/planted && echo planted`) }),
      );
      expect(planted.status).toBe(202);
      await waitForStatus(h.stack, ((await planted.json()) as InstanceResponse).instance_id, ['Running'], 240_000);
      // The victim's build names the same cache (ids are guessable: the default id is the target path).
      const res = await h.victim.createWorkspace(
        await workspaceTarball({
          config: dockerfileBuild(),
          dockerfile: dockerfile(`(cat /cache/planted 2>/dev/null || echo none) > /opt/seen-${salt()}; cp /opt/seen-* /opt/seen`),
        }),
      );
      expect(res.status).toBe(202);
      const inst = (await res.json()) as InstanceResponse;
      await waitForStatus(h.stack, inst.instance_id, ['Running'], 240_000);
      const seen = await execIn(testDocker(), h.stack.names.container(inst.instance_id), ['cat', '/opt/seen']);
      expect(seen.stdout).toBe('none\n');
    });

    it('RUN --network=host: the build fails (the entitlement is never granted), nothing reached', async () => {
      const res = await h.attacker.createWorkspace(
        await workspaceTarball({
          config: dockerfileBuild(),
          dockerfile: `# syntax=docker/dockerfile:1\nFROM debian:bookworm\nRUN --network=host echo on-the-host-network-${salt()}\n`,
        }),
      );
      const inst = (await res.json()) as InstanceResponse;
      const failed = await waitForStatus(h.stack, inst.instance_id, ['Failed'], 120_000);
      expect(failed.error).toMatch(/network\.host is not allowed/);
      expect((await buildLogLines(h.stack, inst.instance_id)).join('\n')).not.toMatch(/^#\d+ [\d.]+ on-the-host-network-/m);
    });

    it('# syntax= naming an image on the Redis port: the frontend’s pull fails, nothing reaches Redis', async () => {
      const ref = `127.0.0.1:${new URL(c.redisUrl).port}/frontend:1`;
      const res = await h.attacker.createWorkspace(
        await workspaceTarball({ config: dockerfileBuild(), dockerfile: `# syntax=${ref}\nFROM debian:bookworm\n` }),
      );
      const inst = (await res.json()) as InstanceResponse;
      const failed = await waitForStatus(h.stack, inst.instance_id, ['Failed'], 120_000);
      expect(failed.error).toContain(ref);
      expect((await buildLogLines(h.stack, inst.instance_id)).join('\n')).toMatch(/connection refused/);
    });
  });

  describe('secrets in output', () => {
    it('a build arg in a failing step never shows in the error, build-status or log, and no host path does', async () => {
      const secret = `s3cr3t-${salt()}`;
      const res = await h.attacker.createWorkspace(
        await workspaceTarball({
          config: dockerfileBuild({ args: { TOKEN: secret } }),
          dockerfile: 'FROM debian:bookworm\nARG TOKEN\nRUN echo "the token is $TOKEN" && echo "$TOKEN" >&2 && exit 7\n',
        }),
      );
      const inst = (await res.json()) as InstanceResponse;
      const failed = await waitForStatus(h.stack, inst.instance_id, ['Failed'], 120_000);
      const status = await (await h.attacker.api(`/api/instances/${inst.instance_id}/build-status`)).text();
      const lines = (await buildLogLines(h.stack, inst.instance_id)).join('\n');
      for (const text of [failed.error ?? '', status, lines]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(h.stack.env.CODEBAY_BUILD_DIR!);
        expect(text).not.toContain('/var/lib/codebay');
      }
      expect(lines).toContain('the token is ****');
    });
  });
});
