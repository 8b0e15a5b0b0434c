import { PermanentError, TransientError, type InstanceRecord, type RuntimeInfo } from '@codebay/contracts';
import { instanceSecrets, type Logger, type PlatformKey } from '@codebay/platform';
import {
  AppsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  Log,
  PatchStrategy,
  Watch,
  type KubeConfig,
  VersionApi,
  type KubernetesObject,
  type V1Deployment,
  type V1Pod,
} from '@kubernetes/client-node';
import type { RuntimeInventory } from '../reconciler.ts';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Provisioned, RuntimeDriver } from './driver.ts';
import { readTimestampedLines } from './log-lines.ts';
import { podVerdict, type PodVerdict } from './pod-verdict.ts';
import {
  EDITOR_PORT,
  FIELD_MANAGER,
  KEEP_FIELD_MANAGER,
  LABELS,
  instanceObjects,
  k8sNames,
  keptObjects,
  rootObject,
  sharedVolume,
  type KubernetesLayout,
} from './kubernetes-objects.ts';

function statusCode(err: unknown): number | undefined {
  const e = err as { code?: number; statusCode?: number; response?: { statusCode?: number } };
  return e.code ?? e.statusCode ?? e.response?.statusCode;
}

/** Kubernetes API errors: 4xx (but 409/429) are the request's fault; 5xx, 409, 429 and network errors may pass. */
function classifyApiError(err: unknown, what: string): Error {
  const code = statusCode(err);
  const body = (err as { body?: unknown }).body;
  const detail = typeof body === 'string' ? body : body ? JSON.stringify(body) : (err as Error).message;
  const message = `${what}: ${code ?? 'network error'} ${detail}`.slice(0, 2_000);
  if (code !== undefined && code >= 400 && code < 500 && code !== 409 && code !== 429) return new PermanentError(message);
  return new TransientError(message);
}

export interface KubernetesDriverDeps {
  /** Where the cluster is and who the driver is there (KUBECONFIG, or the in-cluster service account). */
  kc: KubeConfig;
  layout: KubernetesLayout;
  logger: Logger;
  /** How long an instance's editor has to answer after its objects exist, ms. */
  readyTimeoutMs: number;
  /** Derives each instance's editor secret and seeding token. */
  key: PlatformKey;
}

/**
 * The Kubernetes runtime: per instance a root ConfigMap owning a Secret, a workspace
 * PVC, a Deployment, a Service and a NetworkPolicy (deleting the root
 * garbage-collects the rest), plus the user's shared PVC, which no instance owns.
 * Objects are server-side applied with one field manager, so a job run twice (or
 * resumed after a crash between two objects) ends with exactly one of each.
 */
export class KubernetesDriver implements RuntimeDriver, RuntimeInventory {
  private readonly objects: KubernetesObjectApi;
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  /** API requests this driver made (for the benchmark's requests-per-instance). */
  requests = 0;

  private readonly kc: KubeConfig;
  private readonly layout: KubernetesLayout;
  private readonly logger: Logger;
  private readonly readyTimeoutMs: number;
  private readonly key: PlatformKey;

  constructor(deps: KubernetesDriverDeps) {
    const { kc } = deps;
    ({ kc: this.kc, layout: this.layout, logger: this.logger, readyTimeoutMs: this.readyTimeoutMs, key: this.key } = deps);
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
  }

  private async apply<T extends KubernetesObject>(obj: T, manager = FIELD_MANAGER): Promise<T> {
    this.requests++;
    try {
      return await this.objects.patch(obj, undefined, undefined, manager, true, PatchStrategy.ServerSideApply);
    } catch (err) {
      throw classifyApiError(err, `apply ${obj.kind} ${obj.metadata?.name}`);
    }
  }

  /** Resolves when the API server answers (`/version`); for `codebay_dependency_up{dependency="kubernetes"}`. */
  async ping(): Promise<void> {
    await this.kc.makeApiClient(VersionApi).getCode();
  }

  async provision(record: InstanceRecord): Promise<Provisioned> {
    if (!record.devcontainerImage && !record.baseImage) throw new PermanentError('instance has no image');
    const root = await this.apply(rootObject(record, this.layout));
    const owner = { name: root.metadata!.name!, uid: root.metadata!.uid! };
    await this.ensureShared(record);
    const o = instanceObjects(record, this.layout, owner, {
      editorSecret: instanceSecrets.editor(this.key, record.id),
      seedToken: instanceSecrets.seed(this.key, record.id),
    });
    // The NetworkPolicy before the pod can start; storage and secret before the Deployment that mounts them.
    for (const obj of [o.networkPolicy, o.secret, o.workspace, o.deployment, o.service] as KubernetesObject[]) await this.apply(obj);
    this.logger.info({ instanceId: record.id, namespace: this.layout.namespace }, 'instance objects applied');
    return {
      runtime: {
        driver: 'kubernetes',
        namespace: this.layout.namespace,
        endpoint: `http://${k8sNames.service(record.id)}.${this.layout.namespace}.svc.cluster.local:${EDITOR_PORT}`,
      },
      // The instance fetches its upload itself on first start (CODEBAY_SEED_URL): the record's flag stays as it is.
      workspaceSeeded: record.workspaceSeeded,
    };
  }

  /** The shared PVC is created once with the first request's size; later instances only reuse it. */
  private async ensureShared(record: InstanceRecord): Promise<void> {
    const pvc = sharedVolume(record, this.layout);
    this.requests++;
    try {
      await this.core.createNamespacedPersistentVolumeClaim({ namespace: this.layout.namespace, body: pvc });
    } catch (err) {
      if (statusCode(err) !== 409) throw classifyApiError(err, `create PersistentVolumeClaim ${pvc.metadata?.name}`);
    }
  }

  /** Why the Deployment cannot make its pod (quota, admission), if it says so. */
  private async replicaFailure(id: string): Promise<string | undefined> {
    this.requests++;
    const dep: V1Deployment = await this.apps.readNamespacedDeployment({ name: k8sNames.deployment(id), namespace: this.layout.namespace });
    const failure = dep.status?.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
    return failure ? `${failure.reason ?? 'ReplicaFailure'}: ${failure.message ?? ''}`.trim() : undefined;
  }

  /**
   * The instance's editor pod once its container has started (the newest, when a rollout makes
   * a second), polled every second until `deadline` (ms since the epoch); undefined past it.
   */
  private async startedPod(id: string, deadline: number, signal: AbortSignal): Promise<string | undefined> {
    const labelSelector = `${LABELS.instance}=${id},${LABELS.component}=editor`;
    while (Date.now() < deadline && !signal.aborted) {
      this.requests++;
      const pods = await this.core.listNamespacedPod({ namespace: this.layout.namespace, labelSelector }).catch(() => undefined);
      const started = (pods?.items ?? [])
        .filter((p) => p.status?.containerStatuses?.some((c) => c.name === 'editor' && (c.state?.running || c.state?.terminated)))
        .sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')));
      if (started[0]?.metadata?.name) return started[0].metadata.name;
      await sleep(1_000, undefined, { signal }).catch(() => undefined);
    }
    return undefined;
  }

  /**
   * Follows the editor container's log of the instance's pod (`GET …/pods/<pod>/log?follow&timestamps`),
   * once it started (waiting up to the readiness deadline for it). Ends with the container.
   */
  async followLog(
    record: InstanceRecord,
    _runtime: RuntimeInfo,
    since: string | undefined,
    onLine: (at: string, text: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const pod = await this.startedPod(record.id, Date.now() + this.readyTimeoutMs, signal);
    if (!pod || signal.aborted) return;
    const out = new PassThrough();
    this.requests++;
    const controller = await new Log(this.kc).log(this.layout.namespace, pod, 'editor', out, {
      follow: true,
      timestamps: true,
      ...(since ? { sinceTime: since } : {}),
    });
    const onAbort = () => {
      controller.abort();
      out.end();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await readTimestampedLines(out, since, onLine);
    } finally {
      signal.removeEventListener('abort', onAbort);
      controller.abort();
    }
  }

  /** Watches the instance's pods until one is Ready, or the reason it never will be, or the deadline. */
  async waitReady(record: InstanceRecord, _runtime: RuntimeInfo, signal: AbortSignal): Promise<void> {
    const ns = this.layout.namespace;
    const deadline = Date.now() + this.readyTimeoutMs;
    let watchAbort: AbortController | undefined;
    let poll: NodeJS.Timeout | undefined;
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    try {
      await new Promise<void>((resolve, reject) => {
        // The last reason the pod gave for waiting (the scheduler's), told if the deadline passes.
        let pending: string | undefined;
        const settle = (verdict: PodVerdict) => {
          if (!verdict) {
            pending = undefined; // scheduled since
            return;
          }
          if ('ready' in verdict) resolve();
          else if ('pending' in verdict) pending = verdict.pending;
          else reject(new PermanentError(verdict.failed));
        };
        timer = setTimeout(
          () => reject(new PermanentError(`the instance was not ready within ${this.readyTimeoutMs / 1000} s${pending ? ` (${pending})` : ''}`)),
          deadline - Date.now(),
        );
        signal.addEventListener('abort', () => reject(new TransientError('provisioning was interrupted')), { once: true });
        const labelSelector = `${LABELS.instance}=${record.id},${LABELS.component}=editor`;
        const startWatch = () => {
          if (finished) return;
          this.requests++;
          new Watch(this.kc)
            .watch(
              `/api/v1/namespaces/${ns}/pods`,
              { labelSelector },
              (phase, pod: V1Pod) => {
                if (phase !== 'DELETED') settle(podVerdict(pod));
              },
              (err) => {
                // The API server closes watches now and then: start again unless done.
                if (!finished && Date.now() < deadline && !signal.aborted) setTimeout(startWatch, err ? 1_000 : 0);
              },
            )
            .then((ac) => {
              watchAbort = ac;
              if (finished) ac.abort();
            })
            .catch(() => setTimeout(startWatch, 1_000));
        };
        startWatch();
        // Quota and admission refusals never make a pod: the Deployment says so instead. A pod
        // stuck Unschedulable sends no new events: look at it again now and then.
        let rounds = 0;
        const check = () => {
          rounds++;
          this.replicaFailure(record.id)
            .then((reason) => (reason ? reject(new PermanentError(reason)) : undefined))
            .catch((err) => (statusCode(err) === 404 ? reject(new TransientError('the Deployment vanished')) : undefined));
          if (rounds % 5 === 0) {
            this.requests++;
            this.core
              .listNamespacedPod({ namespace: ns, labelSelector })
              .then((pods) => pods.items.forEach((pod) => settle(podVerdict(pod))))
              .catch(() => undefined);
          }
        };
        poll = setInterval(check, 2_000);
        void check();
      });
    } finally {
      finished = true;
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      watchAbort?.abort();
    }
  }

  /** `kubernetes:<namespace>`: failed instances this driver keeps (see RuntimeDriver.keeper). */
  get keeper(): string {
    return `kubernetes:${this.layout.namespace}`;
  }

  /**
   * Keeps a failed instance's objects for inspection (RuntimeDriver.keepFailed) with nothing of it
   * running. A pod cannot be stopped, and one kept as it was would hold its node's CPU and memory
   * (or run its failing start again and again) for the whole keep, outside the user's instance
   * limit (a Failed instance does not count): so the Deployment is scaled to 0 — its pod goes,
   * while its events (the API server's event TTL, an hour by default), the Deployment (its
   * conditions and pod template), the workspace PVC, Secret, Service and NetworkPolicy stay; the
   * pod's log is in the instance log. An operator may scale it to 1 meanwhile to look at the pod.
   * The root is annotated with the deadline (`codebay.dev/kept-until`). False when there is no root.
   */
  async keepFailed(record: InstanceRecord, until: string): Promise<boolean> {
    const ns = this.layout.namespace;
    const exists = async (read: Promise<unknown>, what: string) => {
      this.requests++;
      try {
        await read;
        return true;
      } catch (err) {
        if (statusCode(err) === 404) return false;
        throw classifyApiError(err, `read ${what}`);
      }
    };
    if (!(await exists(this.core.readNamespacedConfigMap({ name: k8sNames.root(record.id), namespace: ns }), 'instance root'))) return false;
    const kept = keptObjects(record, this.layout, until);
    await this.apply(kept.root);
    if (await exists(this.apps.readNamespacedDeployment({ name: k8sNames.deployment(record.id), namespace: ns }), 'Deployment')) {
      await this.apply(kept.scaledDown, KEEP_FIELD_MANAGER);
    }
    return true;
  }

  /** Deletes the root; the garbage collector takes every object it owns. */
  async deprovision(record: InstanceRecord): Promise<void> {
    const ns = this.layout.namespace;
    this.requests++;
    try {
      await this.core.deleteNamespacedConfigMap({ name: k8sNames.root(record.id), namespace: ns, propagationPolicy: 'Background' });
    } catch (err) {
      if (statusCode(err) !== 404) throw classifyApiError(err, 'delete instance root');
    }
  }

  // --- RuntimeInventory, for the reconciler -------------------------------------------

  /** Kinds an instance may leave behind (Secrets are owned by the root and not listable by design). */
  private static readonly INVENTORY = [
    ['v1', 'ConfigMap'],
    ['v1', 'PersistentVolumeClaim'],
    ['v1', 'Service'],
    ['apps/v1', 'Deployment'],
    ['networking.k8s.io/v1', 'NetworkPolicy'],
  ] as const;

  private async labelled(selector: string): Promise<KubernetesObject[]> {
    const out: KubernetesObject[] = [];
    for (const [apiVersion, kind] of KubernetesDriver.INVENTORY) {
      this.requests++;
      const list = await this.objects.list(apiVersion, kind, this.layout.namespace, undefined, undefined, undefined, undefined, selector);
      for (const item of list.items) out.push({ ...item, apiVersion, kind });
    }
    return out;
  }

  async instanceIds(): Promise<Set<string>> {
    const objs = await this.labelled(`${LABELS.managedBy}=codebay,${LABELS.instance}`);
    return new Set(objs.map((o) => o.metadata?.labels?.[LABELS.instance]).filter((v): v is string => !!v));
  }

  holds(runtime: RuntimeInfo): boolean {
    return runtime.driver === 'kubernetes' && runtime.namespace === this.layout.namespace;
  }

  async rootIds(): Promise<Set<string>> {
    this.requests++;
    const list = await this.core.listNamespacedConfigMap({ namespace: this.layout.namespace, labelSelector: `${LABELS.component}=root,${LABELS.instance}` });
    return new Set(list.items.map((c) => c.metadata?.labels?.[LABELS.instance]).filter((v): v is string => !!v));
  }

  async removeAll(instanceId: string): Promise<void> {
    for (const obj of await this.labelled(`${LABELS.instance}=${instanceId}`)) {
      this.requests++;
      try {
        await this.objects.delete(obj, undefined, undefined, undefined, undefined, 'Background');
      } catch (err) {
        if (statusCode(err) !== 404) throw classifyApiError(err, `delete ${obj.kind} ${obj.metadata?.name}`);
      }
    }
  }
}
