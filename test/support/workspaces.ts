import type { Docker } from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packWorkspace } from './instances.ts';

/** A workspace folder made by a test: `.devcontainer/devcontainer.json`, optional Dockerfile and local features. */
export interface WorkspaceSpec {
  config: Record<string, unknown>;
  dockerfile?: string;
  /**
   * Local features under `.devcontainer/<name>/`, each with the shell body of its install.sh, or
   * that and more of its devcontainer-feature.json (`installsAfter`, `dependsOn`, …).
   */
  features?: Record<string, string | { install: string; metadata: Record<string, unknown> }>;
}

/** Writes the workspace and packs it as tar.gz; returns the tarball's path. */
export async function workspaceTarball(spec: WorkspaceSpec): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'codebay-test-ws-'));
  mkdirSync(join(dir, '.devcontainer'));
  writeFileSync(join(dir, '.devcontainer/devcontainer.json'), JSON.stringify(spec.config, null, 2));
  if (spec.dockerfile) writeFileSync(join(dir, '.devcontainer/Dockerfile'), spec.dockerfile);
  for (const [name, feature] of Object.entries(spec.features ?? {})) {
    const { install, metadata } = typeof feature === 'string' ? { install: feature, metadata: {} } : feature;
    mkdirSync(join(dir, '.devcontainer', name));
    writeFileSync(join(dir, '.devcontainer', name, 'devcontainer-feature.json'), JSON.stringify({ id: name, version: '1.0.0', name, ...metadata }));
    writeFileSync(join(dir, '.devcontainer', name, 'install.sh'), `#!/bin/sh\nset -e\n${install}\n`, { mode: 0o755 });
  }
  return packWorkspace(dir);
}

export const salt = () => randomBytes(5).toString('hex');

/**
 * Writes a devcontainer.json of its own for a test — `body` over `image: debian:bookworm`, plus a
 * `containerEnv` entry no other run has (a build nobody made before) — and returns its path.
 */
export function uniqueConfigFile(body: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'codebay-test-config-')), 'devcontainer.json');
  const containerEnv = { CODEBAY_TEST_RUN: randomBytes(6).toString('hex'), ...(body.containerEnv as Record<string, string> | undefined) };
  writeFileSync(file, JSON.stringify({ image: 'debian:bookworm', ...body, containerEnv }, null, 2));
  return file;
}

/** Runs `cmd` in a throwaway container of `image` (pulled first) and returns its output. */
export async function runInImage(
  docker: Docker,
  image: string,
  cmd: string[],
  authconfig?: { username: string; password: string; serveraddress: string },
): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    docker.pull(image, { authconfig }, (err: Error | null, stream?: NodeJS.ReadableStream) => {
      if (err || !stream) return reject(err ?? new Error(`no pull stream for ${image}`));
      docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve()));
    });
  });
  const container = await docker.createContainer({ Image: image, Entrypoint: cmd, Cmd: [], HostConfig: { AutoRemove: false } });
  try {
    await container.start();
    await container.wait();
    const out = (await container.logs({ stdout: true, stderr: true })) as Buffer;
    return out.toString('utf8').replace(/[\x00-\x08\x0e-\x1f]/g, '');
  } finally {
    await container.remove({ force: true });
  }
}

/** Processes whose command line contains `needle` (the builder's CLI runs name their job folder). */
export function processesMatching(needle: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const state = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmd.includes(needle) && state !== 'Z' && Number(entry) !== process.pid) out.push({ pid: Number(entry), cmd });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * The processes of Dockerfile RUN steps whose command mentions `needle` (`<pid> /bin/sh -c …`).
 * BuildKit runs a step as a process of the daemon (runc), not as a container: on this machine
 * every test daemon's steps are the host's processes. Builders' daemons are told apart by the
 * markers the tests write into their steps.
 */
export function buildStepsRunning(needle: string): string[] {
  return processesMatching(needle)
    .filter((p) => p.cmd.startsWith('/bin/sh -c '))
    .map((p) => `${p.pid} ${p.cmd}`);
}
