import { JOB_POLICIES, QUEUES, jobIds, type QueueKey } from '@codebay/contracts';
import { Queue, type ConnectionOptions } from 'bullmq';

export type CodebayQueues = Record<QueueKey, Queue>;

export function createQueues(connection: ConnectionOptions, prefix: string): CodebayQueues {
  return {
    build: new Queue(QUEUES.build, { connection, prefix }),
    provision: new Queue(QUEUES.provision, { connection, prefix }),
    deprovision: new Queue(QUEUES.deprovision, { connection, prefix }),
  };
}

/**
 * Enqueues the one job of `kind` for an instance, with the catalogue's policy and its fixed id.
 * A job of that id that already finished is removed first so a new request (a rebuild, a
 * second delete) is not swallowed by BullMQ's id deduplication; a live one is left alone.
 */
export async function enqueueInstanceJob(
  queues: CodebayQueues,
  kind: QueueKey,
  instanceId: string,
  retry?: { attempts: number; backoffMs: number },
): Promise<void> {
  const queue = queues[kind];
  const jobId = jobIds[kind](instanceId);
  const existing = await queue.getJob(jobId);
  if (existing) {
    const state = await existing.getState();
    if (state === 'completed' || state === 'failed') await existing.remove();
    else return;
  }
  const policy = JOB_POLICIES[kind];
  const attempts = retry ? Math.max(1, retry.attempts) : policy.attempts;
  const backoff = retry ? { type: 'exponential' as const, delay: retry.backoffMs } : policy.backoff;
  await queue.add(kind, { instanceId }, { jobId, attempts, backoff, removeOnComplete: policy.removeOnComplete, removeOnFail: policy.removeOnFail });
}

export async function closeQueues(queues: CodebayQueues): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}
