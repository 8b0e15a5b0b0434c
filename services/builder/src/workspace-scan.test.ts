import { PermanentError } from '@codebay/contracts';
import { buildKey, checkBuildPaths, WorkspaceTree, type WorkspaceFile } from '@codebay/devcontainer';
import { inspectWorkspaceArchive } from '@codebay/platform';
import { chmod, link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { c as tarCreate, t as tarList, x as tarExtract, Header, type HeaderData } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertInside, scanWorkspace } from './workspace-scan.ts';

const LIMITS = { maxEntries: 1000, maxUnpackedBytes: 1024 * 1024 };
const CONFIG_PATH = '.devcontainer/devcontainer.json';
const CONFIG = { build: { dockerfile: 'Dockerfile', context: '..' }, features: { './tool': {} } };

let dir: string;
let n = 0;
const fresh = async (name: string) => {
  const path = join(dir, `${name}-${n++}`);
  await mkdir(path, { recursive: true });
  return path;
};
const byPath = (files: WorkspaceFile[]) => [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

/** Unpacks as the builder does (BuildWorkspace.materialise). */
async function unpack(archive: string): Promise<string> {
  const out = await fresh('unpacked');
  await tarExtract({ file: archive, cwd: out, strict: true, preservePaths: false, noChmod: false });
  return out;
}

describe('scanWorkspace', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'codebay-scan-unit-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists an unpacked folder exactly as the archive inspector lists the archive, so both give one build key', async () => {
    const src = await fresh('src');
    await mkdir(join(src, '.devcontainer/tool'), { recursive: true });
    await mkdir(join(src, 'docker'));
    await mkdir(join(src, 'empty'));
    await writeFile(join(src, CONFIG_PATH), JSON.stringify(CONFIG));
    await writeFile(join(src, 'docker/Dockerfile'), 'FROM debian:bookworm\n');
    await symlink('../docker/Dockerfile', join(src, '.devcontainer/Dockerfile'));
    await writeFile(join(src, '.devcontainer/tool/install.sh'), '#!/bin/sh\necho tool\n');
    await chmod(join(src, '.devcontainer/tool/install.sh'), 0o755);
    await link(join(src, '.devcontainer/tool/install.sh'), join(src, 'install-copy.sh')); // a hard link
    await symlink('not/there', join(src, 'dangling'));
    await writeFile(join(src, 'README.md'), 'hello\n');
    const archive = join(dir, `ws-${n++}.tar.gz`);
    await tarCreate({ gzip: true, file: archive, cwd: src, portable: true }, ['.']);
    const types = new Map<string, string>();
    await tarList({ file: archive, onReadEntry: (e) => types.set(e.path, e.type) });
    expect([...types.values()].filter((t) => t === 'Link')).toHaveLength(1);

    const summary = await inspectWorkspaceArchive(archive, LIMITS);
    const onDisk = await scanWorkspace(await unpack(archive));
    expect(byPath(onDisk)).toEqual(byPath(summary.files));
    // The hard link went through the archive as a link and came out as a plain executable file.
    expect(onDisk.find((f) => f.path === 'install-copy.sh')).toMatchObject({ kind: 'file', executable: true });
    expect(onDisk.find((f) => f.path === 'dangling')).toEqual({ path: 'dangling', kind: 'symlink', linkTarget: 'not/there' });
    expect(onDisk.find((f) => f.path === 'empty')).toEqual({ path: 'empty', kind: 'dir' });

    const fromArchive = buildKey({ config: CONFIG, configPath: summary.configPath, files: summary.files });
    const fromDisk = buildKey({ config: CONFIG, configPath: CONFIG_PATH, files: onDisk });
    expect(fromDisk).toEqual(fromArchive);
    expect(fromDisk.inputs).toContain('install-copy.sh');
    expect(fromDisk.inputs).toContain('docker/Dockerfile');
    expect(() => checkBuildPaths(CONFIG, CONFIG_PATH, new WorkspaceTree(onDisk))).not.toThrow();
  });

  it('agrees with the inspector on a hard link whose target is replaced later in the archive', async () => {
    const entries: Array<HeaderData & { data?: string }> = [
      { path: '.devcontainer/devcontainer.json', data: JSON.stringify(CONFIG), mode: 0o644 },
      { path: '.devcontainer/tool/install.sh', data: '#!/bin/sh\necho 1\n', mode: 0o755 },
      { path: 'first.sh', type: 'Link', linkpath: '.devcontainer/tool/install.sh', mode: 0o644 },
      { path: '.devcontainer/tool/install.sh', data: '#!/bin/sh\necho 2\n', mode: 0o644 },
    ];
    const blocks: Buffer[] = [];
    for (const { data, ...h } of entries) {
      const body = Buffer.from(data ?? '');
      const block = Buffer.alloc(512);
      new Header({ uid: 1000, gid: 1000, mtime: new Date(0), size: body.length, type: 'File', ...h }).encode(block, 0);
      blocks.push(block);
      if (body.length > 0) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
    blocks.push(Buffer.alloc(1024));
    const archive = join(dir, `raw-${n++}.tar.gz`);
    await writeFile(archive, gzipSync(Buffer.concat(blocks)));

    const summary = await inspectWorkspaceArchive(archive, LIMITS);
    const onDisk = await scanWorkspace(await unpack(archive));
    // Folders implied by deeper entries have no entry in this archive, but are folders on disk.
    expect(byPath(onDisk.filter((f) => f.kind !== 'dir'))).toEqual(byPath(summary.files));
    expect(onDisk.find((f) => f.path === 'first.sh')).toMatchObject({ executable: true });
    expect(buildKey({ config: CONFIG, configPath: CONFIG_PATH, files: onDisk }).key).toBe(
      buildKey({ config: CONFIG, configPath: CONFIG_PATH, files: summary.files }).key,
    );
  });
});

describe('assertInside', () => {
  let ws: string;
  beforeAll(async () => {
    ws = await fresh('ws');
    await mkdir(join(ws, '.devcontainer'));
    await mkdir(join(ws, 'docker'));
    await writeFile(join(ws, 'docker/Dockerfile'), 'FROM x\n');
    await writeFile(join(dir, 'admin-token'), 'secret\n'); // beside the workspace
    await symlink('../docker/Dockerfile', join(ws, '.devcontainer/Dockerfile'));
    await symlink('../../admin-token', join(ws, '.devcontainer/token'));
    await symlink('/etc', join(ws, 'etc'));
    await symlink('loop', join(ws, 'loop'));
  });

  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => e,
    );

  it('returns the real path of what is inside, links followed', async () => {
    const real = await assertInside(ws, '.devcontainer/Dockerfile');
    expect(real.endsWith(join('docker', 'Dockerfile'))).toBe(true);
    expect(await assertInside(ws, '.')).toBe(await assertInside(ws, '.devcontainer/..'));
  });

  it.each([
    ['a relative link out', '.devcontainer/token'],
    ['an absolute link', 'etc/passwd'],
    ['.. above the root', '../admin-token'],
    ['an absolute path', '/etc/passwd'],
  ])('refuses %s, naming the path and not the host path it reached', async (_what, path) => {
    const err = await refusal(assertInside(ws, path, 'build.dockerfile'));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toBe(`build.dockerfile "${path}" leads outside the workspace`);
  });

  it('refuses what does not exist and link loops', async () => {
    expect(((await refusal(assertInside(ws, 'nothing/here'))) as Error).message).toBe('path "nothing/here" does not exist in the workspace');
    expect(((await refusal(assertInside(ws, 'loop'))) as Error).message).toBe('path "loop" goes through too many symbolic links');
  });
});
