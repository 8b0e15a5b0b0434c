import { PermanentError, newestFirst, type EditorVersion } from '@codebay/contracts';
import type { EditorVersionsBoard, Logger } from '@codebay/platform';
import { readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

export interface EditorBundle {
  dir: string;
  vscode: string;
  codeServer: string;
}

/** The editor bundles on this machine, found by their `bundle.json`. */
export class EditorBundles {
  constructor(private readonly root: string) {}

  /** Every finished bundle under the root (a folder with a readable `bundle.json`). */
  async list(): Promise<EditorBundle[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const out: EditorBundle[] = [];
    for (const name of names) {
      try {
        const meta = JSON.parse(await readFile(join(this.root, name, 'bundle.json'), 'utf8')) as { vscode: string; codeServer: string };
        out.push({ dir: join(this.root, name), vscode: meta.vscode, codeServer: meta.codeServer });
      } catch {
        // not a finished bundle (a build in progress, or something else)
      }
    }
    return out;
  }

  /** The bundle serving exactly this VS Code version, or a PermanentError naming the ones there are. */
  async forVscode(version: string): Promise<EditorBundle> {
    const bundles = await this.list();
    const match = bundles.find((b) => b.vscode === version);
    if (!match) {
      const have = bundles.map((b) => b.vscode).join(', ') || 'none';
      throw new PermanentError(`no editor bundle for VS Code ${version} under ${this.root} (have: ${have})`);
    }
    return match;
  }

  /** The bundles as the API lists them: newest VS Code first, one per VS Code version. */
  async versions(): Promise<EditorVersion[]> {
    return newestFirst((await this.list()).map((b) => ({ vscode_version: b.vscode, code_server_version: b.codeServer })));
  }
}

/**
 * Publishes the editor versions this provisioner's bundles provide into Redis, at start and
 * every `intervalMs` (bundles built later show up; the record lapses after three missed
 * rounds, so a stopped provisioner's list does not outlive it by long). The gateway lists
 * them in the API and checks `vscode_version` against them.
 */
export class EditorVersionsPublisher {
  private timer: NodeJS.Timeout | undefined;
  private readonly publisher = `provisioner@${hostname()}:${process.pid}`;

  constructor(
    private readonly deps: { bundles: Pick<EditorBundles, 'versions'>; board: Pick<EditorVersionsBoard, 'publish'>; logger: Logger; intervalMs: number },
  ) {}

  /** Publishes once (errors propagate: a provisioner that cannot publish should not look ready), then keeps doing so. */
  async start(): Promise<EditorVersion[]> {
    const versions = await this.publishOnce();
    this.timer = setInterval(() => {
      this.publishOnce().catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'publishing the editor versions failed; retrying'));
    }, this.deps.intervalMs);
    this.timer.unref();
    return versions;
  }

  /** Stops republishing (the record lapses on its own). */
  stop(): void {
    clearInterval(this.timer);
  }

  private async publishOnce(): Promise<EditorVersion[]> {
    const versions = await this.deps.bundles.versions();
    await this.deps.board.publish(versions, this.publisher, Math.ceil((this.deps.intervalMs * 3) / 1000));
    return versions;
  }
}
