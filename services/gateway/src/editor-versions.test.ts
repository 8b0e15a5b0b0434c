import type { PublishedEditorVersions } from '@codebay/contracts';
import { describe, expect, it } from 'vitest';
import { EditorVersions } from './editor-versions.ts';

const board = (published: PublishedEditorVersions | undefined) => ({ read: async () => published });

describe('EditorVersions', () => {
  it('lists what the provisioners published, newest first, the newest as the default', async () => {
    const versions = new EditorVersions(
      board({
        versions: [
          { vscode_version: '1.100.3', code_server_version: '4.100.3' },
          { vscode_version: '1.139.1', code_server_version: '4.139.1' },
        ],
        publisher: 'provisioner@x:1',
        published_at: '2026-12-01T18:00:00.000Z',
      }),
      ['1.90.0'],
    );
    expect(await versions.list()).toEqual({
      versions: [
        { vscode_version: '1.139.1', code_server_version: '4.139.1', default: true },
        { vscode_version: '1.100.3', code_server_version: '4.100.3', default: false },
      ],
      source: 'provisioner',
      published_at: '2026-12-01T18:00:00.000Z',
    });
    expect(await versions.available()).toEqual(['1.139.1', '1.100.3']);
  });

  it('falls back to the configured list (first is the default) when nothing is published', async () => {
    const versions = new EditorVersions(board(undefined), ['1.100.3', '1.139.1']);
    expect(await versions.list()).toEqual({
      versions: [
        { vscode_version: '1.100.3', code_server_version: null, default: true },
        { vscode_version: '1.139.1', code_server_version: null, default: false },
      ],
      source: 'configuration',
      published_at: null,
    });
  });
});
