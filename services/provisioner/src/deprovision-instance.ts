import { PermanentError } from '@codebay/contracts';
import type { InstanceStore, Logger } from '@codebay/platform';
import type { InstanceLogMirror } from './instance-log.ts';
import type { RuntimeDriver } from './runtime/driver.ts';

/** Deleting → Deleted: removes everything the instance owns but the user's shared storage. */
export interface DeprovisionInstanceDeps {
  store: InstanceStore;
  driver: RuntimeDriver;
  logger: Logger;
  /** How long a Deleted record stays readable, s. */
  deletedTtlSeconds: number;
  /** The instance log mirror: the instance's log ends `deleted` (then expires). */
  instanceLogs?: InstanceLogMirror;
}

export class DeprovisionInstance {
  private readonly store: InstanceStore;
  private readonly driver: RuntimeDriver;
  private readonly logger: Logger;
  private readonly deletedTtlSeconds: number;
  private readonly instanceLogs: DeprovisionInstanceDeps['instanceLogs'];

  constructor(deps: DeprovisionInstanceDeps) {
    ({ store: this.store, driver: this.driver, logger: this.logger, deletedTtlSeconds: this.deletedTtlSeconds, instanceLogs: this.instanceLogs } = deps);
  }

  /**
   * The last word on a delete that failed every attempt: the instance goes Failed (phase
   * `deprovision`) with the reason instead of staying Deleting; deleting it again retries.
   */
  async settleFinalFailure(instanceId: string, reason: string): Promise<void> {
    await this.store.transition(instanceId, ['Deleting'], 'Failed', { failure: { phase: 'deprovision', reason: `could not remove the instance: ${reason}` } });
  }

  async run(instanceId: string): Promise<void> {
    const record = await this.store.get(instanceId);
    if (!record) throw new PermanentError(`instance ${instanceId} has no record`);
    if (record.status === 'Deleted') return;
    if (record.status !== 'Deleting') {
      this.logger.warn({ instanceId, status: record.status }, 'deprovision skipped: instance is not being deleted');
      return;
    }
    await this.driver.deprovision(record);
    await this.instanceLogs
      ?.end(instanceId, 'deleted')
      .catch((err: Error) => this.logger.warn({ instanceId, err: err.message }, 'instance log: could not end it'));
    const done = await this.store.transition(instanceId, ['Deleting'], 'Deleted', { deletedAt: new Date().toISOString(), runtime: null });
    if (done.ok) await this.store.expireDeleted(instanceId, record.userId, this.deletedTtlSeconds);
    this.logger.info({ instanceId }, 'instance deleted');
  }
}
