import { NO_EXTENSION_SOURCE } from '@codebay/contracts';
import { copyFileSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { normalizeExtensions } from '../../../packages/editor/launcher/helpers.mjs';
import { makeVsix } from '../../../test/support/vsix.ts';
import {
  EXTENSIONS_LABEL,
  EXTENSIONS_PROPERTY,
  ExtensionSource,
  bakedFrom,
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

describe('ExtensionSource fingerprint', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'codebay-extsrc-fp-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('changes with what a build could bake (a new id, a new highest version, new bytes), not with older versions, names, times or unreadable files', async () => {
    const source = new ExtensionSource(dir);
    const empty = (await source.scan()).fingerprint;
    expect(empty).toMatch(/^[a-f0-9]{64}$/);
    expect(empty).not.toBe(NO_EXTENSION_SOURCE);

    makeVsix(join(dir, 'tool.vsix'), { publisher: 'acme', name: 'tool', version: '1.0.0' });
    const one = await source.scan();
    expect(one.fingerprint).not.toBe(empty);
    expect([...one.chosen.values()].map((e) => [e.id, e.version, e.sha256])).toEqual([['acme.tool', '1.0.0', expect.stringMatching(/^[a-f0-9]{64}$/)]]);

    // An older version beside it, a renamed file, a new modification time, a corrupt file: nothing a build bakes changed.
    makeVsix(join(dir, 'tool-old.vsix'), { publisher: 'acme', name: 'tool', version: '0.9.0' });
    renameSync(join(dir, 'tool.vsix'), join(dir, 'renamed.vsix'));
    utimesSync(join(dir, 'renamed.vsix'), new Date(), new Date(Date.now() + 60_000));
    writeFileSync(join(dir, 'broken.vsix'), 'not a zip');
    expect((await source.scan()).fingerprint).toBe(one.fingerprint);
    // The same content in another folder (another builder's copy): the same fingerprint.
    const copy = mkdtempSync(join(tmpdir(), 'codebay-extsrc-fp-copy-'));
    try {
      copyFileSync(join(dir, 'renamed.vsix'), join(copy, 'x.vsix'));
      expect((await new ExtensionSource(copy).scan()).fingerprint).toBe(one.fingerprint);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }

    // A new id, then a higher version: each changes it; removing them gives the earlier one back.
    makeVsix(join(dir, 'other.vsix'), { publisher: 'acme', name: 'other', version: '0.1.0' });
    const two = (await source.scan()).fingerprint;
    expect(two).not.toBe(one.fingerprint);
    makeVsix(join(dir, 'tool-2.vsix'), { publisher: 'acme', name: 'tool', version: '2.0.0' });
    const three = (await source.scan()).fingerprint;
    expect(three).not.toBe(two);
    rmSync(join(dir, 'tool-2.vsix'));
    rmSync(join(dir, 'other.vsix'));
    expect((await source.scan()).fingerprint).toBe(one.fingerprint);

    // Other bytes under the same id and version (a rebuilt .vsix): changed.
    rmSync(join(dir, 'tool-old.vsix'));
    makeVsix(join(dir, 'renamed.vsix'), { publisher: 'acme', name: 'tool', version: '1.0.0' }, '^1.90.0');
    expect((await source.scan()).fingerprint).not.toBe(one.fingerprint);
  });

  it('resolve reports the fingerprint of the scan it resolved from', async () => {
    makeVsix(join(dir, 'tool.vsix'), { publisher: 'acme', name: 'tool', version: '1.0.0' });
    const source = new ExtensionSource(dir);
    expect((await source.resolve(['acme.tool'])).fingerprint).toBe((await source.scan()).fingerprint);
  });
});

describe('bakedFrom', () => {
  it('null when nothing is wanted; the label’s source when baked; none when built without a source; unknown for an older label', () => {
    const label = (v: object) => ({ [EXTENSIONS_LABEL]: JSON.stringify(v) });
    const fp = 'a'.repeat(64);
    expect(bakedFrom(label({ baked: [], missing: [], source: fp }), [])).toBeNull();
    expect(bakedFrom(label({ baked: [], missing: ['a.b'], source: fp }), ['a.b'])).toBe(fp);
    expect(bakedFrom({}, ['a.b'])).toBe(NO_EXTENSION_SOURCE);
    expect(bakedFrom(label({ baked: [], missing: ['a.b'] }), ['a.b'])).toBeUndefined();
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
