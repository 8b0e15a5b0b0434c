import type { InstanceRecord, InstanceStatus } from '@codebay/contracts';
import type { Docker, InstanceStore, JobQueues, Logger } from '@codebay/platform';
import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { DockerReconciler } from './docker-reconciler.ts';

/** A record store of one class's needs (get, patch, transition, allIds, many), in memory. */
function memoryStore(records: Record<string, Partial<InstanceRecord>>) {
  const all = new Map(Object.entries(records).map(([id, r]) => [id, { id, ...r } as InstanceRecord]));
  return {
    all,
    store: {
      get: async (id: string) => all.get(id) ?? null,
      allIds: async () => [...all.keys()],
      many: async (ids: string[]) => ids.flatMap((id) => all.get(id) ?? []),
      patch: async (id: string, patch: Partial<InstanceRecord>) => {
        all.set(id, { ...all.get(id)!, ...patch });
        return true;
      },
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
const running = (containerId: string, port = '40001'): Partial<InstanceRecord> => ({
  status: 'Running',
  runtime: { driver: 'docker', endpoint: `http://127.0.0.1:${port}`, containerId },
});

/** A Docker client whose containers are the given inspect answers (404 when absent). */
function fakeDocker(containers: Record<string, { Running: boolean; Restarting?: boolean; ExitCode?: number; port?: string }>, getEvents = vi.fn()) {
  return {
    getEvents,
    getContainer: (id: string) => ({
      inspect: async () => {
        const c = containers[id];
        if (!c) throw Object.assign(new Error('no such container'), { statusCode: 404 });
        return {
          State: { Running: c.Running, Restarting: c.Restarting ?? false, ExitCode: c.ExitCode ?? 0 },
          NetworkSettings: { Ports: { '8080/tcp': c.port ? [{ HostIp: '127.0.0.1', HostPort: c.port }] : null } },
        };
      },
    }),
  } as unknown as Docker;
}

const make = (docker: Docker, store: InstanceStore, enqueue = vi.fn(async () => undefined)) =>
  new DockerReconciler({
    docker,
    store,
    jobs: { enqueue } as unknown as Pick<JobQueues, 'enqueue'>,
    logger,
    deployment: 'codebay',
    publishHost: '127.0.0.1',
    editorPort: 8080,
    sweepIntervalMs: 0,
  });

describe('DockerReconciler', () => {
  it('leaves a running editor alone, and follows it to another host port', async () => {
    const { store, all } = memoryStore({ a: running('ca'), b: running('cb') });
    const r = make(fakeDocker({ ca: { Running: true, port: '40001' }, cb: { Running: true, port: '40777' } }), store);
    expect(await r.check('a')).toBe('running');
    expect(await r.check('b')).toBe('endpoint-updated');
    expect(all.get('b')!.runtime!.endpoint).toBe('http://127.0.0.1:40777');
  });

  it('waits while Docker restarts a container; a stopped one goes Provisioning with a warning and a provision job', async () => {
    const enqueue = vi.fn(async () => undefined);
    const { store, all } = memoryStore({ a: running('ca'), b: running('cb') });
    const r = make(fakeDocker({ ca: { Running: true, Restarting: true }, cb: { Running: false, ExitCode: 137 } }), store, enqueue);
    expect(await r.check('a')).toBe('restarting');
    expect(await r.check('b')).toBe('reprovisioning');
    expect(all.get('b')).toMatchObject({ status: 'Provisioning', warning: expect.stringMatching(/stopped at .* \(exit code 137\)/) });
    expect(enqueue).toHaveBeenCalledWith('provision', { instanceId: 'b' });
    expect(all.get('a')!.status).toBe('Running');
  });

  it('marks an instance whose container was removed Failed, and judges only Running Docker records', async () => {
    const { store, all } = memoryStore({
      gone: running('cx'),
      queued: { status: 'Queued', runtime: null },
      k8s: { status: 'Running', runtime: { driver: 'kubernetes', endpoint: 'http://x' } },
    });
    const r = make(fakeDocker({}), store);
    expect(await r.check('gone')).toBe('vanished');
    expect(all.get('gone')).toMatchObject({ status: 'Failed', failure: { phase: 'provision', reason: 'the editor container was removed' } });
    expect(await r.check('queued')).toBe('skipped');
    expect(await r.check('k8s')).toBe('skipped');
    expect(await r.check('unknown')).toBe('skipped');
  });

  it('reconnects to the event stream with backoff while the daemon is away, sweeping once it answers, and reacts to events', async () => {
    vi.useFakeTimers();
    try {
      const events = new PassThrough();
      const getEvents = vi.fn().mockRejectedValueOnce(new Error('connect ENOENT')).mockRejectedValueOnce(new Error('connect ENOENT')).mockResolvedValue(events);
      const containers: Record<string, { Running: boolean; ExitCode?: number; port?: string }> = { ca: { Running: true, port: '40001' } };
      const { store, all } = memoryStore({ a: running('ca') });
      const r = make(fakeDocker(containers, getEvents), store);
      await r.start();
      expect(getEvents).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(1_000);
      expect(getEvents).toHaveBeenCalledTimes(2);
      await vi.advanceTimersByTimeAsync(1_999);
      expect(getEvents).toHaveBeenCalledTimes(2);
      await vi.advanceTimersByTimeAsync(1);
      expect(getEvents).toHaveBeenCalledTimes(3);
      // Subscribed: a `die` event of the instance's container is judged at once.
      containers.ca = { Running: false, ExitCode: 1 };
      events.write(`${JSON.stringify({ Type: 'container', Action: 'die', Actor: { ID: 'ca', Attributes: { 'codebay.instance': 'a' } } })}\n`);
      await vi.waitFor(() => expect(all.get('a')!.status).toBe('Provisioning'));
      r.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('each sweep hands every record to the kept failures, which remove the containers whose keep ended', async () => {
    const { store } = memoryStore({ a: running('ca'), f: { status: 'Failed', kept: { until: '2026-12-01T10:00:00.000Z', by: 'docker:codebay' } } });
    const releaseDue = vi.fn(async () => ['f']);
    const r = new DockerReconciler({
      docker: fakeDocker({ ca: { Running: true, port: '40001' } }),
      store,
      jobs: { enqueue: vi.fn() } as unknown as Pick<JobQueues, 'enqueue'>,
      logger,
      deployment: 'codebay',
      publishHost: '127.0.0.1',
      editorPort: 8080,
      sweepIntervalMs: 0,
      keptFailures: { releaseDue },
    });
    await r.sweep();
    expect(releaseDue).toHaveBeenCalledOnce();
    expect((releaseDue.mock.calls[0] as unknown as [InstanceRecord[]])[0].map((rec) => rec.id).sort()).toEqual(['a', 'f']);
  });
});
