import { CodebayError } from '@codebay/contracts';
import { describe, expect, it } from 'vitest';
import { buildPaths, checkBuildPaths } from './build-paths.ts';
import type { DevcontainerConfig } from './parse.ts';
import { WorkspaceTree, type WorkspaceFile } from './workspace-tree.ts';

const file = (path: string): WorkspaceFile => ({ path, kind: 'file', sha256: `sha-${path}`, executable: false });
const link = (path: string, linkTarget: string): WorkspaceFile => ({ path, kind: 'symlink', linkTarget });
const dir = (path: string): WorkspaceFile => ({ path, kind: 'dir' });

const CONFIG = '.devcontainer/devcontainer.json';
const base = [dir('.devcontainer'), file(CONFIG), file('.devcontainer/Dockerfile'), file('.devcontainer/tool/install.sh'), file('src/main.py')];

/** The problems checkBuildPaths reports (after checking the error's shape), [] when it accepts. */
function problems(config: DevcontainerConfig, files: WorkspaceFile[] = base, configPath = CONFIG): string[] {
  try {
    checkBuildPaths(config, configPath, new WorkspaceTree(files));
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(CodebayError);
    const e = err as CodebayError;
    expect(e).toMatchObject({ status: 422, code: 'unsafe_path' });
    const list = (e.details as { problems: string[] }).problems;
    expect(e.message).toBe(list[0]);
    return list;
  }
}

describe('buildPaths', () => {
  it('resolves the paths against the config’s folder, lexically, as the CLI does', () => {
    expect(buildPaths({ build: { dockerfile: 'Dockerfile', context: '..' }, features: { './tool': {}, 'ghcr.io/a/b:1': {} } }, CONFIG)).toEqual([
      { property: 'build.dockerfile', value: 'Dockerfile', kind: 'file', path: '.devcontainer/Dockerfile' },
      { property: 'build.context', value: '..', kind: 'dir', path: '' },
      { property: 'features["./tool"]', value: './tool', kind: 'dir', path: '.devcontainer/tool' },
    ]);
  });

  it('defaults the context to the Dockerfile’s folder (the CLI’s default)', () => {
    expect(buildPaths({ build: { dockerfile: '../docker/Dockerfile' } }, CONFIG)).toContainEqual({
      property: 'build.context',
      value: undefined,
      kind: 'dir',
      path: 'docker',
    });
    expect(buildPaths({ dockerFile: 'Dockerfile' }, '.devcontainer.json')).toContainEqual({ property: 'context', value: undefined, kind: 'dir', path: '' });
  });

  it('lists both the legacy and the build form when a config holds both', () => {
    const paths = buildPaths({ dockerFile: 'A', context: 'x', build: { dockerfile: 'B' } }, CONFIG).map((p) => p.property);
    expect(paths).toEqual(['dockerFile', 'context', 'build.dockerfile', 'build.context']);
  });

  it('marks a path that is absolute or climbs above the root', () => {
    const [dockerfile, context] = buildPaths({ build: { dockerfile: '/etc/passwd', context: '../..' } }, CONFIG);
    expect(dockerfile!.path).toBeUndefined();
    expect(context!.path).toBeUndefined();
  });
});

describe('checkBuildPaths', () => {
  it('accepts an ordinary Dockerfile build with context .. (the workspace root) and a local feature', () => {
    expect(problems({ build: { dockerfile: 'Dockerfile', context: '..' }, features: { './tool': {} } })).toEqual([]);
    expect(problems({ dockerFile: 'Dockerfile', context: '.' })).toEqual([]);
    expect(problems({ image: 'debian:bookworm' })).toEqual([]);
  });

  it('accepts links that stay inside: a Dockerfile and a feature folder kept elsewhere in the workspace', () => {
    const files = [
      dir('.devcontainer'),
      file(CONFIG),
      link('.devcontainer/Dockerfile', '../docker/Dockerfile'),
      file('docker/Dockerfile'),
      link('.devcontainer/tool', '../tools/x'),
      file('tools/x/install.sh'),
    ];
    expect(problems({ build: { dockerfile: 'Dockerfile' }, features: { './tool': {} } }, files)).toEqual([]);
  });

  it('refuses a context and a Dockerfile that climb out of the workspace (../../../../artifacts)', () => {
    expect(problems({ build: { dockerfile: '../../../../admin-token', context: '../../../../artifacts' } })).toEqual([
      '.devcontainer/devcontainer.json: build.dockerfile "../../../../admin-token" leaves the workspace',
      '.devcontainer/devcontainer.json: build.context "../../../../artifacts" leaves the workspace',
    ]);
    expect(problems({ dockerFile: '/etc/shadow' })).toEqual(['.devcontainer/devcontainer.json: dockerFile "/etc/shadow" leaves the workspace']);
  });

  it('refuses a local feature that climbs out', () => {
    expect(problems({ image: 'x', features: { '../../../etc': {} } })).toEqual([
      '.devcontainer/devcontainer.json: features["../../../etc"] leaves the workspace',
    ]);
  });

  it('refuses paths that leave through symlinks: an absolute target, a chain climbing out', () => {
    const files = [
      ...base.filter((f) => f.path !== '.devcontainer/Dockerfile'),
      link('.devcontainer/Dockerfile', '/run/secrets/admin-token'),
      link('.devcontainer/l1', '.'),
      link('.devcontainer/l2', 'l1/..'),
      link('.devcontainer/l3', 'l2/..'),
    ];
    expect(problems({ build: { dockerfile: 'Dockerfile', context: 'l3' } }, files)).toEqual([
      '.devcontainer/devcontainer.json: build.dockerfile "Dockerfile" leads outside the workspace: link ".devcontainer/Dockerfile" -> "/run/secrets/admin-token" is absolute',
      '.devcontainer/devcontainer.json: build.context "l3" leads outside the workspace: link ".devcontainer/l3" -> "l2/.." climbs above the workspace root',
    ]);
    expect(problems({ image: 'x', features: { './l3/x': {} } }, files)).toEqual([
      '.devcontainer/devcontainer.json: features["./l3/x"] leads outside the workspace: link ".devcontainer/l3" -> "l2/.." climbs above the workspace root',
    ]);
  });

  it('refuses a .devcontainer that is a symlink, and a config that is one', () => {
    const files = [link('.devcontainer', 'elsewhere'), dir('elsewhere'), file('elsewhere/devcontainer.json'), file('elsewhere/Dockerfile')];
    expect(problems({ build: { dockerfile: 'Dockerfile' } }, files)).toEqual([
      '.devcontainer/devcontainer.json: ".devcontainer" is a symbolic link; the config and the folders it sits in must be real',
      '.devcontainer/devcontainer.json: ".devcontainer/devcontainer.json" must be a regular file in the workspace',
    ]);
    expect(problems({ image: 'x' }, [file('real.json'), link('.devcontainer.json', 'real.json')], '.devcontainer.json')).toEqual([
      '.devcontainer.json: ".devcontainer.json" is a symbolic link; the config and the folders it sits in must be real',
    ]);
  });

  it('wants the Dockerfile to be a file and the context and features folders that exist', () => {
    expect(problems({ build: { dockerfile: 'tool', context: 'Dockerfile' }, features: { './missing': {} } })).toEqual([
      '.devcontainer/devcontainer.json: build.dockerfile "tool" is a folder; it must be a file',
      '.devcontainer/devcontainer.json: build.context "Dockerfile" is a file; it must be a folder',
      '.devcontainer/devcontainer.json: features["./missing"] is not in the workspace (".devcontainer/missing" does not exist)',
    ]);
  });

  it('checks both forms when a config holds the legacy dockerFile beside build.dockerfile (the CLI prefers the legacy one)', () => {
    expect(problems({ dockerFile: '../../../x', build: { dockerfile: 'Dockerfile' } })).toEqual([
      '.devcontainer/devcontainer.json: dockerFile "../../../x" leaves the workspace',
    ]);
  });
});
