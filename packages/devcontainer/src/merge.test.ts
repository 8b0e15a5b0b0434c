import { describe, expect, it } from 'vitest';
import { mergeMetadata, parseMetadataLabel } from './merge.ts';

describe('mergeMetadata', () => {
  it('gives the schema defaults for no entries', () => {
    expect(mergeMetadata([])).toEqual({
      containerEnv: {},
      remoteEnv: {},
      onCreateCommands: [],
      updateContentCommands: [],
      postCreateCommands: [],
      postStartCommands: [],
      postAttachCommands: [],
      settings: {},
      extensions: [],
    });
  });

  it('takes the last remoteUser and containerUser', () => {
    const merged = mergeMetadata([{ remoteUser: 'root', containerUser: 'root' }, { remoteUser: 'vscode' }, { containerUser: 'node' }, {}]);
    expect(merged.remoteUser).toBe('vscode');
    expect(merged.containerUser).toBe('node');
  });

  it('ignores users that are not strings', () => {
    const merged = mergeMetadata([{ remoteUser: 'vscode' }, { remoteUser: 42, containerUser: null }]);
    expect(merged.remoteUser).toBe('vscode');
    expect(merged.containerUser).toBeUndefined();
  });

  it('merges env maps key by key, later entries winning, non-strings dropped', () => {
    const merged = mergeMetadata([
      { containerEnv: { A: '1', B: '1' }, remoteEnv: { PATH: '/a' } },
      { containerEnv: { B: '2', C: '2', N: 5 } },
      { remoteEnv: { PATH: '/b', EXTRA: 'x' } },
      { containerEnv: ['not', 'a', 'map'] },
    ]);
    expect(merged.containerEnv).toEqual({ A: '1', B: '2', C: '2' });
    expect(merged.remoteEnv).toEqual({ PATH: '/b', EXTRA: 'x' });
  });

  it('collects lifecycle commands in order, of every form', () => {
    const merged = mergeMetadata([
      { onCreateCommand: 'echo base', postStartCommand: ['echo', 'start'] },
      { onCreateCommand: ['npm', 'ci'], postCreateCommand: { a: 'echo a', b: ['echo', 'b'] } },
      { onCreateCommand: 'echo config', updateContentCommand: 'git pull', postStartCommand: 'echo again' },
    ]);
    expect(merged.onCreateCommands).toEqual(['echo base', ['npm', 'ci'], 'echo config']);
    expect(merged.updateContentCommands).toEqual(['git pull']);
    expect(merged.postCreateCommands).toEqual([{ a: 'echo a', b: ['echo', 'b'] }]);
    expect(merged.postStartCommands).toEqual([['echo', 'start'], 'echo again']);
  });

  it('skips empty and malformed lifecycle commands', () => {
    const merged = mergeMetadata([
      { onCreateCommand: '' },
      { onCreateCommand: [] },
      { onCreateCommand: ['echo', 1] },
      { onCreateCommand: 42 },
      { onCreateCommand: null },
      { onCreateCommand: { a: 1 } },
      { onCreateCommand: 'ok' },
    ]);
    expect(merged.onCreateCommands).toEqual(['ok']);
  });

  it('unions extensions in first-seen order', () => {
    const merged = mergeMetadata([
      { customizations: { vscode: { extensions: ['a.one', 'b.two'] } } },
      { customizations: { vscode: { extensions: ['b.two', 'c.three', 7] } } },
      { customizations: { jetbrains: { plugins: ['x'] } } },
      { customizations: { vscode: { extensions: 'not-a-list' } } },
    ]);
    expect(merged.extensions).toEqual(['a.one', 'b.two', 'c.three']);
  });

  it('merges settings, later entries winning per key', () => {
    const merged = mergeMetadata([
      { customizations: { vscode: { settings: { 'editor.tabSize': 2, 'files.eol': '\n' } } } },
      { customizations: { vscode: { settings: { 'editor.tabSize': 4, 'terminal.integrated.shell.linux': '/bin/bash' } } } },
    ]);
    expect(merged.settings).toEqual({ 'editor.tabSize': 4, 'files.eol': '\n', 'terminal.integrated.shell.linux': '/bin/bash' });
  });

  it('does not let one merge change the next', () => {
    const entries = [{ containerEnv: { A: '1' }, onCreateCommand: 'x', customizations: { vscode: { settings: { s: 1 }, extensions: ['e'] } } }];
    const first = mergeMetadata(entries);
    first.containerEnv.B = '2';
    first.onCreateCommands.push('y');
    first.settings.t = 2;
    const second = mergeMetadata(entries);
    expect(second.containerEnv).toEqual({ A: '1' });
    expect(second.onCreateCommands).toEqual(['x']);
    expect(second.settings).toEqual({ s: 1 });
  });
});

describe('mergeMetadata (hostRequirements)', () => {
  it('keeps the largest of each field over the entries, as the reference CLI merges them', () => {
    const merged = mergeMetadata(
      parseMetadataLabel(
        JSON.stringify([
          { hostRequirements: { cpus: 4, memory: '3gb' } },
          { id: 'ghcr.io/x/f:1' },
          { hostRequirements: { cpus: 2, memory: '1gb', storage: '32gb' } },
        ]),
      ),
    );
    expect(merged.hostRequirements).toEqual({ cpuMillis: 4000, memoryBytes: 3 * 2 ** 30, storageBytes: 32 * 2 ** 30, gpu: 'none' });
  });

  it('leaves them out when no entry asks for anything', () => {
    expect(mergeMetadata([{ remoteUser: 'x' }, { hostRequirements: {} }])).not.toHaveProperty('hostRequirements');
  });
});

describe('parseMetadataLabel', () => {
  it('is empty for a missing or empty label', () => {
    expect(parseMetadataLabel(undefined)).toEqual([]);
    expect(parseMetadataLabel('')).toEqual([]);
  });

  it('parses an array of entries, dropping what is not an object', () => {
    expect(parseMetadataLabel('[{"remoteUser":"vscode"},null,3,"x",{"onCreateCommand":"echo"}]')).toEqual([
      { remoteUser: 'vscode' },
      { onCreateCommand: 'echo' },
    ]);
  });

  it('wraps one object (older CLIs)', () => {
    expect(parseMetadataLabel('{"remoteUser":"node"}')).toEqual([{ remoteUser: 'node' }]);
  });

  it('is empty for JSON that is neither', () => {
    expect(parseMetadataLabel('"text"')).toEqual([]);
    expect(parseMetadataLabel('null')).toEqual([]);
    expect(parseMetadataLabel('42')).toEqual([]);
  });

  it('throws on a label that is not JSON', () => {
    expect(() => parseMetadataLabel('{not json')).toThrow(SyntaxError);
  });

  it('feeds mergeMetadata', () => {
    const label = JSON.stringify([
      { remoteUser: 'root', onCreateCommand: 'a' },
      { remoteUser: 'vscode', onCreateCommand: 'b' },
    ]);
    const merged = mergeMetadata(parseMetadataLabel(label));
    expect(merged.remoteUser).toBe('vscode');
    expect(merged.onCreateCommands).toEqual(['a', 'b']);
  });
});
