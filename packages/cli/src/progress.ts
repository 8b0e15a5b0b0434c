import ora, { type Ora } from 'ora';

/** How long work is shown to a person: a spinner on a terminal, plain lines otherwise. */
export interface Progress {
  /** The current step (replaces the previous one on a terminal; one line each otherwise). */
  step(text: string): void;
  /** A log line, printed in full above the spinner. */
  line(text: string): void;
  succeed(text: string): void;
  fail(text: string): void;
  stop(): void;
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

class TerminalProgress implements Progress {
  private readonly spinner: Ora;
  private readonly started = Date.now();
  private current = '';
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly stream: NodeJS.WriteStream) {
    this.spinner = ora({ stream, discardStdin: false }).start();
    this.timer = setInterval(() => this.render(), 250);
  }

  private render(): void {
    this.spinner.text = `${this.current} (${seconds(this.started)})`;
  }

  step(text: string): void {
    this.current = text;
    this.render();
  }

  line(text: string): void {
    this.spinner.clear();
    this.stream.write(`  ${text}\n`);
    this.spinner.render();
  }

  succeed(text: string): void {
    clearInterval(this.timer);
    this.spinner.succeed(`${text} (${seconds(this.started)})`);
  }

  fail(text: string): void {
    clearInterval(this.timer);
    this.spinner.fail(`${text} (${seconds(this.started)})`);
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.spinner.isSpinning) this.spinner.stop();
  }
}

class PlainProgress implements Progress {
  private readonly started = Date.now();
  private last = '';
  constructor(private readonly stream: NodeJS.WritableStream) {}

  private write(text: string): void {
    this.stream.write(`${text}\n`);
  }

  step(text: string): void {
    if (text === this.last) return;
    this.last = text;
    this.write(`[${seconds(this.started)}] ${text}`);
  }

  line(text: string): void {
    this.write(`  ${text}`);
  }

  succeed(text: string): void {
    this.write(`[${seconds(this.started)}] ${text}`);
  }

  fail(text: string): void {
    this.write(`[${seconds(this.started)}] ${text}`);
  }

  stop(): void {}
}

class SilentProgress implements Progress {
  step(): void {}
  line(): void {}
  succeed(): void {}
  fail(): void {}
  stop(): void {}
}

/** Progress goes to stderr, so stdout carries only the result (the URL, or JSON). */
export function createProgress(opts: { quiet?: boolean } = {}): Progress {
  if (opts.quiet) return new SilentProgress();
  const stream = process.stderr;
  // A person at a terminal gets the spinner; CI logs (CI set, as ora also checks) and pipes get plain lines.
  const interactive = stream.isTTY && process.env.TERM !== 'dumb' && !('CI' in process.env);
  return interactive ? new TerminalProgress(stream) : new PlainProgress(stream);
}
