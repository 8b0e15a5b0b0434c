import { NO_EXTENSION_SOURCE } from '@codebay/contracts';
import type { ExtensionSourceBoard, Logger } from '@codebay/platform';
import type { ExtensionSource } from './extension-source.ts';

/** What the watch works with (wired in container.ts). */
export interface ExtensionSourceWatchDeps {
  /** The operator's folder (EXTENSION_SOURCE_DIR); none: this builder publishes NO_EXTENSION_SOURCE once. */
  source?: Pick<ExtensionSource, 'scan'>;
  board: Pick<ExtensionSourceBoard, 'publish' | 'read'>;
  logger: Logger;
  /** BUILDER_NAME: the publisher. */
  builder: string;
  /** How often the folder is scanned (EXTENSION_SOURCE_SCAN_SECONDS × 1000). */
  intervalMs: number;
}

/**
 * Keeps the deployment's published extension source fingerprint (`ExtensionSourceBoard`) in step
 * with this builder's folder: a scan at start and every `intervalMs` (a listing and a stat per
 * file; only new or changed files are read and hashed), publishing when the fingerprint changed
 * or the board lost it. The gateway's cache lookups compare cached images with what is published,
 * so a .vsix added or replaced reaches configurations already built within one interval.
 *
 * The builders of one deployment are meant to share one source. If they disagree, the board
 * holds whichever changed last and this builder warns (once per other fingerprint): images that
 * want extensions are then rebuilt as the published fingerprint changes, each recorded with the
 * fingerprint it was really baked from, so a hit never serves an image baked from a source other
 * than the published one.
 */
export class ExtensionSourceWatch {
  private timer: NodeJS.Timeout | undefined;
  private published: string | undefined;
  private warnedAbout: string | undefined;
  private running: Promise<string | undefined> = Promise.resolve(undefined);
  /** Checks queued or running: the timer adds none while one is (Redis away: no pile of them). */
  private pending = 0;

  constructor(private readonly deps: ExtensionSourceWatchDeps) {}

  /** Scans and publishes once (errors propagate: a builder that cannot publish should not take builds), then keeps doing so. */
  async start(): Promise<string> {
    const fingerprint = await this.check(true);
    if (this.deps.source) {
      this.timer = setInterval(() => {
        if (this.pending === 0) void this.current();
      }, this.deps.intervalMs);
      this.timer.unref();
    }
    return fingerprint;
  }

  /** Stops scanning (what was published stays: a deployment scaled to zero keeps its fingerprint). */
  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * This builder's fingerprint now, from a fresh scan (published if it changed): what a build
   * started now would bake from. Undefined when the folder cannot be scanned or Redis fails
   * (logged); the caller then goes by the published fingerprint.
   */
  current(): Promise<string | undefined> {
    // One scan at a time: a build's and the timer's share the folder's cache.
    this.pending++;
    this.running = this.running.then(() =>
      this.check(false)
        .catch((err: Error) => {
          this.deps.logger.warn({ err: err.message }, 'extension source: scan or publish failed');
          return undefined;
        })
        .finally(() => this.pending--),
    );
    return this.running;
  }

  private async check(force: boolean): Promise<string> {
    const { source, board, logger, builder } = this.deps;
    const scan = source ? await source.scan() : undefined;
    const fingerprint = scan?.fingerprint ?? NO_EXTENSION_SOURCE;
    const extensions = scan?.chosen.size ?? 0;
    if (force || fingerprint !== this.published) {
      const before = await board.publish(fingerprint, extensions, builder);
      if (before?.fingerprint !== fingerprint) logger.info({ fingerprint, extensions, before: before?.fingerprint }, 'extension source published');
      this.published = fingerprint;
      return fingerprint;
    }
    const onBoard = await board.read();
    if (onBoard === undefined) {
      await board.publish(fingerprint, extensions, builder);
    } else if (onBoard.fingerprint !== fingerprint && onBoard.fingerprint !== this.warnedAbout) {
      this.warnedAbout = onBoard.fingerprint;
      logger.warn(
        { fingerprint, published: onBoard.fingerprint, publisher: onBoard.publisher },
        'extension source: another builder published a different fingerprint; builders of one deployment should share one source (images that want extensions are rebuilt as it changes)',
      );
    }
    return fingerprint;
  }
}
