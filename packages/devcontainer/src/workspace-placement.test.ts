import { describe, expect, it } from 'vitest';
import { UnprocessableError } from '@codebay/contracts';
import { checkRefused, configWarnings } from './conformance.ts';
import { workspacePlacement } from './workspace-placement.ts';

const place = (config: Record<string, unknown>) => workspacePlacement(config);
const refusal = (config: Record<string, unknown>) => {
  try {
    workspacePlacement(config);
  } catch (err) {
    expect(err).toBeInstanceOf(UnprocessableError);
    return err as UnprocessableError;
  }
  throw new Error(`not refused: ${JSON.stringify(config)}`);
};

describe('workspacePlacement', () => {
  it('keeps /workspace for both when the config names neither', () => {
    expect(place({ image: 'debian' })).toEqual({ placement: { target: '/workspace', folder: '/workspace' }, warnings: [] });
  });

  it('mounts the volume at workspaceMount’s target and opens workspaceFolder, as people write them', () => {
    const r = place({
      workspaceMount: 'source=${localWorkspaceFolder},target=/src/app,type=bind,consistency=cached',
      workspaceFolder: '/src/app/web/',
    });
    expect(r).toEqual({ placement: { target: '/src/app', folder: '/src/app/web' }, warnings: [] });
    // The reference CLI's key aliases (src, dst, destination).
    expect(place({ workspaceMount: 'src=${localWorkspaceFolder},dst=/w,type=volume' }).placement).toEqual({ target: '/w', folder: '/w' });
    expect(place({ workspaceMount: 'type=bind,destination=/home/node/app' }).placement.target).toBe('/home/node/app');
  });

  it('substitutes the variables in both (the upload is /workspace, its basename workspace)', () => {
    expect(
      place({
        workspaceMount: 'source=${localWorkspaceFolder},target=/workspaces/${localWorkspaceFolderBasename},type=bind',
        workspaceFolder: '/workspaces/${localWorkspaceFolderBasename}',
      }).placement,
    ).toEqual({
      target: '/workspaces/workspace',
      folder: '/workspaces/workspace',
    });
  });

  it('opens a workspaceFolder outside the volume, saying that what is written there is not kept', () => {
    const r = place({ workspaceFolder: '/src/app' });
    expect(r.placement).toEqual({ target: '/workspace', folder: '/src/app' });
    expect(r.warnings).toEqual([
      { property: 'workspaceFolder', message: expect.stringMatching(/outside the instance's workspace volume \(\/workspace\).*set workspaceMount/) },
    ]);
  });

  it('says what of workspaceMount it does not apply: another source, another type, readonly', () => {
    const r = place({ workspaceMount: 'source=/home/me/code,target=/code,type=tmpfs,readonly' });
    expect(r.placement.target).toBe('/code');
    expect(r.warnings.map((w) => w.message)).toEqual([
      expect.stringMatching(/^workspaceMount: the source "\/home\/me\/code" is not mounted: the instance's own workspace volume is, at \/code$/),
      expect.stringMatching(/type=tmpfs is not applied/),
      expect.stringMatching(/readonly not applied/),
    ]);
    expect(configWarnings({ workspaceMount: 'source=/home/me/code,target=/code' }).map((w) => w.property)).toEqual(['workspaceMount']);
  });

  it('refuses a target at or above what the instance needs, naming workspaceMount', () => {
    for (const target of ['/', '/usr', '/usr/local/src', '/etc/app', '/proc', '/shared', '/shared/x', '/opt/codebay', '/opt', '/var/run/x']) {
      const err = refusal({ workspaceMount: `source=\${localWorkspaceFolder},target=${target},type=bind` });
      expect(err.code).toBe('unsupported_devcontainer');
      expect(err.message).toMatch(/workspaceMount/);
    }
    expect(refusal({ workspaceMount: 'source=x,type=bind' }).message).toMatch(/workspaceMount: names no target/);
    expect(refusal({ workspaceMount: 42 }).message).toMatch(/workspaceMount must be a string/);
  });

  it('refuses relative paths, dot segments and control characters in either', () => {
    expect(refusal({ workspaceFolder: 'src/app' }).message).toMatch(/workspaceFolder "src\/app": must be an absolute path/);
    expect(refusal({ workspaceFolder: '/workspace/../etc' }).message).toMatch(/"\." or "\.\." segments/);
    expect(refusal({ workspaceMount: 'target=/src/../etc' }).message).toMatch(/workspaceMount/);
    expect(refusal({ workspaceFolder: '/a\nb' }).message).toMatch(/control character/);
    expect(refusal({ workspaceFolder: `/${'a'.repeat(2000)}` }).message).toMatch(/longer than 1024/);
    // The runtime enters the folder as root before codebay runs: never the kernel's file systems.
    for (const folder of ['/proc/self/fd/7', '/sys/fs', '/dev', '/proc'])
      expect(refusal({ workspaceFolder: folder }).message).toMatch(/workspaceFolder .*is the kernel's/);
  });

  it('is checked with what an instance cannot run without (validateDevcontainer: a 422 before anything is queued)', () => {
    expect(() => checkRefused({ image: 'debian', workspaceMount: 'target=/proc/x' })).toThrow(/workspaceMount: the target \/proc\/x/);
    expect(() => checkRefused({ image: 'debian', workspaceMount: 'target=/src/app', workspaceFolder: '/src/app' })).not.toThrow();
  });
});
