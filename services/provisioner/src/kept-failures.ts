import type { InstanceRecord } from '@codebay/contracts';
import type { InstanceStore, Logger } from '@codebay/platform';
import type { RuntimeDriver } from './runtime/driver.ts';

/** Whether a record is a Failed instance whose objects are kept for inspection (deadline passed or not). */
export function isKept(record: InstanceRecord): boolean {
  return record.status === 'Failed' && !!record.kept;
}

/**
 * A failed provisioning's leftovers: kept for inspection a while, then removed. `keepOrRemove` is
 * called at the failure (by the provision use-case); `releaseDue` by the runtime's reconciler on
 * each pass (Docker: DockerReconciler.sweep; Kubernetes: Reconciler.run), so a deadline persisted
 * on the record is honoured across provisioner restarts. A delete removes the objects at once
 * (DeprovisionInstance); a retried provision replaces them (the drivers replace an earlier
 * attempt's container or objects).
 */
export interface KeptFailuresDeps {
  store: InstanceStore;
  driver: RuntimeDriver;
  logger: Logger;
  /** `FAILED_INSTANCE_KEEP_SECONDS`: 0 removes at the failure. */
  keepSeconds: number;
  /** `codebay_reconcile_actions_total{action="kept_failure_removed"}`. */
  actions?: { inc(labels: { action: string }): void };
}

export class KeptFailures {
  private readonly deps: KeptFailuresDeps;

  constructor(deps: KeptFailuresDeps) {
    this.deps = deps;
  }

  /**
   * At a failure that ends an instance's provisioning for good (it never ran): keeps what was made
   * (RuntimeDriver.keepFailed) and returns the `kept` to write on the record — or removes it all and
   * returns null (keeping is off, the runtime cannot keep, nothing was made, or keeping failed).
   */
  async keepOrRemove(record: InstanceRecord, now = Date.now()): Promise<InstanceRecord['kept']> {
    const { driver, keepSeconds, logger } = this.deps;
    if (keepSeconds > 0 && driver.keepFailed && driver.keeper) {
      const until = new Date(now + keepSeconds * 1000).toISOString();
      const kept = await driver.keepFailed(record, until).catch((err: Error) => {
        logger.warn({ instanceId: record.id, err: err.message }, 'could not keep the failed instance for inspection: removing it');
        return false;
      });
      if (kept) {
        logger.info({ instanceId: record.id, until }, 'failed instance kept for inspection');
        return { until, by: driver.keeper };
      }
    }
    await driver.deprovision(record).catch((err: Error) => logger.warn({ instanceId: record.id, err: err.message }, 'could not remove the failed instance'));
    return null;
  }

  /** The records among `records` this runtime keeps whose deadline has passed by `now`. */
  due(records: readonly InstanceRecord[], now = Date.now()): InstanceRecord[] {
    return records.filter((r) => isKept(r) && r.kept!.by === this.deps.driver.keeper && Date.parse(r.kept!.until) <= now);
  }

  /**
   * Removes what each due record kept (RuntimeDriver.deprovision: as a delete does, the user's shared
   * storage stays) and clears its `kept` — only while it is still Failed (a delete meanwhile owns
   * it). With `dryRun`, only says which. One that cannot be removed now is tried again next pass.
   * Returns the ids released (or due, in a dry run).
   */
  async releaseDue(records: readonly InstanceRecord[], dryRun = false, now = Date.now()): Promise<string[]> {
    const { store, driver, logger, actions } = this.deps;
    const released: string[] = [];
    for (const record of this.due(records, now)) {
      if (dryRun) {
        released.push(record.id);
        continue;
      }
      try {
        await driver.deprovision(record);
      } catch (err) {
        logger.warn({ instanceId: record.id, err: (err as Error).message }, 'could not remove a failed instance whose keep ended');
        continue;
      }
      const cleared = await store.transition(record.id, ['Failed'], 'Failed', { kept: null });
      released.push(record.id);
      actions?.inc({ action: 'kept_failure_removed' });
      logger.info({ instanceId: record.id, keptUntil: record.kept!.until, recorded: cleared.ok }, 'failed instance removed: its keep for inspection ended');
    }
    return released;
  }
}
