import { CodebayError } from '@codebay/contracts';
import { describe, expect, it } from 'vitest';
import { checkWorkspaceLayout, MAX_LINK_HOPS, WorkspaceTree, type WorkspaceFile } from './workspace-tree.ts';

const file = (path: string): WorkspaceFile => ({ path, kind: 'file', sha256: `sha-${path}`, executable: false });
const link = (path: string, linkTarget: string): WorkspaceFile => ({ path, kind: 'symlink', linkTarget });
const dir = (path: string): WorkspaceFile => ({ path, kind: 'dir' });

/** l1 -> ., l2 -> l1/.., l3 -> l2/.. … in `folder`: each link alone stays inside (lexically `.`), together they climb. */
const chain = (folder: string, length: number): WorkspaceFile[] => Array.from({ length }, (_, i) => link(`${folder}/l${i + 1}`, i === 0 ? '.' : `l${i}/..`));

describe('WorkspaceTree.resolve', () => {
  const tree = new WorkspaceTree([
    dir('.devcontainer'),
    file('.devcontainer/devcontainer.json'),
    file('docker/Dockerfile'), // docker/ has no entry of its own
    link('.devcontainer/Dockerfile', '../docker/Dockerfile'),
    link('docs', 'docker'),
    link('deep/up', '..'),
    link('dangling', 'nowhere/at/all'),
    link('empty', ''),
    link('etc', '/etc'),
    link('loop-a', 'loop-b'),
    link('loop-b', 'loop-a'),
    link('a/b/there', '../../docker'),
  ]);

  it('finds files, folders implied by deeper entries, and the root', () => {
    expect(tree.resolve('docker/Dockerfile')).toEqual({ ok: true, path: 'docker/Dockerfile', kind: 'file', links: [] });
    expect(tree.resolve('docker')).toEqual({ ok: true, path: 'docker', kind: 'dir', links: [] });
    expect(tree.resolve('')).toEqual({ ok: true, path: '', kind: 'dir', links: [] });
    expect(tree.resolve('./docker/./Dockerfile')).toMatchObject({ path: 'docker/Dockerfile', kind: 'file' });
  });

  it('says where nothing is: the first missing path, or past a file', () => {
    expect(tree.resolve('docker/missing/x')).toEqual({ ok: true, path: 'docker/missing', kind: 'missing', links: [] });
    expect(tree.resolve('docker/Dockerfile/x')).toEqual({ ok: true, path: 'docker/Dockerfile/x', kind: 'missing', links: [] });
  });

  it('follows links in every component, relative targets from the link’s folder', () => {
    expect(tree.resolve('.devcontainer/Dockerfile')).toEqual({ ok: true, path: 'docker/Dockerfile', kind: 'file', links: ['.devcontainer/Dockerfile'] });
    expect(tree.resolve('docs/Dockerfile')).toEqual({ ok: true, path: 'docker/Dockerfile', kind: 'file', links: ['docs'] });
    expect(tree.resolve('a/b/there/Dockerfile')).toMatchObject({ ok: true, path: 'docker/Dockerfile', kind: 'file' });
  });

  it('applies .. after a link to the folder reached, as the kernel does (not lexically)', () => {
    // a/b/there is docker/: `a/b/there/..` is the root physically, `a/b` lexically.
    expect(tree.resolve('a/b/there/..')).toMatchObject({ ok: true, path: '', kind: 'dir' });
    expect(tree.resolve('deep/up')).toMatchObject({ ok: true, path: '', kind: 'dir', links: ['deep/up'] });
  });

  it('lets a dangling link that stays inside resolve to missing', () => {
    expect(tree.resolve('dangling')).toEqual({ ok: true, path: 'nowhere', kind: 'missing', links: ['dangling'] });
    expect(tree.resolve('empty')).toMatchObject({ ok: true, kind: 'missing' });
  });

  it('fails on .. above the root, naming the path', () => {
    expect(tree.resolve('../x')).toEqual({ ok: false, reason: 'escapes', links: [], message: '"../x" climbs above the workspace root' });
    expect(tree.resolve('docker/../../x')).toMatchObject({ ok: false, reason: 'escapes' });
    expect(tree.resolve('/etc/passwd')).toMatchObject({ ok: false, reason: 'absolute', message: '"/etc/passwd" is absolute' });
  });

  it('fails on a link climbing out, naming the link and its target', () => {
    expect(tree.resolve('deep/up/..')).toEqual({
      ok: false,
      reason: 'escapes',
      links: ['deep/up'],
      message: '"deep/up/.." climbs above the workspace root',
    });
    expect(new WorkspaceTree([link('x/out', '../../y')]).resolve('x/out')).toEqual({
      ok: false,
      reason: 'escapes',
      link: 'x/out',
      target: '../../y',
      links: ['x/out'],
      message: 'link "x/out" -> "../../y" climbs above the workspace root',
    });
  });

  it('fails on an absolute target', () => {
    expect(tree.resolve('etc/passwd')).toEqual({
      ok: false,
      reason: 'absolute',
      link: 'etc',
      target: '/etc',
      links: ['etc'],
      message: 'link "etc" -> "/etc" is absolute',
    });
  });

  it('fails on a loop (the kernel’s ELOOP), naming the link reached again', () => {
    expect(tree.resolve('loop-a')).toEqual({
      ok: false,
      reason: 'too_many_links',
      link: 'loop-a',
      target: 'loop-b',
      links: ['loop-a', 'loop-b', 'loop-a'],
      message: 'link "loop-a" -> "loop-b" leads back to itself (a loop)',
    });
    expect(new WorkspaceTree([link('self', 'self')]).resolve('self/x')).toMatchObject({ ok: false, reason: 'too_many_links', link: 'self' });
  });

  it('follows exactly 40 links, not 41', () => {
    const hops = (n: number) => new WorkspaceTree([file('end'), ...Array.from({ length: n }, (_, i) => link(`h${i}`, i === n - 1 ? 'end' : `h${i + 1}`))]);
    expect(hops(MAX_LINK_HOPS).resolve('h0')).toMatchObject({ ok: true, path: 'end', kind: 'file' });
    expect(hops(MAX_LINK_HOPS + 1).resolve('h0')).toMatchObject({ ok: false, reason: 'too_many_links' });
  });

  it('counts the links of every step together: two chains of 25 make 50', () => {
    const chainTo = (folder: string, name: string, end: string, n: number) =>
      Array.from({ length: n }, (_, i) => link(`${folder}${name}${i}`, i === n - 1 ? end : `${name}${i + 1}`));
    const tree = new WorkspaceTree([dir('d'), file('d/f'), ...chainTo('', 'p', 'd', 25), ...chainTo('d/', 'q', 'f', 25)]);
    expect(tree.resolve('p0')).toMatchObject({ ok: true, path: 'd', kind: 'dir' });
    expect(tree.resolve('d/q0')).toMatchObject({ ok: true, path: 'd/f', kind: 'file' });
    expect(tree.resolve('p0/q0')).toMatchObject({ ok: false, reason: 'too_many_links' });
  });

  it('stays quick and off the call stack on a hostile list (10 000 chained links, a path 5 000 folders deep)', () => {
    const deep = Array.from({ length: 5000 }, () => 'a').join('/');
    const files = [file(`${deep}/f`), ...Array.from({ length: 10_000 }, (_, i) => link(`k${i}`, i === 0 ? deep : `k${i - 1}`))];
    const started = Date.now();
    const tree = new WorkspaceTree(files);
    expect(tree.resolve('k39')).toMatchObject({ ok: true, kind: 'dir', path: deep });
    expect(tree.resolve('k40')).toMatchObject({ ok: false, reason: 'too_many_links' });
    expect(tree.resolve('k9999')).toMatchObject({ ok: false, reason: 'too_many_links' });
    expect(tree.problems()).toHaveLength(10_000 - 40);
    expect(tree.reach([''])).toHaveLength(10_001);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('sees the chain l1 -> ., l2 -> l1/.., l3 -> l2/.. … climb to the root and out, and names the link that climbs', () => {
    const tree = new WorkspaceTree([...chain('a/b/c', 5)]);
    expect(tree.resolve('a/b/c/l1')).toMatchObject({ ok: true, path: 'a/b/c', kind: 'dir' });
    expect(tree.resolve('a/b/c/l2')).toMatchObject({ ok: true, path: 'a/b', kind: 'dir' });
    expect(tree.resolve('a/b/c/l4')).toMatchObject({ ok: true, path: '', kind: 'dir' });
    expect(tree.resolve('a/b/c/l5')).toEqual({
      ok: false,
      reason: 'escapes',
      link: 'a/b/c/l5',
      target: 'l4/..',
      links: ['a/b/c/l5', 'a/b/c/l4', 'a/b/c/l3', 'a/b/c/l2', 'a/b/c/l1'],
      message: 'link "a/b/c/l5" -> "l4/.." climbs above the workspace root',
    });
    // …and a file named through the chain is outside too.
    expect(tree.resolve('a/b/c/l5/etc/passwd')).toMatchObject({ ok: false, reason: 'escapes', link: 'a/b/c/l5' });
  });

  it('takes the last entry of a repeated path', () => {
    expect(new WorkspaceTree([link('x', '/etc'), file('x')]).resolve('x')).toMatchObject({ ok: true, kind: 'file' });
  });
});

describe('WorkspaceTree.reach', () => {
  const tree = new WorkspaceTree([
    dir('a'),
    file('a/x'),
    dir('a/b'),
    file('a/b/y'),
    link('a/l', '../c'), // a folder outside a/
    file('c/z'),
    link('c/back', '../a/b'), // …with a link back in
    link('c/f', '../d/file'),
    file('d/file'),
    file('d/other'),
    link('out', '/etc'),
    file('a.txt'),
  ]);

  it('takes a folder’s subtree and what its links name, links of links included, folders left out', () => {
    expect(tree.reach(['a']).sort()).toEqual(['a/b/y', 'a/l', 'a/x', 'c/back', 'c/f', 'c/z', 'd/file']);
  });

  it('takes a file, the links on the way to it, and nothing for what is missing or leads out', () => {
    expect(tree.reach(['a/l/f']).sort()).toEqual(['a/l', 'c/f', 'd/file']);
    expect(tree.reach(['nothing', '../up', '/abs'])).toEqual([]);
    expect(tree.reach(['out/passwd'])).toEqual(['out']);
  });

  it('takes everything from the root, once', () => {
    expect(tree.reach(['', 'a', 'a/b']).sort()).toEqual(['a.txt', 'a/b/y', 'a/l', 'a/x', 'c/back', 'c/f', 'c/z', 'd/file', 'd/other', 'out']);
  });
});

describe('WorkspaceTree.problems', () => {
  it('finds nothing wrong with links that stay inside, dangling ones included', () => {
    const tree = new WorkspaceTree([
      file('.devcontainer/devcontainer.json'),
      file('docker/Dockerfile'),
      link('.devcontainer/Dockerfile', '../docker/Dockerfile'),
      link('root', '.'),
      link('docker/up', '..'),
      link('dangling', 'not/there'),
      ...chain('a/b/c', 4),
    ]);
    expect(tree.problems()).toEqual([]);
  });

  it('names the symlink chain that climbs out', () => {
    expect(new WorkspaceTree(chain('a/b/c', 6)).problems()).toEqual([
      'symbolic link "a/b/c/l5" -> "l4/.." climbs above the workspace root',
      'symbolic link "a/b/c/l6" -> "l5/.." does not resolve inside the workspace: link "a/b/c/l5" -> "l4/.." climbs above the workspace root',
    ]);
    // At the root the second link already climbs out.
    expect(new WorkspaceTree(chain('', 2).map((l) => ({ ...l, path: l.path.slice(1) }))).problems()).toEqual([
      'symbolic link "l2" -> "l1/.." climbs above the workspace root',
    ]);
  });

  it('names absolute targets, links out, and loops', () => {
    expect(new WorkspaceTree([link('x', '/etc/passwd'), link('up', '../..'), link('me', 'me')]).problems()).toEqual([
      'symbolic link "me" -> "me" leads back to itself (a loop)',
      'symbolic link "up" -> "../.." climbs above the workspace root',
      'symbolic link "x" -> "/etc/passwd" is absolute',
    ]);
  });

  it('names an entry under a symlinked folder or a file (extraction order would decide)', () => {
    expect(new WorkspaceTree([link('a', 'b'), dir('b'), file('a/c'), file('f'), file('f/g')]).problems()).toEqual([
      '"a/c" lies under "a", which is a symbolic link: the order of extraction would decide what is built',
      '"f/g" lies under "f", which is a file: the order of extraction would decide what is built',
    ]);
  });

  it('is refused as a whole by checkWorkspaceLayout (400 unsafe_archive, every problem in details)', () => {
    const err = (() => {
      try {
        checkWorkspaceLayout(new WorkspaceTree([link('x', '/etc'), link('a', '.'), file('a/c')]));
      } catch (e) {
        return e;
      }
    })() as CodebayError;
    expect(err).toBeInstanceOf(CodebayError);
    expect(err).toMatchObject({ status: 400, code: 'unsafe_archive' });
    expect(err.message).toBe(
      'workspace: 2 problems: "a/c" lies under "a", which is a symbolic link: the order of extraction would decide what is built; symbolic link "x" -> "/etc" is absolute',
    );
    expect(err.details).toEqual({ problems: [expect.stringContaining('"a/c" lies under "a"'), 'symbolic link "x" -> "/etc" is absolute'], count: 2 });
    expect(() => checkWorkspaceLayout(new WorkspaceTree([file('a/b')]))).not.toThrow();
  });
});
