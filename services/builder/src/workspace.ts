import { inspectWorkspaceArchive, type ArtifactStore } from '@codebay/platform';
import { mkdir, rm, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { extract } from 'tar';
import type { SourceKind } from '@codebay/contracts';

export interface JobFolders {
  /** The workspace folder the CLI builds (build context and .devcontainer/). */
  workspace: string;
  /** The CLI's TMPDIR. */
  tmp: string;
}

/**
 * Lays out a fresh folder for one build: the uploaded devcontainer.json as
 * `.devcontainer/devcontainer.json`, or the workspace archive unpacked (checked again
 * before unpacking: the builder does not trust the store blindly).
 */
export class BuildWorkspace {
  constructor(
    private readonly root: string,
    private readonly artifacts: ArtifactStore,
  ) {}

  folders(instanceId: string): JobFolders {
    return { workspace: join(this.root, instanceId, 'workspace'), tmp: join(this.root, instanceId, 'tmp') };
  }

  async materialise(instanceId: string, source: SourceKind, artifact: string): Promise<JobFolders> {
    await this.clean(instanceId);
    const f = this.folders(instanceId);
    await mkdir(f.workspace, { recursive: true });
    await mkdir(f.tmp, { recursive: true });
    const file = this.artifacts.path(artifact);
    if (source === 'devcontainer') {
      await mkdir(join(f.workspace, '.devcontainer'), { recursive: true });
      await copyFile(file, join(f.workspace, '.devcontainer', 'devcontainer.json'));
    } else {
      await inspectWorkspaceArchive(file, { maxEntries: 1_000_000, maxUnpackedBytes: Number.MAX_SAFE_INTEGER });
      await extract({ file, cwd: f.workspace, strict: true, preservePaths: false, noChmod: false });
    }
    await writeFile(join(f.tmp, '.codebay-job'), instanceId);
    return f;
  }

  async clean(instanceId: string): Promise<void> {
    await rm(join(this.root, instanceId), { recursive: true, force: true });
  }
}
