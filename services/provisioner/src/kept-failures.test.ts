import type { InstanceRecord, InstanceStatus } from '@codebay/contracts';
import type { InstanceStore, Logger } from '@codebay/platform';
import { describe, expect, it, vi } from 'vitest';
import { KeptFailures } from './kept-failures.ts';
import type { RuntimeDriver } from './runtime/driver.ts';

/** Records in memory, with the store calls KeptFailures makes. */
function memoryStore(records: Record<string, Partial<InstanceRecord>>) {
  const all = new Map(Object.entries(records).map(([id, r]) => [id, { id, ...r } as InstanceRecord]));
  return {
    all,
    store: {
      transition: async (id: string, from: readonly InstanceStatus[], to: InstanceStatus, patch: Partial<InstanceRecord> = {}) => {
        const r = all.get(id);
        if (!r || !from.includes(r.status)) return { ok: false as const, current: r?.status ?? null };
        all.set(id, { ...r, ...patch, status: to });
        return { ok: true as const };
      },
    } as unknown as InstanceStore,
  };
}

const logger = { info: vi.fn(), warn: vi.fn() } as unknown as Logger;
const NOW = Date.parse('2026-12-01T10:00:00.000Z');

function driver(keep: (record: InstanceRecord, until: string) => Promise<boolean> = async () => true) {
  return { keeper: 'docker:codebay', keepFailed: vi.fn(keep), deprovision: vi.fn(async (_record: InstanceRecord): Promise<void> => undefined) };
}

const make = (store: InstanceStore, d: Partial<RuntimeDriver>, keepSeconds = 600, actions = { inc: vi.fn() }) =>
  new KeptFailures({ store, driver: d as RuntimeDriver, logger, keepSeconds, actions });

describe('KeptFailures.keepOrRemove (at a new instance’s final provisioning failure)', () => {
  const record = { id: 'i1', status: 'Provisioning' } as InstanceRecord;

  it('keeps what was made until now + FAILED_INSTANCE_KEEP_SECONDS, naming the runtime that keeps it', async () => {
    const d = driver();
    const kept = await make(memoryStore({}).store, d).keepOrRemove(record, NOW);
    expect(kept).toEqual({ until: '2026-12-01T10:10:00.000Z', by: 'docker:codebay' });
    expect(d.keepFailed).toHaveBeenCalledWith(record, '2026-12-01T10:10:00.000Z');
    expect(d.deprovision).not.toHaveBeenCalled();
  });

  it('removes at once with 0 seconds, when the runtime cannot keep, when nothing was made, or when keeping fails', async () => {
    const cases: [Partial<RuntimeDriver> & { deprovision: ReturnType<typeof vi.fn> }, number][] = [
      [driver(), 0],
      [{ deprovision: vi.fn(async () => undefined) }, 600],
      [driver(async () => false), 600],
      [
        driver(async () => {
          throw new Error('daemon gone');
        }),
        600,
      ],
    ];
    for (const [d, seconds] of cases) {
      expect(await make(memoryStore({}).store, d, seconds).keepOrRemove(record, NOW)).toBeNull();
      expect(d.deprovision).toHaveBeenCalledOnce();
    }
  });
});

describe('KeptFailures.releaseDue (each reconcile pass)', () => {
  const kept = (until: string, by = 'docker:codebay', status: InstanceStatus = 'Failed'): Partial<InstanceRecord> => ({ status, kept: { until, by } });

  it('removes only this runtime’s kept failures whose deadline passed, and clears their deadline', async () => {
    const { store, all } = memoryStore({
      due: kept('2026-12-01T09:59:59.000Z'),
      now: kept('2026-12-01T10:00:00.000Z'),
      later: kept('2026-12-01T10:00:01.000Z'),
      other: kept('2026-12-01T09:00:00.000Z', 'docker:codebay-t0123abcd'),
      running: { status: 'Running' },
      failed: { status: 'Failed', kept: null },
    });
    const d = driver();
    const actions = { inc: vi.fn() };
    const released = await make(store, d, 600, actions).releaseDue([...all.values()], false, NOW);
    expect(released.sort()).toEqual(['due', 'now']);
    expect(d.deprovision.mock.calls.map(([r]) => r.id).sort()).toEqual(['due', 'now']);
    expect(all.get('due')).toMatchObject({ status: 'Failed', kept: null });
    expect(all.get('later')!.kept).not.toBeNull();
    expect(all.get('other')!.kept).not.toBeNull();
    expect(actions.inc).toHaveBeenCalledWith({ action: 'kept_failure_removed' });
  });

  it('a dry run only names them', async () => {
    const { store, all } = memoryStore({ due: kept('2026-12-01T09:00:00.000Z') });
    const d = driver();
    expect(await make(store, d).releaseDue([...all.values()], true, NOW)).toEqual(['due']);
    expect(d.deprovision).not.toHaveBeenCalled();
    expect(all.get('due')!.kept).not.toBeNull();
  });

  it('a delete that landed meanwhile keeps its status; one that cannot be removed now is tried again next pass', async () => {
    const { store, all } = memoryStore({ deleting: kept('2026-12-01T09:00:00.000Z'), stuck: kept('2026-12-01T09:00:00.000Z') });
    const records = [...all.values()];
    all.set('deleting', { ...all.get('deleting')!, status: 'Deleting' });
    const d = driver();
    d.deprovision.mockImplementation(async (r: InstanceRecord) => {
      if (r.id === 'stuck') throw new Error('409 in use');
    });
    expect(await make(store, d).releaseDue(records, false, NOW)).toEqual(['deleting']);
    expect(all.get('deleting')!.status).toBe('Deleting');
    expect(all.get('stuck')!.kept).not.toBeNull();
  });
});
