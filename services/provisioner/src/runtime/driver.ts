import type { InstanceRecord, RuntimeInfo } from '@codebay/contracts';

/** Where instances run. Each call is idempotent: running it twice leaves one of everything. */
export interface RuntimeDriver {
  /** Creates (or re-creates) everything the instance needs and starts it. */
  provision(record: InstanceRecord, signal: AbortSignal): Promise<RuntimeInfo>;
  /** Resolves once the editor answers; throws with the reason when it never will. */
  waitReady(record: InstanceRecord, runtime: RuntimeInfo, signal: AbortSignal): Promise<void>;
  /** Removes everything the instance owns except the user's shared storage. */
  deprovision(record: InstanceRecord): Promise<void>;
  /** Anything to ready before the first job (optional). */
  start?(): Promise<void>;
}
