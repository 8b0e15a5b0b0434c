import type { BuildLogStream } from '@codebay/platform';

/**
 * Collects log lines and writes them to the build's stream in small batches
 * (every `intervalMs` or `maxLines`), keeping their order; every line goes through `mask` first.
 */
export class LogBatcher {
  private pending: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly logs: BuildLogStream,
    private readonly instanceId: string,
    /** Applied to every line pushed from now on (set once the build's secrets are known). */
    public mask: (line: string) => string = (l) => l,
    private readonly intervalMs = 100,
    private readonly maxLines = 200,
  ) {}

  push = (line: string): void => {
    this.pending.push(this.mask(line));
    if (this.pending.length >= this.maxLines) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.intervalMs);
  };

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const lines = this.pending;
    this.pending = [];
    if (lines.length > 0) this.chain = this.chain.then(() => this.logs.append(this.instanceId, lines)).catch(() => undefined);
  }

  /** Writes what is pending and waits for every earlier write. */
  async drain(): Promise<void> {
    this.flush();
    await this.chain;
  }
}
