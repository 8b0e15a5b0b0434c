import { PermanentError, TransientError } from '@codebay/contracts';
import { createMasker, type InstanceStore, type Logger } from '@codebay/platform';
import type { Histogram } from 'prom-client';
import type { RuntimeDriver } from './runtime/driver.ts';

const mask = createMasker();

export interface ProvisionAttempt {
  instanceId: string;
  attempt: number;
  maxAttempts: number;
  signal: AbortSignal;
}

/**
 * The provision use-case: claim the instance (Built|Cached|Queued-simple →
 * Provisioning), have the runtime driver create and start it, wait until the
 * editor answers, then Running. A delete that lands meanwhile wins: whatever
 * this attempt created is removed again.
 */
export class ProvisionInstance {
  constructor(
    private readonly store: InstanceStore,
    private readonly driver: RuntimeDriver,
    private readonly logger: Logger,
    private readonly duration: Histogram<'outcome'>,
  ) {}

  async run({ instanceId, attempt, maxAttempts, signal }: ProvisionAttempt): Promise<void> {
    const record = await this.store.get(instanceId);
    if (!record) throw new PermanentError(`instance ${instanceId} has no record`);
    const from = record.source === 'simple' ? (['Queued', 'Provisioning'] as const) : (['Built', 'Cached', 'Provisioning'] as const);
    const claimed = await this.store.transition(instanceId, from, 'Provisioning', { provisionStartedAt: new Date().toISOString() });
    if (!claimed.ok) {
      this.logger.info({ instanceId, status: claimed.current }, 'provision skipped: instance is not waiting for it');
      return;
    }
    const started = Date.now();
    try {
      const runtime = await this.driver.provision(record, signal);
      await this.store.patch(instanceId, { runtime, containerStartedAt: new Date().toISOString() });
      await this.driver.waitReady(record, runtime, signal);
      const running = await this.store.transition(instanceId, ['Provisioning'], 'Running', { runtime, runningAt: new Date().toISOString() });
      if (!running.ok) {
        this.logger.info({ instanceId, status: running.current }, 'instance deleted while provisioning; removing what was created');
        await this.driver.deprovision(record);
        return;
      }
      this.duration.observe({ outcome: 'success' }, (Date.now() - started) / 1000);
      this.logger.info({ instanceId, seconds: (Date.now() - started) / 1000 }, 'instance running');
    } catch (err) {
      // Shown to the user (`error`): credential-shaped strings from the container's own log are masked.
      const reason = mask((err as Error).message);
      const willRetry = !(err instanceof PermanentError) && attempt < maxAttempts;
      if (willRetry) {
        this.logger.warn({ instanceId, attempt, reason }, 'provisioning failed, will retry');
        throw err instanceof TransientError ? err : new TransientError(reason);
      }
      this.duration.observe({ outcome: 'failure' }, (Date.now() - started) / 1000);
      await this.driver.deprovision(record).catch(() => undefined);
      const failed = await this.store.transition(instanceId, ['Provisioning'], 'Failed', { failure: { phase: 'provision', reason } });
      this.logger.warn({ instanceId, reason, recorded: failed.ok }, 'provisioning failed');
      throw new PermanentError(reason);
    }
  }
}
