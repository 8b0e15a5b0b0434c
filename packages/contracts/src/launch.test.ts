import { describe, expect, it } from 'vitest';
import { substituteDeep, substituteVariables } from '../../editor/launcher/helpers.mjs';
import { launchConfigSchema } from './instance.ts';
import { instanceLaunch, substituteInstanceVariables } from './launch.ts';

describe('variables: the launcher and the provisioner agree', () => {
  const vars = { workspaceFolder: '/workspace', devcontainerId: 'alice-abc123' };
  const forms = [
    '${containerWorkspaceFolder}',
    '${containerWorkspaceFolderBasename}',
    '${localWorkspaceFolder}/src',
    '${localWorkspaceFolderBasename}',
    '${devcontainerId}',
    '${localEnv:HOME}',
    '${localEnv:NOPE:fallback}',
    '${env:NOPE:legacy}',
    '${unknownVariable}',
    'plain text',
  ];

  it('gives every form the same value as substituteInstanceVariables (the container’s own environment)', () => {
    for (const form of forms) expect(substituteVariables(form, {}, vars), form).toBe(substituteInstanceVariables(form, vars));
    expect(substituteVariables('${localWorkspaceFolder}/src:${devcontainerId}', {}, vars)).toBe('/workspace/src:alice-abc123');
  });

  it('agrees too when the volume and the folder differ (workspaceMount /src/app, workspaceFolder /src/app/web)', () => {
    const placed = { workspaceFolder: '/src/app/web', workspaceVolume: '/src/app', devcontainerId: 'alice-abc123' };
    for (const form of forms) expect(substituteVariables(form, {}, placed), form).toBe(substituteInstanceVariables(form, placed));
    expect(
      substituteInstanceVariables(
        '${localWorkspaceFolder} ${localWorkspaceFolderBasename} ${containerWorkspaceFolder} ${containerWorkspaceFolderBasename}',
        placed,
      ),
    ).toBe('/src/app app /src/app/web web');
  });

  it('leaves ${containerEnv:…} to the container (the provisioner) and resolves it in the launcher', () => {
    expect(substituteInstanceVariables('${containerEnv:PATH}', vars)).toBe('${containerEnv:PATH}');
    expect(substituteVariables('${containerEnv:PATH}', { PATH: '/bin' }, vars)).toBe('/bin');
  });

  it('substitutes lifecycle commands in every form and settings', () => {
    const commands = { postCreate: ['echo ${containerWorkspaceFolder}', ['ls', '${devcontainerId}'], { a: 'cd ${localWorkspaceFolder}' }] };
    expect(substituteDeep(commands, {}, vars)).toEqual({ postCreate: ['echo /workspace', ['ls', 'alice-abc123'], { a: 'cd /workspace' }] });
    expect(substituteDeep({ 'python.defaultInterpreterPath': '${containerWorkspaceFolder}/.venv/bin/python', n: 3 }, {}, vars)).toEqual({
      'python.defaultInterpreterPath': '/workspace/.venv/bin/python',
      n: 3,
    });
  });
});

describe('instanceLaunch', () => {
  it('starts the container with containerEnv substituted, and tells the launcher the same values and the instance id', () => {
    const launch = launchConfigSchema.parse({ containerEnv: { WS: '${containerWorkspaceFolder}', ID: '${devcontainerId}', P: '${containerEnv:PATH}' } });
    const started = instanceLaunch(launch, 'bob-x1', 8080);
    expect(started.containerEnv).toEqual({ WS: '/workspace', ID: 'bob-x1', P: '${containerEnv:PATH}' });
    expect(JSON.parse(started.launchJson)).toMatchObject({
      containerEnv: started.containerEnv,
      workspaceFolder: '/workspace',
      devcontainerId: 'bob-x1',
      port: 8080,
    });
  });

  it('hands the launcher the placement: the folder the editor opens and the volume', () => {
    const launch = launchConfigSchema.parse({ containerEnv: { WS: '${containerWorkspaceFolder}', LOCAL: '${localWorkspaceFolder}' } });
    const started = instanceLaunch(launch, 'bob-x1', 8080, { target: '/src/app', folder: '/src/app/web' });
    expect(started.containerEnv).toEqual({ WS: '/src/app/web', LOCAL: '/src/app' });
    expect(JSON.parse(started.launchJson)).toMatchObject({ workspaceFolder: '/src/app/web', workspaceVolume: '/src/app' });
  });

  it('keeps the image’s hostRequirements from the launcher (they are the instance’s resources)', () => {
    const launch = launchConfigSchema.parse({ hostRequirements: { memoryBytes: 2 ** 30 } });
    expect(JSON.parse(instanceLaunch(launch, 'bob-x1', 8080).launchJson)).not.toHaveProperty('hostRequirements');
  });
});

describe('variables in hostile values', () => {
  it('costs one pass over `${` repeated without a closing brace (a regular expression would rescan it from each)', () => {
    const value = '${'.repeat(200_000);
    const t0 = performance.now();
    expect(substituteInstanceVariables(value, { workspaceFolder: '/workspace', devcontainerId: 'x' })).toBe(value);
    expect(substituteVariables(value, {}, { workspaceFolder: '/workspace' })).toBe(value);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('ends each variable at its first closing brace, as the reference CLI does', () => {
    const vars = { workspaceFolder: '/workspace', devcontainerId: 'x' };
    for (const v of ['${a${devcontainerId}}', '${localEnv:A:b:c}', '${}', 'x}${devcontainerId']) {
      expect(substituteVariables(v, {}, vars), v).toBe(substituteInstanceVariables(v, vars));
    }
    expect(substituteInstanceVariables('${localEnv:A:b:c}', vars)).toBe('b:c');
  });
});
