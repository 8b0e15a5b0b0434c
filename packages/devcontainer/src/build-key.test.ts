import { describe, expect, it } from 'vitest';
import { buildInputs, buildKey, DEVCONTAINER_CLI_VERSION, type WorkspaceFile } from './build-key.ts';
import { parseDevcontainerJson } from './parse.ts';

const file = (path: string, sha256: string, executable = false): WorkspaceFile => ({ path, kind: 'file', sha256, executable });
const link = (path: string, linkTarget: string): WorkspaceFile => ({ path, kind: 'symlink', linkTarget });

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
    // With a local feature, the whole config folder counts (see the dependsOn test below).
    expect(buildInputs(dockerConfig, '.devcontainer/devcontainer.json')).toEqual({
      dirs: ['', '.devcontainer/tool', '.devcontainer'],
      files: ['.devcontainer/Dockerfile'],
    });
    expect(buildInputs({ dockerFile: 'Dockerfile' }, '.devcontainer.json')).toEqual({ dirs: [''], files: ['Dockerfile'] });
    expect(buildInputs({ image: 'x', features: { 'ghcr.io/a/b:1': {}, '../f': {} } }, '.devcontainer/devcontainer.json')).toEqual({
      dirs: ['f', '.devcontainer'],
      files: [],
    });
    expect(buildInputs({ image: 'x', features: { 'ghcr.io/a/b:1': {} } }, '.devcontainer/devcontainer.json')).toEqual({ dirs: [], files: [] });
  });

  it('counts local features a local feature depends on (dependsOn), which the config never names', () => {
    const config = { image: 'debian:bookworm', features: { './a': {} } };
    const tree = (x: string) => [
      file('.devcontainer/devcontainer.json', 'c'),
      file('.devcontainer/a/devcontainer-feature.json', '{"id":"a","version":"1.0.0","dependsOn":{"./x":{}}}'),
      file('.devcontainer/a/install.sh', 'a'),
      file('.devcontainer/x/devcontainer-feature.json', '{"id":"x","version":"1.0.0"}'),
      file('.devcontainer/x/install.sh', x),
    ];
    expect(key(config, tree('benign')).key).not.toBe(key(config, tree('malicious')).key);
  });

  it('follows links: a Dockerfile kept elsewhere counts by its content', () => {
    const config = { build: { dockerfile: 'Dockerfile' } };
    const linked = [file('.devcontainer/devcontainer.json', 'c1'), link('.devcontainer/Dockerfile', '../docker/Dockerfile'), file('docker/Dockerfile', 'd1')];
    const base = key(config, linked);
    // The context is the Dockerfile's folder as named, .devcontainer/ (the CLI does not follow the link for it).
    expect(base.inputs).toEqual(['.devcontainer/Dockerfile', '.devcontainer/devcontainer.json', 'docker/Dockerfile']);
    const changed = key(
      config,
      linked.map((f) => (f.path === 'docker/Dockerfile' ? file(f.path, 'd2') : f)),
    );
    expect(changed.key).not.toBe(base.key);
    expect(changed.family).toBe(base.family);
  });

  it('takes in what the links of the context name, links of links included, until nothing new comes in', () => {
    const config = { build: { dockerfile: 'Dockerfile' } };
    const tree = [
      file('.devcontainer/Dockerfile', 'd1'),
      link('.devcontainer/vendor', '../third_party'), // a folder outside the context
      link('third_party/lib', '../shared/lib.sh'), // …holding a link to a file outside both
      file('third_party/a.txt', 'a1'),
      file('shared/lib.sh', 's1'),
      file('shared/other.sh', 'o1'),
      file('src/main.py', 'm1'),
    ];
    expect(key(config, tree).inputs).toEqual(['.devcontainer/Dockerfile', '.devcontainer/vendor', 'shared/lib.sh', 'third_party/a.txt', 'third_party/lib']);
    const touched = (path: string) =>
      key(
        config,
        tree.map((f) => (f.path === path ? file(path, 'changed') : f)),
      ).key;
    expect(touched('shared/lib.sh')).not.toBe(key(config, tree).key);
    expect(touched('third_party/a.txt')).not.toBe(key(config, tree).key);
    expect(touched('shared/other.sh')).toBe(key(config, tree).key);
    expect(touched('src/main.py')).toBe(key(config, tree).key);
  });

  it('survives link loops and links that lead out (checkBuildPaths refuses those before a key is needed)', () => {
    const config = { build: { dockerfile: 'Dockerfile' } };
    const tree = [file('.devcontainer/Dockerfile', 'd1'), link('.devcontainer/a', 'b'), link('.devcontainer/b', 'a'), link('.devcontainer/up', '../..')];
    expect(key(config, tree).inputs).toEqual(['.devcontainer/Dockerfile', '.devcontainer/a', '.devcontainer/b', '.devcontainer/up']);
    expect(key({ build: { dockerfile: '../../x', context: '../../..' } }, tree).inputs).toEqual([]);
  });

  it('takes the Dockerfile’s folder as the context when none is set (as the CLI does)', () => {
    const config = { build: { dockerfile: '../docker/Dockerfile' } };
    const tree = [file('docker/Dockerfile', 'd1'), file('docker/requirements.txt', 'r1'), file('.devcontainer/x', 'x1')];
    expect(key(config, tree).inputs).toEqual(['docker/Dockerfile', 'docker/requirements.txt']);
  });

  it('covers the Dockerfile’s own .dockerignore and the features lockfile, which the build reads beside the config', () => {
    const config = { build: { dockerfile: '../docker/Dockerfile', context: '../src' } };
    const tree = [
      file('docker/Dockerfile', 'd1'),
      file('docker/Dockerfile.dockerignore', 'i1'),
      file('src/main.py', 'm1'),
      file('.devcontainer/devcontainer-lock.json', 'l1'),
    ];
    expect(key(config, tree).inputs).toEqual(['.devcontainer/devcontainer-lock.json', 'docker/Dockerfile', 'docker/Dockerfile.dockerignore', 'src/main.py']);
  });
});
