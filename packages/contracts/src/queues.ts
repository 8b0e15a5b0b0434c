/**
 * Queue names are a wire format: renaming one is a migration.
 * Each entry carries the BullMQ job options its producer must use.
 */
export const QUEUES = {
  build: 'codebay-build',
  provision: 'codebay-provision',
  deprovision: 'codebay-deprovision',
} as const;

export type QueueKey = keyof typeof QUEUES;
export type QueueName = (typeof QUEUES)[QueueKey];

/** Fixed job ids make enqueueing idempotent: the same instance never gets two live jobs of one kind. */
export const jobIds = {
  build: (instanceId: string) => `build-${instanceId}`,
  provision: (instanceId: string) => `provision-${instanceId}`,
  deprovision: (instanceId: string) => `deprovision-${instanceId}`,
} as const satisfies Record<QueueKey, (id: string) => string>;

export interface JobPolicy {
  attempts: number;
  backoff: { type: 'exponential'; delay: number };
  removeOnComplete: { age: number; count: number };
  removeOnFail: { age: number; count: number };
}

const keep = { removeOnComplete: { age: 86_400, count: 1_000 }, removeOnFail: { age: 7 * 86_400, count: 5_000 } };

export const JOB_POLICIES: Record<QueueKey, JobPolicy> = {
  build: { attempts: 3, backoff: { type: 'exponential', delay: 5_000 }, ...keep },
  provision: { attempts: 5, backoff: { type: 'exponential', delay: 2_000 }, ...keep },
  deprovision: { attempts: 8, backoff: { type: 'exponential', delay: 2_000 }, ...keep },
};
