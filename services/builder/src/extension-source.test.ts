import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { normalizeExtensions } from '../../../packages/editor/launcher/helpers.mjs';
import { makeVsix } from '../../../test/support/vsix.ts';
import {
  EXTENSIONS_LABEL,
  EXTENSIONS_PROPERTY,
  ExtensionSource,
  bakedIndex,
  compareVersions,
  extensionWarnings,
  readVsixManifest,
  wantedExtensionIds,
} from './extension-source.ts';

describe('wantedExtensionIds', () => {
  it('drops blanks, duplicates (any case) and .vsix paths; -publisher.name removes what came before it', () => {
    expect(wantedExtensionIds(['ms-python.python', ' ', 'MS-Python.Python', 'a.b', './local.vsix', 'c.d', '-A.B', 'x.y', '-never.listed', 'a.b'])).toEqual([
      'ms-python.python',
      'c.d',
      'x.y',
      'a.b',
    ]);
  });

  it('agrees with the launcher (helpers.mjs normalizeExtensions) on ids', () => {
    const cases = [
      ['a.b', 'A.B', '-a.b', 'c.d'],
      ['Feature.One', 'config.two', '-feature.one'],
      ['x.y', '', '  z.w  ', '-x.y', 'x.y'],
    ];
    for (const list of cases) expect(wantedExtensionIds(list)).toEqual(normalizeExtensions(list).map((e) => e.toLowerCase()));
  });
});

describe('compareVersions', () => {
  it('orders numerically, a pre-release before its release', () => {
    const sorted = ['1.10.0', '1.2.0', '1.2.0-next.1', '0.9.9', '1.2.1', '1.2'].sort(compareVersions);
    expect(sorted).toEqual(['0.9.9', '1.2.0-next.1', '1.2.0', '1.2', '1.2.1', '1.10.0'].sort(compareVersions));
    expect(sorted[0]).toBe('0.9.9');
    expect(sorted.at(-1)).toBe('1.10.0');
    expect(compareVersions('1.2.0-next.1', '1.2.0')).toBeLessThan(0);
    expect(compareVersions('1.2.10', '1.2.9')).toBeGreaterThan(0);
  });
});

describe('ExtensionSource', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'codebay-extsrc-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the manifest inside the .vsix, not its file name', async () => {
    makeVsix(join(dir, 'misleading-name-9.9.9.vsix'), { publisher: 'Acme', name: 'Tool', version: '1.2.3' });
    expect(await readVsixManifest(join(dir, 'misleading-name-9.9.9.vsix'))).toEqual({ id: 'acme.tool', publisher: 'Acme', name: 'Tool', version: '1.2.3' });
  });

  it('takes the highest version of each wanted id, skips corrupt files with a reason, lists what it lacks', async () => {
    makeVsix(join(dir, 'a.vsix'), { publisher: 'acme', name: 'tool', version: '1.9.0' });
    makeVsix(join(dir, 'b.vsix'), { publisher: 'acme', name: 'tool', version: '1.10.0' });
    makeVsix(join(dir, 'c.vsix'), { publisher: 'acme', name: 'tool', version: '1.10.0-next.2' });
    makeVsix(join(dir, 'other.vsix'), { publisher: 'acme', name: 'other', version: '0.1.0' });
    makeVsix(join(dir, 'unwanted.vsix'), { publisher: 'acme', name: 'unwanted', version: '3.0.0' });
    writeFileSync(join(dir, 'broken.vsix'), 'PK\u0003\u0004 this is not a zip');
    writeFileSync(join(dir, 'notes.txt'), 'not a vsix at all');
    const source = new ExtensionSource(dir);
    const r = await source.resolve(wantedExtensionIds(['Acme.Other', 'acme.tool', 'nobody.here']));
    expect(r.found.map((e) => [e.id, e.version, e.path])).toEqual([
      ['acme.other', '0.1.0', join(dir, 'other.vsix')],
      ['acme.tool', '1.10.0', join(dir, 'b.vsix')],
    ]);
    expect(r.missing).toEqual(['nobody.here']);
    expect(r.skipped).toEqual([{ file: 'broken.vsix', reason: expect.stringMatching(/central directory|zip/i) as unknown }]);
    expect(bakedIndex(r)).toEqual({
      extensions: [
        { id: 'acme.other', version: '0.1.0', file: 'acme.other-0.1.0.vsix' },
        { id: 'acme.tool', version: '1.10.0', file: 'acme.tool-1.10.0.vsix' },
      ],
      missing: ['nobody.here'],
    });
  });

  it('skips a zip without a valid manifest and sees a file replaced since the last build', async () => {
    makeVsix(join(dir, 'x.vsix'), { publisher: 'acme', name: 'bad name', version: '1.0.0' });
    const source = new ExtensionSource(dir);
    const first = await source.resolve(['acme.tool']);
    expect(first.skipped).toEqual([{ file: 'x.vsix', reason: 'extension/package.json has no valid "name"' }]);
    expect(first.missing).toEqual(['acme.tool']);
    makeVsix(join(dir, 'x.vsix'), { publisher: 'acme', name: 'tool', version: '2.0.0-a-longer-version' });
    const second = await source.resolve(['acme.tool']);
    expect(second.found.map((e) => e.version)).toEqual(['2.0.0-a-longer-version']);
    expect(second.skipped).toEqual([]);
  });
});

describe('extensionWarnings', () => {
  it('one warning for the property, listing the ids the source lacked; none without the label or when none is missing', () => {
    expect(extensionWarnings({})).toEqual([]);
    expect(extensionWarnings({ [EXTENSIONS_LABEL]: JSON.stringify({ baked: [], missing: [] }) })).toEqual([]);
    expect(extensionWarnings({ [EXTENSIONS_LABEL]: '{not json' })).toEqual([]);
    expect(extensionWarnings({ [EXTENSIONS_LABEL]: JSON.stringify({ baked: [], missing: ['a.b', 'c.d'] }) })).toEqual([
      { property: EXTENSIONS_PROPERTY, message: 'customizations.vscode.extensions: a.b, c.d: not in this deployment’s extension source; not installed' },
    ]);
  });
});
