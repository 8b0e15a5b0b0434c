import type { InstanceRecord, RuntimeInfo } from '@codebay/contracts';

/** What a driver did for an instance; the provision use-case writes it on the record. */
export interface Provisioned {
  /** Where the instance runs (the gateway proxies editor traffic to `endpoint`). */
  runtime: RuntimeInfo;
  /** Whether its /workspace holds the workspace upload by now (unpacked by this or an earlier provision). */
  workspaceSeeded: boolean;
}

/**
 * Where instances run. Each call is idempotent: running it twice leaves one of everything.
 * Drivers never write instance records: they return what they did.
 */
export interface RuntimeDriver {
  /** Creates (or re-creates) everything the instance needs and starts it. */
  provision(record: InstanceRecord, signal: AbortSignal): Promise<Provisioned>;
  /**
   * Whether the runtime holds the image with exactly this ID (`sha256:…`, never a name):
   * an instance may then start from the image its builder built before the push ends.
   * Runtimes that only pull from the registry leave it out.
   */
  holdsImage?(imageId: string): Promise<boolean>;
  /** Resolves once the editor answers; throws with the reason when it never will. */
  waitReady(record: InstanceRecord, runtime: RuntimeInfo, signal: AbortSignal): Promise<void>;
  /**
   * Follows the instance container's log (stdout and stderr, in order) from `since` (an RFC 3339
   * timestamp a line of it carried; lines at or before it are left out), calling `onLine` with each
   * line's timestamp and text. Resolves when the log ends (the container stopped or is gone) or
   * `signal` aborts; rejects when the runtime cannot be asked.
   */
  followLog?(
    record: InstanceRecord,
    runtime: RuntimeInfo,
    since: string | undefined,
    onLine: (at: string, text: string) => void,
    signal: AbortSignal,
  ): Promise<void>;
  /** Removes everything the instance owns except the user's shared storage. */
  deprovision(record: InstanceRecord): Promise<void>;
  /**
   * Names what this driver keeps (`docker:<deployment>`, `kubernetes:<namespace>`): a failed
   * instance it kept is written `kept.by` it, and only this runtime's reconciler removes it.
   */
  readonly keeper?: string;
  /**
   * Keeps what a failed provisioning left, for inspection, with nothing of it running: Docker
   * stops the container (its log, filesystem, volume and network stay); Kubernetes scales the
   * Deployment to 0 (the pod cannot be stopped: see KubernetesDriver.keepFailed) and keeps the
   * other objects, the root annotated with `until`. `deprovision` removes it all later. Resolves
   * false when there is nothing to keep (the container or root was never made). Idempotent.
   */
  keepFailed?(record: InstanceRecord, until: string): Promise<boolean>;
  /** Anything to ready before the first job (optional). */
  start?(): Promise<void>;
  /** Anything to undo when the provisioner stops (optional; after the workers closed). */
  stop?(): Promise<void>;
}
