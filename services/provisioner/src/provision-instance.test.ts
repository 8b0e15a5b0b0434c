import { PermanentError, type InstanceRecord, type InstanceStatus } from '@codebay/contracts';
import type { InstanceStore, Logger } from '@codebay/platform';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import { ProvisionInstance } from './provision-instance.ts';
import type { RuntimeDriver } from './runtime/driver.ts';

/** The store calls ProvisionInstance makes, in memory. */
function memoryStore(record: Partial<InstanceRecord>) {
  let current = { id: 'i1', source: 'devcontainer', ...record } as InstanceRecord;
  return {
    current: () => current,
    store: {
      get: async () => current,
      patch: async (_id: string, patch: Partial<InstanceRecord>) => {
        current = { ...current, ...patch };
        return true;
      },
      transition: async (_id: string, from: readonly InstanceStatus[], to: InstanceStatus, patch: Partial<InstanceRecord> = {}) => {
        if (!from.includes(current.status)) return { ok: false as const, current: current.status };
        current = { ...current, ...patch, status: to };
        return { ok: true as const };
      },
    } as unknown as InstanceStore,
  };
}

const failingDriver = () => ({
  provision: vi.fn(async () => {
    throw new PermanentError('image not found');
  }),
  waitReady: vi.fn(),
  deprovision: vi.fn(async () => undefined),
});

const make = (store: InstanceStore, driver: ReturnType<typeof failingDriver>) =>
  new ProvisionInstance({
    store,
    driver: driver as unknown as RuntimeDriver,
    logger: { info: vi.fn(), warn: vi.fn() } as unknown as Logger,
    duration: new Histogram({ name: 'd', help: 'd', labelNames: ['outcome'], registers: [new Registry()] }),
  });

describe('ProvisionInstance, when provisioning fails for good', () => {
  it('removes what it created for a new instance', async () => {
    const { store, current } = memoryStore({ status: 'Built', runningAt: null });
    const driver = failingDriver();
    await expect(make(store, driver).run({ instanceId: 'i1', attempt: 1, maxAttempts: 1, signal: new AbortController().signal })).rejects.toThrow(
      'image not found',
    );
    expect(current().status).toBe('Failed');
    expect(driver.deprovision).toHaveBeenCalledOnce();
  });

  it('keeps the volumes of an instance that ran before (the reconciler starting it again): only a delete removes them', async () => {
    const { store, current } = memoryStore({ status: 'Provisioning', runningAt: '2026-12-01T09:00:00.000Z' });
    const driver = failingDriver();
    const useCase = make(store, driver);
    await expect(useCase.run({ instanceId: 'i1', attempt: 1, maxAttempts: 1, signal: new AbortController().signal })).rejects.toThrow('image not found');
    expect(current()).toMatchObject({ status: 'Failed', failure: { phase: 'provision', reason: 'image not found' } });
    await useCase.settleFinalFailure('i1', 'stalled');
    expect(driver.deprovision).not.toHaveBeenCalled();
  });
});
