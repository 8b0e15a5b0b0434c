import { CodebayError } from '@codebay/contracts';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Header, c as tarCreate, type HeaderData } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectWorkspaceArchive, linkStaysInside, normaliseEntryPath, type WorkspaceLimits } from './workspace-archive.ts';

describe('normaliseEntryPath', () => {
  it.each([
    ['a/b', 'a/b'],
    ['./a/b', 'a/b'],
    ['././a', 'a'],
    ['.//a', 'a'],
    ['a/b/', 'a/b'],
    ['a//b', 'a/b'],
    ['a/./b', 'a/b'],
    ['.', ''],
    ['./', ''],
    ['.devcontainer/devcontainer.json', '.devcontainer/devcontainer.json'],
    ['./.devcontainer.json', '.devcontainer.json'],
    ['...', '...'],
    ['a..b/c', 'a..b/c'],
    ['..a', '..a'],
  ])('%j → %j', (raw, norm) => {
    expect(normaliseEntryPath(raw)).toBe(norm);
  });

  it.each([
    ['/etc/passwd', 'absolute'],
    ['/', 'the root'],
    ['C:\\Windows\\evil', 'a Windows drive'],
    ['c:/evil', 'a Windows drive with a slash'],
    ['..', 'the parent'],
    ['../evil', 'climbing out'],
    ['./../evil', 'climbing out after ./'],
    ['a/../../evil', 'climbing out from inside'],
    ['a/../b', 'any .. segment, even one that stays inside'],
    ['a/..', 'ending in ..'],
  ])('%j is refused (%s)', (raw) => {
    expect(normaliseEntryPath(raw)).toBeUndefined();
  });
});

describe('linkStaysInside', () => {
  it.each([
    ['symlink to a sibling', 'a/link', 'b', false],
    ['symlink up one level from a folder', 'a/link', '../b', false],
    ['symlink to the root itself', 'a/b/link', '../..', false],
    ['symlink to its own folder', 'link', '.', false],
    ['symlink through a folder and back', 'link', 'x/../y', false],
    ['hard link to a path from the root', 'deep/in/here', 'a/b', true],
  ] as const)('allows a %s', (_what, entry, target, hard) => {
    expect(linkStaysInside(entry, target, hard)).toBe(true);
  });

  it.each([
    ['symlink to the parent', 'link', '..', false],
    ['symlink climbing out', 'link', '../etc/passwd', false],
    ['symlink climbing out from a folder', 'a/link', '../../etc', false],
    ['absolute symlink', 'link', '/etc/passwd', false],
    ['symlink climbing out through a folder', 'link', 'x/../../y', false],
    ['hard link climbing out', 'x', '../outside', true],
    ['hard link read from the root, not the entry folder', 'a/x', '../b', true],
    ['absolute hard link', 'x', '/etc/shadow', true],
    ['hard link climbing out through a folder', 'x', 'a/../../b', true],
  ] as const)('refuses a %s', (_what, entry, target, hard) => {
    expect(linkStaysInside(entry, target, hard)).toBe(false);
  });
});

// ---------------------------------------------------------------------------

interface Raw extends HeaderData {
  data?: string | Buffer;
}

/** A tar made header by header (tar's own Header), so it can hold what no packer would write. */
function rawTar(entries: Raw[]): Buffer {
  const blocks: Buffer[] = [];
  for (const { data, ...h } of entries) {
    const body = typeof data === 'string' ? Buffer.from(data) : (data ?? Buffer.alloc(0));
    const header = new Header({ mode: 0o644, uid: 1000, gid: 1000, mtime: new Date(0), size: body.length, type: 'File', ...h });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (body.length > 0) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const CONFIG = '{ "image": "ubuntu:22.04" }';
const LIMITS: WorkspaceLimits = { maxEntries: 100, maxUnpackedBytes: 1024 * 1024 };

let dir: string;
let n = 0;

async function archive(contents: Buffer): Promise<string> {
  const file = join(dir, `ws-${n++}.tar.gz`);
  await writeFile(file, contents);
  return file;
}

const tgz = (entries: Raw[]) => archive(gzipSync(rawTar(entries)));
const withConfig = (...extra: Raw[]) =>
  tgz([{ path: '.devcontainer/', type: 'Directory', mode: 0o755 }, { path: '.devcontainer/devcontainer.json', data: CONFIG }, ...extra]);

async function refused(file: string, limits: WorkspaceLimits = LIMITS): Promise<CodebayError> {
  const err = await inspectWorkspaceArchive(file, limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CodebayError);
  return err as CodebayError;
}

describe('inspectWorkspaceArchive', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'codebay-ws-unit-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds .devcontainer/devcontainer.json in a tarball packed the usual way (tar -czf ws.tgz -C DIR .)', async () => {
    const src = join(dir, 'src');
    await mkdir(join(src, '.devcontainer'), { recursive: true });
    await mkdir(join(src, 'lib'));
    await writeFile(join(src, '.devcontainer', 'devcontainer.json'), CONFIG);
    await writeFile(join(src, 'lib', 'main.js'), 'console.log(1)\n');
    await writeFile(join(src, 'README.md'), 'hello\n');
    await symlink('lib/main.js', join(src, 'main.js'));
    const file = join(dir, 'packed.tar.gz');
    await tarCreate({ gzip: true, file, cwd: src, portable: true }, ['.']);
    const summary = await inspectWorkspaceArchive(file, LIMITS);
    expect(summary.configPath).toBe('.devcontainer/devcontainer.json');
    expect(summary.configText).toBe(CONFIG);
    expect(summary.entries).toBe(7); // ., .devcontainer/, its file, lib/, lib/main.js, README.md, main.js
    expect(summary.unpackedBytes).toBe(CONFIG.length + 'console.log(1)\n'.length + 'hello\n'.length);
  });

  it('finds a root .devcontainer.json', async () => {
    const summary = await inspectWorkspaceArchive(await tgz([{ path: '.devcontainer.json', data: CONFIG }]), LIMITS);
    expect(summary).toMatchObject({ configPath: '.devcontainer.json', configText: CONFIG, entries: 1 });
  });

  it('prefers .devcontainer/devcontainer.json over .devcontainer.json', async () => {
    const file = await tgz([
      { path: '.devcontainer.json', data: '{ "image": "root" }' },
      { path: './.devcontainer/devcontainer.json', data: '{ "image": "folder" }' },
    ]);
    expect(await inspectWorkspaceArchive(file, LIMITS)).toMatchObject({ configPath: '.devcontainer/devcontainer.json', configText: '{ "image": "folder" }' });
  });

  it('returns the config text as is, even when it is not valid JSON (the caller parses it)', async () => {
    const file = await tgz([{ path: '.devcontainer/devcontainer.json', data: '{ "image": ' }]);
    expect((await inspectWorkspaceArchive(file, LIMITS)).configText).toBe('{ "image": ');
  });

  it('accepts links that stay inside', async () => {
    const file = await withConfig(
      { path: 'lib/', type: 'Directory', mode: 0o755 },
      { path: 'lib/a.txt', data: 'a' },
      { path: 'lib/link', type: 'SymbolicLink', linkpath: '../README.md' },
      { path: 'hard', type: 'Link', linkpath: 'lib/a.txt' },
    );
    expect((await inspectWorkspaceArchive(file, LIMITS)).entries).toBe(6);
  });

  it('records a hard link as the regular file it becomes, with its target’s sha256 and executable bit', async () => {
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    const file = await withConfig(
      { path: 'bin/tool', data: '#!/bin/sh\necho 1\n', mode: 0o755 },
      { path: 'alias', type: 'Link', linkpath: './bin/tool', mode: 0o644 },
      // Unpacking unlinks a file with other links before replacing it: the link keeps the first bytes.
      { path: 'bin/tool', data: 'replaced\n', mode: 0o644 },
    );
    const files = (await inspectWorkspaceArchive(file, LIMITS)).files;
    expect(files.find((f) => f.path === 'alias')).toEqual({ path: 'alias', kind: 'file', sha256: sha('#!/bin/sh\necho 1\n'), executable: true });
    expect(files.find((f) => f.path === 'bin/tool')).toEqual({ path: 'bin/tool', kind: 'file', sha256: sha('replaced\n'), executable: false });
  });

  it.each([
    [
      'a later entry',
      [
        { path: 'early', type: 'Link', linkpath: 'late' },
        { path: 'late', data: 'x' },
      ],
    ],
    ['a path not in the archive', [{ path: 'hard', type: 'Link', linkpath: 'missing' }]],
    [
      'a symlink',
      [
        { path: 'sym', type: 'SymbolicLink', linkpath: '.devcontainer/devcontainer.json' },
        { path: 'hard', type: 'Link', linkpath: 'sym' },
      ],
    ],
    ['a folder', [{ path: 'hard', type: 'Link', linkpath: '.devcontainer' }]],
    [
      'itself',
      [
        { path: 'hard', data: 'x' },
        { path: 'hard', type: 'Link', linkpath: 'hard' },
      ],
    ],
  ] as Array<[string, Raw[]]>)('refuses a hard link to %s (unsafe_archive)', async (_what, entries) => {
    const err = await refused(await withConfig(...entries));
    expect(err.status).toBe(400);
    expect(err.code).toBe('unsafe_archive');
    expect(err.message).toMatch(/^workspace hard link ".*" -> ".*" does not name an earlier file entry$/);
  });

  it('refuses a config that is a hard link (invalid_workspace)', async () => {
    const err = await refused(
      await tgz([
        { path: 'other.json', data: CONFIG },
        { path: '.devcontainer.json', type: 'Link', linkpath: 'other.json' },
      ]),
    );
    expect(err.code).toBe('invalid_workspace');
  });

  it('accepts an uncompressed tar too', async () => {
    const file = await archive(rawTar([{ path: '.devcontainer.json', data: CONFIG }]));
    expect((await inspectWorkspaceArchive(file, LIMITS)).configPath).toBe('.devcontainer.json');
  });

  it.each([
    ['a ../ path', { path: '../evil', data: 'x' }],
    ['an inner ../ path', { path: 'a/../../evil', data: 'x' }],
    ['an absolute path', { path: '/etc/cron.d/evil', data: 'x' }],
    ['a symlink out of the root', { path: 'link', type: 'SymbolicLink', linkpath: '../../etc/passwd' }],
    ['an absolute symlink', { path: 'link', type: 'SymbolicLink', linkpath: '/etc/passwd' }],
    ['a hard link out of the root', { path: 'hard', type: 'Link', linkpath: '../outside' }],
    ['a character device', { path: 'null', type: 'CharacterDevice' }],
    ['a block device', { path: 'sda', type: 'BlockDevice' }],
    ['a fifo', { path: 'pipe', type: 'FIFO' }],
  ] as Array<[string, Raw]>)('refuses %s (unsafe_archive)', async (_what, entry) => {
    const err = await refused(await withConfig(entry));
    expect(err.status).toBe(400);
    expect(err.code).toBe('unsafe_archive');
    expect(err.message).toContain(entry.path!);
  });

  it('names every unsafe entry of one upload, not only the first', async () => {
    const err = await refused(
      await withConfig(
        { path: '../evil', data: 'x' },
        { path: 'ok.txt', data: 'fine' },
        { path: 'link', type: 'SymbolicLink', linkpath: '/etc/passwd' },
        { path: 'pipe', type: 'FIFO' },
      ),
    );
    expect(err.code).toBe('unsafe_archive');
    expect(err.message).toBe(
      '3 unsafe workspace entries: workspace entry "../evil" would land outside the workspace; workspace link "link" points outside the workspace; workspace entry "pipe" is a FIFO, which is not allowed',
    );
    expect(err.details).toEqual({
      problems: [
        'workspace entry "../evil" would land outside the workspace',
        'workspace link "link" points outside the workspace',
        'workspace entry "pipe" is a FIFO, which is not allowed',
      ],
      count: 3,
    });
  });

  it('lists the first 20 unsafe entries and counts the rest', async () => {
    const err = await refused(await withConfig(...Array.from({ length: 25 }, (_, i): Raw => ({ path: `../evil-${i}`, data: 'x' }))));
    const details = err.details as { problems: string[]; count: number };
    expect(details.count).toBe(25);
    expect(details.problems).toHaveLength(20);
    expect(details.problems[19]).toContain('../evil-19');
    expect(err.message).toMatch(/^25 unsafe workspace entries: .*"\.\.\/evil-19".*; and 5 more$/);
    expect(err.message).not.toContain('evil-20');
  });

  it('refuses a ../ path hidden in a pax header', async () => {
    const pax = ' path=../paxevil\n';
    const record = `${pax.length + 2}${pax}`;
    const err = await refused(await withConfig({ path: 'PaxHeader/x', type: 'ExtendedHeader', data: record }, { path: 'innocent', data: 'x' }));
    expect(err.code).toBe('unsafe_archive');
    expect(err.message).toContain('../paxevil');
  });

  it('refuses a workspace without a devcontainer config', async () => {
    const err = await refused(
      await tgz([
        { path: 'README.md', data: 'hi' },
        { path: '.devcontainer/', type: 'Directory', mode: 0o755 },
      ]),
    );
    expect(err.status).toBe(400);
    expect(err.code).toBe('missing_devcontainer');
  });

  it('refuses a config that is a symlink', async () => {
    const err = await refused(
      await tgz([
        { path: '.devcontainer/other.json', data: CONFIG },
        { path: '.devcontainer/devcontainer.json', type: 'SymbolicLink', linkpath: 'other.json' },
      ]),
    );
    expect(err.code).toBe('invalid_workspace');
  });

  it('refuses a config larger than 1 MiB', async () => {
    const big = `{ "image": "ubuntu", "name": "${'x'.repeat(1024 * 1024)}" }`;
    const err = await refused(await tgz([{ path: '.devcontainer.json', data: big }]), { maxEntries: 10, maxUnpackedBytes: 4 * 1024 * 1024 });
    expect(err.status).toBe(413);
    expect(err.code).toBe('payload_too_large');
  });

  it.each([
    ['text that is not an archive', () => archive(Buffer.from('not a tarball\n'.repeat(100)))],
    ['a gzip of text', () => archive(gzipSync(Buffer.from('just text\n'.repeat(100))))],
    ['a truncated gzip', async () => archive(gzipSync(rawTar([{ path: '.devcontainer.json', data: CONFIG }])).subarray(0, 40))],
    ['an empty file', () => archive(Buffer.alloc(0))],
    ['an empty tar', () => archive(gzipSync(Buffer.alloc(1024)))],
  ])('refuses %s (invalid_archive)', async (_what, make) => {
    const err = await refused(await make());
    expect(err.status).toBe(400);
    expect(err.code).toBe('invalid_archive');
  });

  it('stops at maxUnpackedBytes (a gzip bomb)', async () => {
    const file = await withConfig({ path: 'zeros.bin', data: Buffer.alloc(2 * 1024 * 1024) });
    const err = await refused(file);
    expect(err.status).toBe(413);
    expect(err.message).toBe(`workspace unpacks to more than ${LIMITS.maxUnpackedBytes} bytes`);
  });

  it('counts the sum of all entries against maxUnpackedBytes', async () => {
    const files = Array.from({ length: 20 }, (_, i): Raw => ({ path: `f${i}`, data: Buffer.alloc(64 * 1024) }));
    expect((await refused(await withConfig(...files))).status).toBe(413);
  });

  it('accepts exactly maxUnpackedBytes', async () => {
    const file = await tgz([
      { path: '.devcontainer.json', data: CONFIG },
      { path: 'fill', data: Buffer.alloc(1000 - CONFIG.length) },
    ]);
    expect((await inspectWorkspaceArchive(file, { maxEntries: 10, maxUnpackedBytes: 1000 })).unpackedBytes).toBe(1000);
    expect((await refused(file, { maxEntries: 10, maxUnpackedBytes: 999 })).status).toBe(413);
  });

  it('stops at maxEntries', async () => {
    const files = Array.from({ length: 9 }, (_, i): Raw => ({ path: `f${i}`, data: 'x' }));
    const file = await withConfig(...files); // 11 entries
    expect((await inspectWorkspaceArchive(file, { maxEntries: 11, maxUnpackedBytes: 1024 })).entries).toBe(11);
    const err = await refused(file, { maxEntries: 10, maxUnpackedBytes: 1024 });
    expect(err.status).toBe(413);
    expect(err.message).toBe('workspace has more than 10 entries');
  });
});
