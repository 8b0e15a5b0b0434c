import { PermanentError } from '@codebay/contracts';
import type { InstanceStore, Logger } from '@codebay/platform';
import type { RuntimeDriver } from './runtime/driver.ts';

/** Deleting → Deleted: removes everything the instance owns but the user's shared storage. */
export class DeprovisionInstance {
  constructor(
    private readonly store: InstanceStore,
    private readonly driver: RuntimeDriver,
    private readonly logger: Logger,
    private readonly deletedTtlSeconds: number,
  ) {}

  async run(instanceId: string): Promise<void> {
    const record = await this.store.get(instanceId);
    if (!record) throw new PermanentError(`instance ${instanceId} has no record`);
    if (record.status === 'Deleted') return;
    if (record.status !== 'Deleting') {
      this.logger.warn({ instanceId, status: record.status }, 'deprovision skipped: instance is not being deleted');
      return;
    }
    await this.driver.deprovision(record);
    const done = await this.store.transition(instanceId, ['Deleting'], 'Deleted', { deletedAt: new Date().toISOString(), runtime: null });
    if (done.ok) await this.store.expireDeleted(instanceId, record.userId, this.deletedTtlSeconds);
    this.logger.info({ instanceId }, 'instance deleted');
  }
}
