import type { V1Pod } from '@kubernetes/client-node';
import { lastLogLines } from './log-tail.ts';

/**
 * How long an editor pod may stay Unschedulable, for a reason waiting does not fix (no node
 * matches its selector or tolerates its taints…), before its instance fails: ms.
 */
export const UNSCHEDULABLE_GRACE_MS = 20_000;

/** Container states that will not get better by waiting (kubelet's waiting reasons). */
const HOPELESS_WAITING = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'CrashLoopBackOff',
]);

/**
 * The scheduler's reasons a pod that ends or a node that is added clears (kube-scheduler's
 * NodeResourcesFit plugin: "Insufficient cpu", "Insufficient memory", "Too many pods"): during a
 * rolling restart the surge pods hold them for a while; a cluster autoscaler adds nodes for them.
 */
const WAITS_FOR_RESOURCES = /Insufficient [\w./-]+|Too many pods/;

/**
 * `ready`; `failed` with the reason, for good; `pending` with a reason worth telling if the
 * deadline passes; or undefined (nothing to say yet).
 */
export type PodVerdict = { ready: true } | { failed: string } | { pending: string } | undefined;

/**
 * What an instance's editor pod says about its instance, from the pod's conditions and container
 * states. Unschedulable for want of resources stays `pending` until the caller's deadline;
 * Unschedulable for another reason fails once it has lasted {@link UNSCHEDULABLE_GRACE_MS};
 * waiting for a volume to bind is normal at first (`pending`). A container in CrashLoopBackOff
 * fails with its last exit code and the last lines of its termination message (`the instance
 * exited (code N) before the editor answered: a | b`, as the Docker runtime says it).
 * @param now ms since the epoch
 */
export function podVerdict(pod: V1Pod, now = Date.now()): PodVerdict {
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  if (ready && pod.status?.phase === 'Running') return { ready: true };
  for (const cs of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = cs.state?.waiting;
    if (!waiting?.reason || !HOPELESS_WAITING.has(waiting.reason)) continue;
    // A container that keeps exiting: its exit code and last lines say why (the termination
    // message, which FallbackToLogsOnError fills with the log's tail), as on the Docker runtime.
    const exited = cs.lastState?.terminated;
    if (waiting.reason === 'CrashLoopBackOff' && exited) {
      const lines = lastLogLines(exited.message ?? '');
      return { failed: `the instance exited (code ${exited.exitCode}) before the editor answered${lines ? `: ${lines}` : ''}` };
    }
    return { failed: `${waiting.reason}: ${waiting.message ?? cs.image}`.trim() };
  }
  if (pod.status?.phase === 'Failed') return { failed: `pod failed: ${pod.status.reason ?? ''} ${pod.status.message ?? ''}`.trim() };
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    const reason = `Unschedulable: ${scheduled.message ?? ''}`.trim();
    const since = Date.parse(scheduled.lastTransitionTime ? String(scheduled.lastTransitionTime) : '') || now;
    if (/unbound immediate PersistentVolumeClaims/i.test(reason) || WAITS_FOR_RESOURCES.test(reason)) return { pending: reason };
    return now - since >= UNSCHEDULABLE_GRACE_MS ? { failed: reason } : { pending: reason };
  }
  return undefined;
}
