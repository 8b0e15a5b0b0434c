import type { Logger } from 'pino';

/**
 * SIGTERM/SIGINT: run the closers in order, raced against a deadline shorter
 * than a pod's grace period, then exit.
 */
export function installShutdown(logger: Logger, closers: Array<() => Promise<unknown>>, deadlineMs = 20_000): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error('shutdown deadline passed, exiting');
      process.exit(1);
    }, deadlineMs);
    timer.unref();
    void (async () => {
      for (const close of closers) {
        try {
          await close();
        } catch (err) {
          logger.warn({ err }, 'error while shutting down');
        }
      }
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
