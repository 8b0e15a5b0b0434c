import { newestFirst, type EditorVersion } from '@codebay/contracts';
import type { EditorVersionsBoard } from '@codebay/platform';

/** An editor version as the API lists it. */
export interface ListedEditorVersion extends EditorVersion {
  /** What an instance runs when its request names no `vscode_version`. */
  default: boolean;
}

/** The editor versions this deployment can run, and where that list comes from. */
export interface EditorVersionList {
  versions: ListedEditorVersion[];
  /**
   * `provisioner`: what the provisioners found (their editor bundles), published in Redis;
   * `configuration`: CODEBAY_VSCODE_VERSIONS, when no provisioner has published (yet), e.g. on
   * Kubernetes, where the bundles are editor images the deployment built.
   */
  source: 'provisioner' | 'configuration';
  published_at: string | null;
}

/**
 * The editor versions the gateway offers: the provisioners' published list (newest first, the
 * newest is the default), else the configured one (the first is the default).
 */
export class EditorVersions {
  constructor(
    private readonly board: Pick<EditorVersionsBoard, 'read'>,
    private readonly configured: string[],
  ) {}

  /** The current list; a Redis error propagates (the caller answers 5xx rather than guess). */
  async list(): Promise<EditorVersionList> {
    const published = await this.board.read();
    const versions: EditorVersion[] = published
      ? newestFirst(published.versions)
      : this.configured.map((vscode_version) => ({ vscode_version, code_server_version: null }));
    return {
      versions: versions.map((v, i) => ({ ...v, default: i === 0 })),
      source: published ? 'provisioner' : 'configuration',
      published_at: published?.published_at ?? null,
    };
  }

  /** The VS Code versions, default first (what `resolveVscodeVersion` picks from). */
  async available(): Promise<string[]> {
    return (await this.list()).versions.map((v) => v.vscode_version);
  }
}
