import { CodebayError, PermanentError, type InstanceRecord, type SourceKind } from '@codebay/contracts';
import { buildPaths, planBuild, type BuildPolicy, type DevcontainerConfig } from '@codebay/devcontainer';
import { inspectWorkspaceArchive, type ArtifactStore } from '@codebay/platform';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { extract } from 'tar';
import { assertInside, scanWorkspace } from './workspace-scan.ts';

export interface JobFolders {
  /** The job's own folder (workspace and tmp live in it). */
  root: string;
  /** The workspace folder the CLI builds (build context and .devcontainer/). */
  workspace: string;
  /** The CLI's TMPDIR. */
  tmp: string;
}

/** Where the Dev Containers CLI looks for the config, in its order. */
const CONFIG_PATHS = ['.devcontainer/devcontainer.json', '.devcontainer.json'];

/**
 * Lays out a fresh folder for one build — the uploaded devcontainer.json as
 * `.devcontainer/devcontainer.json`, or the workspace archive unpacked (checked again
 * before unpacking: the builder does not trust the store blindly) — and checks it again
 * before the CLI sees it (see verify).
 */
export class BuildWorkspace {
  constructor(
    private readonly root: string,
    private readonly artifacts: ArtifactStore,
    private readonly policy: BuildPolicy,
  ) {}

  folders(instanceId: string): JobFolders {
    const root = join(this.root, instanceId);
    return { root, workspace: join(root, 'workspace'), tmp: join(root, 'tmp') };
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

  /**
   * The builder's own check of what the CLI is about to build, on the unpacked folder:
   * the same checks the gateway ran on the upload (planBuild: layout, config, policy, every
   * path with symlinks followed) on the files as they are on disk, every path the build
   * reads resolved once more by the kernel (realpath, inside the workspace), and the build
   * key recomputed from those files: it must be the key the gateway recorded, or what is
   * built is not what was checked. Throws PermanentError with the reason.
   */
  async verify(folders: JobFolders, record: InstanceRecord): Promise<{ config: DevcontainerConfig }> {
    const expected = record.build?.key;
    try {
      if (record.source === 'devcontainer') {
        const plan = planBuild({ configText: await readFile(join(folders.workspace, '.devcontainer', 'devcontainer.json'), 'utf8') }, this.policy);
        if (plan.key.key !== expected)
          throw new PermanentError('the devcontainer.json on the builder is not the one that was uploaded (its build key differs)');
        return { config: plan.config };
      }
      const files = await scanWorkspace(folders.workspace);
      const configPath = CONFIG_PATHS.find((p) => files.some((f) => f.path === p && f.kind === 'file'));
      if (!configPath) throw new PermanentError('the unpacked workspace has no .devcontainer/devcontainer.json');
      await assertInside(folders.workspace, configPath, 'the configuration');
      const plan = planBuild({ configText: await readFile(join(folders.workspace, configPath), 'utf8'), configPath, files }, this.policy);
      for (const p of buildPaths(plan.config, configPath)) if (p.path !== undefined) await assertInside(folders.workspace, p.path, p.property);
      if (plan.key.key !== expected) throw new PermanentError('the unpacked workspace is not what was uploaded (its build key differs)');
      return { config: plan.config };
    } catch (err) {
      // A 4xx at upload is a refusal here too: the build fails with the same words.
      if (err instanceof CodebayError) throw new PermanentError(err.message);
      throw err;
    }
  }

  async clean(instanceId: string): Promise<void> {
    await rm(join(this.root, instanceId), { recursive: true, force: true });
  }
}
