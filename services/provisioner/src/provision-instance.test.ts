import { PermanentError, launchConfigSchema, type InstanceRecord, type InstanceStatus } from '@codebay/contracts';
import type { InstanceStore, Logger } from '@codebay/platform';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import type { KeptFailures } from './kept-failures.ts';
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

const make = (store: InstanceStore, driver: ReturnType<typeof failingDriver>, keptFailures?: Pick<KeptFailures, 'keepOrRemove'>) =>
  new ProvisionInstance({
    store,
    driver: driver as unknown as RuntimeDriver,
    logger: { info: vi.fn(), warn: vi.fn() } as unknown as Logger,
    duration: new Histogram({ name: 'd', help: 'd', labelNames: ['outcome'], registers: [new Registry()] }),
    keptFailures,
  });

const KEPT = { until: '2026-12-01T10:10:00.000Z', by: 'docker:codebay' };
const keeping = () => ({ keepOrRemove: vi.fn(async () => KEPT) });

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

  it('keeps a new instance’s failed container for inspection and says until when on the record', async () => {
    const { store, current } = memoryStore({ status: 'Built', runningAt: null });
    const driver = failingDriver();
    const kept = keeping();
    await expect(make(store, driver, kept).run({ instanceId: 'i1', attempt: 2, maxAttempts: 2, signal: new AbortController().signal })).rejects.toThrow(
      'image not found',
    );
    expect(current()).toMatchObject({ status: 'Failed', kept: KEPT });
    expect(kept.keepOrRemove).toHaveBeenCalledOnce();
    expect(driver.deprovision).not.toHaveBeenCalled();
  });

  it('keeps nothing between attempts: the next attempt replaces the container', async () => {
    const { store, current } = memoryStore({ status: 'Built', runningAt: null });
    const driver = failingDriver();
    driver.provision.mockRejectedValueOnce(new Error('daemon hiccup'));
    const kept = keeping();
    await expect(make(store, driver, kept).run({ instanceId: 'i1', attempt: 1, maxAttempts: 2, signal: new AbortController().signal })).rejects.toThrow(
      'daemon hiccup',
    );
    expect(current().status).toBe('Provisioning');
    expect(kept.keepOrRemove).not.toHaveBeenCalled();
    expect(driver.deprovision).not.toHaveBeenCalled();
  });

  it('a job settled after stalling: Failed first, then kept', async () => {
    const { store, current } = memoryStore({ status: 'Provisioning', runningAt: null });
    const driver = failingDriver();
    const statusWhenKept: string[] = [];
    const kept = {
      keepOrRemove: vi.fn(async () => {
        statusWhenKept.push(current().status);
        return KEPT;
      }),
    };
    await make(store, driver, kept).settleFinalFailure('i1', 'job stalled more than allowable limit');
    expect(statusWhenKept).toEqual(['Failed']);
    expect(current()).toMatchObject({ status: 'Failed', kept: KEPT, failure: { phase: 'provision' } });
  });

  it('keeps nothing of an instance that ran before (it keeps everything until deleted)', async () => {
    const { store, current } = memoryStore({ status: 'Provisioning', runningAt: '2026-12-01T09:00:00.000Z' });
    const kept = keeping();
    const useCase = make(store, failingDriver(), kept);
    await expect(useCase.run({ instanceId: 'i1', attempt: 1, maxAttempts: 1, signal: new AbortController().signal })).rejects.toThrow();
    await useCase.settleFinalFailure('i1', 'stalled');
    expect(kept.keepOrRemove).not.toHaveBeenCalled();
    expect(current().kept ?? null).toBeNull();
  });
});

describe('ProvisionInstance, with the image’s hostRequirements', () => {
  const resources = { storage_size: '2Gi', shared_storage_size: '5Gi', memory_request: '512Mi', memory_limit: '2Gi', cpu_request: '200m', cpu_limit: '1000m' };
  const maxResources = { cpu: '4000m', memory: '8Gi', storage: '100Gi' };
  const launch = (hostRequirements: NonNullable<InstanceRecord['launch']>['hostRequirements']) => ({ ...launchConfigSchema.parse({}), hostRequirements });
  const runningDriver = () => ({
    provision: vi.fn(async (_r: InstanceRecord) => ({ runtime: { driver: 'docker' as const, endpoint: 'http://x' }, workspaceSeeded: false })),
    waitReady: vi.fn(async () => undefined),
    deprovision: vi.fn(async () => undefined),
  });

  /** One attempt (the only one) of instance i1 with this driver. */
  const provisionOnce = (store: Parameters<typeof make>[0], driver: ReturnType<typeof runningDriver>) =>
    make(store, driver as unknown as ReturnType<typeof failingDriver>).run({
      instanceId: 'i1',
      attempt: 1,
      maxAttempts: 1,
      signal: new AbortController().signal,
    });

  it('raises the resources to them: in the record with the claim and a warning naming each field, and in what the runtime is given', async () => {
    const config = { property: 'runArgs', message: 'runArgs: ignored' };
    const { store, current } = memoryStore({
      status: 'Built',
      resources,
      maxResources,
      warnings: [config],
      launch: launch({ memoryBytes: 3 * 2 ** 30, gpu: 'none' }),
    });
    const driver = runningDriver();
    await provisionOnce(store, driver);
    const raised = { ...resources, memory_request: '3Gi', memory_limit: '3Gi' };
    expect(current()).toMatchObject({ status: 'Running', resources: raised });
    expect(current().warnings).toEqual([
      config,
      { property: 'hostRequirements', message: expect.stringMatching(/raised memory_request 512Mi → 3Gi, memory_limit 2Gi → 3Gi$/) },
    ]);
    expect(driver.provision.mock.calls[0]![0].resources).toEqual(raised);
  });

  it('above what the operator allowed: Failed naming it, and nothing provisioned', async () => {
    const { store, current } = memoryStore({ status: 'Cached', resources, maxResources, launch: launch({ memoryBytes: 64 * 2 ** 30, gpu: 'none' }) });
    const driver = runningDriver();
    await provisionOnce(store, driver);
    expect(current()).toMatchObject({ status: 'Failed', resources, failure: { phase: 'provision' } });
    expect(current().failure!.reason).toMatch(
      /^hostRequirements\.memory: the image's metadata .* asks for 64Gi, and this deployment gives an instance at most 8Gi of memory/,
    );
    expect(driver.provision).not.toHaveBeenCalled();
  });

  it('leaves a record made before maxResources as it is', async () => {
    const { store, current } = memoryStore({ status: 'Built', resources, launch: launch({ memoryBytes: 64 * 2 ** 30, gpu: 'none' }) });
    const driver = runningDriver();
    await provisionOnce(store, driver);
    expect(current()).toMatchObject({ status: 'Running', resources });
  });
});
