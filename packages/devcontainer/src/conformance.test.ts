import { UnprocessableError } from '@codebay/contracts';
import { describe, expect, it } from 'vitest';
import { checkRefused, configWarnings, metadataWarnings } from './conformance.ts';
import { checkSchema } from './schema.ts';
import { mergeMetadata } from './merge.ts';

describe('configWarnings', () => {
  it('names every property codebay accepts without applying it, in the config’s order', () => {
    const warnings = configWarnings({
      image: 'debian:bookworm',
      forwardPorts: [3000, 'db:5432'],
      appPort: 8000,
      runArgs: ['--init'],
      mounts: ['source=x,target=/x,type=volume'],
      capAdd: ['SYS_PTRACE'],
      init: true,
      initializeCommand: 'echo',
      overrideCommand: false,
      updateRemoteUserUID: true,
      userEnvProbe: 'loginInteractiveShell',
      workspaceFolder: '/src/app',
      customizations: { jetbrains: {}, vscode: {} },
    });
    expect(warnings.map((w) => w.property)).toEqual([
      'forwardPorts',
      'appPort',
      'runArgs',
      'mounts',
      'capAdd',
      'init',
      'initializeCommand',
      'overrideCommand',
      'updateRemoteUserUID',
      'userEnvProbe',
      'workspaceFolder',
      'customizations.jetbrains',
    ]);
    for (const w of warnings) expect(w.message.startsWith(`${w.property}: `)).toBe(true);
  });

  it('says nothing of values that change nothing', () => {
    expect(
      configWarnings({
        image: 'debian:bookworm',
        forwardPorts: [],
        runArgs: [],
        init: false,
        overrideCommand: true,
        updateRemoteUserUID: false,
        userEnvProbe: 'none',
        workspaceFolder: '/workspace/',
        customizations: { vscode: { extensions: [] } },
      }),
    ).toEqual([]);
  });

  it('folds many other tools into one warning, and never says more than 50 things', () => {
    const customizations = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`tool${i}`, {}]));
    const warnings = configWarnings({ image: 'x', customizations });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toMatch(/^customizations: tool0, tool1, .* and 4990 more are for other tools/);
    const features = Array.from({ length: 200 }, (_, i) => ({ id: `f${i}`, privileged: true, capAdd: ['X'] }));
    expect(metadataWarnings(features)).toHaveLength(50);
  });

  it('has nothing to say of build.target (BuildKit builds only the stages the target needs)', () => {
    expect(configWarnings({ build: { dockerfile: 'Dockerfile', target: 'dev' } })).toEqual([]);
  });
});

describe('metadataWarnings', () => {
  it('names the feature that asks for what instances never get', () => {
    const entries = [
      {
        id: 'ghcr.io/devcontainers/features/docker-in-docker:2',
        privileged: true,
        entrypoint: '/usr/local/share/docker-init.sh',
        mounts: [{ source: 'dind', target: '/var/lib/docker', type: 'volume' }],
      },
      { id: 'ghcr.io/devcontainers/features/node:1' },
      { remoteUser: 'vscode', privileged: true },
    ];
    expect(metadataWarnings(entries).map((w) => w.property)).toEqual([
      'features["ghcr.io/devcontainers/features/docker-in-docker:2"].privileged',
      'features["ghcr.io/devcontainers/features/docker-in-docker:2"].entrypoint',
      'features["ghcr.io/devcontainers/features/docker-in-docker:2"].mounts',
    ]);
  });

  it('says hostRequirements.gpu "optional" from any entry (the base image’s), as for the config', () => {
    expect(metadataWarnings([{ hostRequirements: { gpu: 'optional' } }, { remoteUser: 'x' }])).toEqual([
      {
        property: 'hostRequirements.gpu',
        message: "hostRequirements.gpu: no GPU: codebay offers no GPUs, so the instance runs without one (the image's metadata says it is optional)",
      },
    ]);
    // Required somewhere: not a warning (the instance does not start: applyImageHostRequirements).
    expect(metadataWarnings([{ hostRequirements: { gpu: 'optional' } }, { hostRequirements: { gpu: true } }])).toEqual([]);
  });
});

describe('checkRefused', () => {
  it('refuses privileged: true, naming it', () => {
    expect(() => checkRefused({ image: 'x', privileged: true })).toThrow(UnprocessableError);
    expect(() => checkRefused({ image: 'x', privileged: true })).toThrow(/privileged: instances never run privileged/);
    expect(() => checkRefused({ image: 'x', privileged: false })).not.toThrow();
  });

  it.each([true, { cores: 2 }, { memory: '8gb' }])('refuses hostRequirements.gpu %j (no GPUs are offered), naming it', (gpu) => {
    let err: unknown;
    try {
      checkRefused({ image: 'x', hostRequirements: { gpu } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnprocessableError);
    expect((err as UnprocessableError).code).toBe('unsupported_devcontainer');
    expect((err as UnprocessableError).message).toMatch(/^devcontainer\.json: hostRequirements\.gpu: a GPU is required, and codebay offers none/);
    expect((err as UnprocessableError).details).toEqual({
      problems: [{ property: 'hostRequirements.gpu', message: 'a GPU is required, and codebay offers none' }],
    });
  });

  it('accepts hostRequirements without a required GPU', () => {
    for (const gpu of [false, 'optional', undefined])
      expect(() => checkRefused({ image: 'x', hostRequirements: { cpus: 2, memory: '4gb', gpu } })).not.toThrow();
  });
});

describe('configWarnings (hostRequirements)', () => {
  it('says an optional GPU is not given, and nothing of what is applied (cpus, memory, storage) or gpu: false', () => {
    expect(configWarnings({ image: 'x', hostRequirements: { cpus: 2, memory: '4gb', storage: '32gb', gpu: 'optional' } })).toEqual([
      { property: 'hostRequirements.gpu', message: expect.stringMatching(/^hostRequirements\.gpu: no GPU: codebay offers no GPUs/) },
    ]);
    expect(configWarnings({ image: 'x', hostRequirements: { cpus: 2, memory: '4gb', storage: '32gb', gpu: false } })).toEqual([]);
  });
});

describe('extensions', () => {
  it('accepts the spec’s opt-out form -publisher.name', () => {
    expect(() => checkSchema({ image: 'x', customizations: { vscode: { extensions: ['-ms-python.python', 'ms-python.python@2024.1.0'] } } })).not.toThrow();
    expect(() => checkSchema({ image: 'x', customizations: { vscode: { extensions: ['--ms-python.python'] } } })).toThrow(/extension id/);
  });
});

describe('mergeMetadata (lifecycle)', () => {
  it('collects postAttachCommand in order and takes the last waitFor', () => {
    const merged = mergeMetadata([
      { id: 'feature', postAttachCommand: 'echo feature', waitFor: 'onCreateCommand' },
      { postAttachCommand: ['echo', 'config'], waitFor: 'postCreateCommand' },
      { waitFor: 'not-a-stage' },
    ]);
    expect(merged.postAttachCommands).toEqual(['echo feature', ['echo', 'config']]);
    expect(merged.waitFor).toBe('postCreateCommand');
  });
});
