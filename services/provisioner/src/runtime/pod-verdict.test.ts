import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { UNSCHEDULABLE_GRACE_MS, podVerdict } from './pod-verdict.ts';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms);
const unschedulable = (message: string, sinceMs: number): V1Pod => ({
  status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: ago(sinceMs) }] },
});

describe('podVerdict', () => {
  it('ready once Running and Ready', () => {
    expect(podVerdict({ status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } }, NOW)).toEqual({ ready: true });
    expect(podVerdict({ status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] } }, NOW)).toBeUndefined();
  });

  it('a container that cannot start fails at once, with the kubelet’s reason', () => {
    const pod: V1Pod = {
      status: {
        phase: 'Pending',
        containerStatuses: [
          { name: 'editor', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'not found' } } },
        ],
      },
    };
    expect(podVerdict(pod, NOW)).toEqual({ failed: 'ImagePullBackOff: not found' });
  });

  it('a container that keeps exiting fails with its exit code and the last lines of its termination message', () => {
    const crashing = (message?: string): V1Pod => ({
      status: {
        phase: 'Running',
        containerStatuses: [
          {
            name: 'editor',
            image: 'x',
            imageID: '',
            ready: false,
            restartCount: 3,
            state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=editor pod=i-0' } },
            lastState: { terminated: { exitCode: 3, reason: 'Error', ...(message === undefined ? {} : { message }) } },
          },
        ],
      },
    });
    expect(podVerdict(crashing("starting\nError: Cannot find module '/nope.js'\n\nNode.js v20.20.2\n"), NOW)).toEqual({
      failed: "the instance exited (code 3) before the editor answered: starting | Error: Cannot find module '/nope.js' | Node.js v20.20.2",
    });
    expect(podVerdict(crashing(), NOW)).toEqual({ failed: 'the instance exited (code 3) before the editor answered' });
  });

  it('Unschedulable for want of resources waits for the caller’s deadline, however long it lasts (a pod that ends or a new node frees them)', () => {
    for (const message of [
      '0/1 nodes are available: 1 Insufficient cpu.',
      '0/3 nodes are available: 3 Insufficient memory.',
      '0/1 nodes are available: 1 Too many pods.',
    ]) {
      expect(podVerdict(unschedulable(message, 10 * 60_000), NOW)).toEqual({ pending: `Unschedulable: ${message}` });
    }
  });

  it('Unschedulable for another reason fails once it has lasted the grace period', () => {
    const message = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.";
    expect(podVerdict(unschedulable(message, UNSCHEDULABLE_GRACE_MS - 1_000), NOW)).toEqual({ pending: `Unschedulable: ${message}` });
    expect(podVerdict(unschedulable(message, UNSCHEDULABLE_GRACE_MS), NOW)).toEqual({ failed: `Unschedulable: ${message}` });
  });

  it('waiting for a volume to bind is normal', () => {
    const message = 'pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available';
    expect(podVerdict(unschedulable(message, 5 * 60_000), NOW)).toEqual({ pending: `Unschedulable: ${message}` });
  });
});
