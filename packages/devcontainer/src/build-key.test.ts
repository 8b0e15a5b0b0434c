import { describe, expect, it } from 'vitest';
import { buildInputs, buildKey, DEVCONTAINER_CLI_VERSION, type WorkspaceFile } from './build-key.ts';
import { parseDevcontainerJson } from './parse.ts';

const file = (path: string, sha256: string, executable = false): WorkspaceFile => ({ path, kind: 'file', sha256, executable });

describe('buildKey', () => {
  const dockerConfig = { build: { dockerfile: 'Dockerfile', context: '..' }, features: { './tool': { version: '1' } } };
  const files = [
    file('.devcontainer/devcontainer.json', 'c1'),
    file('.devcontainer/Dockerfile', 'd1'),
    file('.devcontainer/tool/install.sh', 'i1', true),
    file('.devcontainer/tool/devcontainer-feature.json', 'f1'),
    file('src/main.py', 'm1'),
  ];
  const key = (config: object, list = files, configPath = '.devcontainer/devcontainer.json') => buildKey({ config: config as never, configPath, files: list });

  it('ignores comments, spacing and key order of the config', () => {
    const a = parseDevcontainerJson('{ "image": "debian:bookworm", "features": { "./x": {} } }');
    const b = parseDevcontainerJson('// note\n{\n  "features": {"./x": {}},\n  "image":   "debian:bookworm", // trailing\n}');
    expect(buildKey({ config: a }).key).toBe(buildKey({ config: b }).key);
  });

  it('changes with the config, the feature options and the CLI version', () => {
    const base = key(dockerConfig).key;
    expect(key({ ...dockerConfig, features: { './tool': { version: '2' } } }).key).not.toBe(base);
    expect(key({ ...dockerConfig, name: 'x' }).key).not.toBe(base);
    expect(buildKey({ config: dockerConfig as never, configPath: '.devcontainer/devcontainer.json', files, cliVersion: '0.0.1' }).key).not.toBe(base);
    expect(base).toBe(
      buildKey({ config: dockerConfig as never, configPath: '.devcontainer/devcontainer.json', files, cliVersion: DEVCONTAINER_CLI_VERSION }).key,
    );
  });

  it('changes with a file the build reads (same family), not with one it does not', () => {
    const base = key({ build: { dockerfile: 'Dockerfile' }, features: { './tool': {} } }, files);
    const dockerfileChanged = key(
      { build: { dockerfile: 'Dockerfile' }, features: { './tool': {} } },
      files.map((f) => (f.path.endsWith('Dockerfile') ? file(f.path, 'd2') : f)),
    );
    expect(dockerfileChanged.key).not.toBe(base.key);
    expect(dockerfileChanged.family).toBe(base.family);
    // The context is .devcontainer/: sources outside it are not read by this build.
    const sourceChanged = key(
      { build: { dockerfile: 'Dockerfile' }, features: { './tool': {} } },
      files.map((f) => (f.path === 'src/main.py' ? file(f.path, 'm2') : f)),
    );
    expect(sourceChanged.key).toBe(base.key);
    // ...but with context '..' they are.
    expect(
      key(
        dockerConfig,
        files.map((f) => (f.path === 'src/main.py' ? file(f.path, 'm2') : f)),
      ).key,
    ).not.toBe(key(dockerConfig).key);
    // A feature script losing its executable bit builds differently.
    expect(
      key(
        dockerConfig,
        files.map((f) => (f.path.endsWith('install.sh') ? { ...f, executable: false } : f)),
      ).key,
    ).not.toBe(key(dockerConfig).key);
  });

  it('finds the build inputs relative to the config', () => {
    expect(buildInputs(dockerConfig, '.devcontainer/devcontainer.json')).toEqual({ dirs: ['', '.devcontainer/tool'], files: ['.devcontainer/Dockerfile'] });
    expect(buildInputs({ dockerFile: 'Dockerfile' }, '.devcontainer.json')).toEqual({ dirs: [''], files: ['Dockerfile'] });
    expect(buildInputs({ image: 'x', features: { 'ghcr.io/a/b:1': {}, '../f': {} } }, '.devcontainer/devcontainer.json')).toEqual({ dirs: ['f'], files: [] });
  });
});
