import type { InstanceRecord, InstanceStatus, RuntimeInfo } from '@codebay/contracts';
import type { InstanceStore, Logger } from '@codebay/platform';
import { describe, expect, it, vi } from 'vitest';
import { KeptFailures } from './kept-failures.ts';
import { Reconciler, type RuntimeInventory } from './reconciler.ts';
import type { RuntimeDriver } from './runtime/driver.ts';

/** Records in memory, with the store calls the Reconciler and KeptFailures make. */
function memoryStore(records: Record<string, Partial<InstanceRecord>>) {
  const all = new Map(Object.entries(records).map(([id, r]) => [id, { id, ...r } as InstanceRecord]));
  return {
    all,
    store: {
      get: async (id: string) => all.get(id) ?? null,
      allIds: async () => [...all.keys()],
      many: async (ids: string[]) => ids.flatMap((id) => all.get(id) ?? []),
      transition: async (id: string, from: readonly InstanceStatus[], to: InstanceStatus, patch: Partial<InstanceRecord> = {}) => {
        const r = all.get(id);
        if (!r || !from.includes(r.status)) return { ok: false as const, current: r?.status ?? null };
        all.set(id, { ...r, ...patch, status: to });
        return { ok: true as const };
      },
    } as unknown as InstanceStore,
  };
}

/** A namespace holding objects of the given instances; removing them (either way) takes them out. */
function cluster(ids: string[]) {
  const present = new Set(ids);
  const inventory: RuntimeInventory = {
    instanceIds: async () => new Set(present),
    rootIds: async () => new Set(present),
    removeAll: vi.fn(async (id: string) => void present.delete(id)),
    holds: (runtime: RuntimeInfo) => runtime.driver === 'kubernetes',
  };
  const driver = { keeper: 'kubernetes:vscode-system', deprovision: vi.fn(async (r: InstanceRecord) => void present.delete(r.id)) };
  return { present, inventory, driver };
}

const logger = { info: vi.fn(), warn: vi.fn() } as unknown as Logger;
const runtime: RuntimeInfo = { driver: 'kubernetes', namespace: 'vscode-system', endpoint: 'http://x:8080' };
const past = new Date(Date.now() - 1_000).toISOString();
const future = new Date(Date.now() + 600_000).toISOString();

describe('Reconciler and failed instances kept for inspection', () => {
  const records = {
    kept: { status: 'Failed' as const, runtime, kept: { until: future, by: 'kubernetes:vscode-system' } },
    ended: { status: 'Failed' as const, runtime, kept: { until: past, by: 'kubernetes:vscode-system' } },
    failed: { status: 'Failed' as const, runtime, kept: null },
    running: { status: 'Running' as const, runtime },
  };

  const setUp = () => {
    const { store, all } = memoryStore(records);
    const c = cluster(Object.keys(records));
    const kept = new KeptFailures({ store, driver: c.driver as unknown as RuntimeDriver, logger, keepSeconds: 600 });
    return { all, ...c, reconciler: new Reconciler(store, c.inventory, logger, undefined, kept) };
  };

  it('are no orphans while kept; removed (deadline cleared) once it passed; a Failed instance not kept is an orphan as before', async () => {
    const { reconciler, present, all, driver } = setUp();
    const report = await reconciler.run(false);
    expect(report).toMatchObject({ orphans: ['failed'], released: ['ended'], vanished: [] });
    expect([...present].sort()).toEqual(['kept', 'running']);
    expect(driver.deprovision).toHaveBeenCalledOnce();
    expect(all.get('ended')).toMatchObject({ status: 'Failed', kept: null });
    expect(all.get('kept')!.kept).toEqual(records.kept.kept);
  });

  it('a dry run reports the same and changes nothing', async () => {
    const { reconciler, present, all } = setUp();
    expect(await reconciler.run(true)).toMatchObject({ dryRun: true, orphans: ['failed'], released: ['ended'] });
    expect(present.size).toBe(4);
    expect(all.get('ended')!.kept).not.toBeNull();
  });
});
