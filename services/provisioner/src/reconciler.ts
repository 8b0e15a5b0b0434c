import type { InstanceStatus, RuntimeInfo } from '@codebay/contracts';
import type { InstanceStore, Logger } from '@codebay/platform';
import { isKept, type KeptFailures } from './kept-failures.ts';

/** What a runtime can say about the instances it holds, for the reconciler. */
export interface RuntimeInventory {
  /** Instance ids that have any object in the runtime (root or not). */
  instanceIds(): Promise<Set<string>>;
  /** Ids whose root object exists (the part whose loss means the instance is gone). */
  rootIds(): Promise<Set<string>>;
  /** Removes every object of the instance, owned or orphaned. */
  removeAll(instanceId: string): Promise<void>;
  /** True when a record's runtime info points into this runtime (other runtimes' instances are not ours to judge). */
  holds(runtime: RuntimeInfo): boolean;
}

export interface ReconcileReport {
  dryRun: boolean;
  /** Objects with no live instance record: removed (or would be). */
  orphans: string[];
  /** Records that claim a running instance whose objects vanished: marked Failed (or would be). */
  vanished: string[];
  /** Failed instances whose keep for inspection ended: their objects removed (or would be). */
  released: string[];
}

/** Statuses in which an instance must have its runtime objects. */
const HOLDS_OBJECTS: readonly InstanceStatus[] = ['Running'];
/** Statuses in which objects may exist legitimately (or be on their way). */
const MAY_HOLD_OBJECTS: readonly InstanceStatus[] = ['Queued', 'Building', 'Built', 'Cached', 'Provisioning', 'Running', 'Deleting'];

/**
 * Settles the differences between the instance records and what the runtime holds:
 * objects of instances with no live record are removed; records whose objects vanished
 * are marked Failed. A Failed instance's objects kept for inspection are no orphans: they are
 * removed once their deadline passed (KeptFailures). With `dryRun` it only reports.
 */
export class Reconciler {
  constructor(
    private readonly store: InstanceStore,
    private readonly runtime: RuntimeInventory,
    private readonly logger: Logger,
    /** `codebay_reconcile_actions_total{action}`: orphan_removed, vanished. */
    private readonly actions?: { inc(labels: { action: string }): void },
    /** Removes failed instances' objects kept for inspection once their deadline passed. */
    private readonly keptFailures?: Pick<KeptFailures, 'releaseDue'>,
  ) {}

  /** One pass (see the class); the report says what was done, or would be with `dryRun`. */
  async run(dryRun: boolean): Promise<ReconcileReport> {
    const report: ReconcileReport = { dryRun, orphans: [], vanished: [], released: [] };
    const present = await this.runtime.instanceIds();
    for (const id of [...present].sort()) {
      // A record that cannot be read counts as live: its objects are never removed on a guess.
      const record = await this.store.get(id).catch((err: Error) => {
        this.logger.warn({ instanceId: id, err: err.message }, 'reconcile: unreadable record left alone');
        return 'unreadable' as const;
      });
      if (record === 'unreadable' || (record && (MAY_HOLD_OBJECTS.includes(record.status) || isKept(record)))) continue;
      report.orphans.push(id);
      if (!dryRun) {
        await this.runtime.removeAll(id);
        this.actions?.inc({ action: 'orphan_removed' });
      }
    }
    const roots = await this.runtime.rootIds();
    const records = await this.store.many(await this.store.allIds());
    report.released = (await this.keptFailures?.releaseDue(records, dryRun)) ?? [];
    for (const record of records) {
      if (!HOLDS_OBJECTS.includes(record.status) || !record.runtime || !this.runtime.holds(record.runtime) || roots.has(record.id)) continue;
      report.vanished.push(record.id);
      if (!dryRun) {
        const failed = await this.store.transition(record.id, HOLDS_OBJECTS, 'Failed', {
          failure: { phase: 'provision', reason: 'the instance objects vanished from the cluster' },
        });
        if (failed.ok) this.actions?.inc({ action: 'vanished' });
      }
    }
    if (report.orphans.length > 0 || report.vanished.length > 0 || report.released.length > 0)
      this.logger.info(report, dryRun ? 'reconcile (dry run)' : 'reconciled');
    return report;
  }
}
