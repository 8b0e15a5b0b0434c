import { TransientError, newInstanceRecord, resourcesSchema } from '@codebay/contracts';
import { PlatformKey, type Logger } from '@codebay/platform';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { describe, expect, it, vi } from 'vitest';
import { KubernetesDriver } from './kubernetes-driver.ts';
import { FIELD_MANAGER, KEEP_FIELD_MANAGER, KEPT_UNTIL_ANNOTATION, k8sNames, type KubernetesLayout } from './kubernetes-objects.ts';

const layout: KubernetesLayout = {
  namespace: 'vscode-system',
  platformNamespace: 'codebay-system',
  gatewayInternalUrl: 'http://gw:8080',
  editorImageRepo: 'localhost:32000/codebay-editor',
  sharedAccessMode: 'ReadWriteMany',
  runAsUser: 1000,
};
const record = newInstanceRecord({
  id: 'u1-abcdefgh',
  userId: 'u1',
  source: 'simple',
  accessTokenHash: 'h',
  accessTokenSealed: 's',
  baseImage: 'debian:bookworm',
  artifact: null,
  resources: resourcesSchema.parse({}),
  vscodeVersion: '1.139.1',
});
const UNTIL = '2026-12-01T10:10:00.000Z';
const notFound = () => Object.assign(new Error('not found'), { code: 404 });

/**
 * A driver whose API clients say whether the root and the Deployment exist (`exists`) and record
 * every apply: the library's clients replaced on the instance (no cluster in a unit test).
 */
function driverWith(exists: { root: boolean | Error; deployment: boolean }) {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'http://127.0.0.1:9' }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const driver = new KubernetesDriver({
    kc,
    layout,
    logger: { info: vi.fn(), warn: vi.fn() } as unknown as Logger,
    readyTimeoutMs: 1_000,
    key: new PlatformKey(Buffer.alloc(32, 1).toString('base64')),
  });
  const applied: { obj: KubernetesObject; manager: string }[] = [];
  const read = (present: boolean | Error) => async () => {
    if (present instanceof Error) throw present;
    if (!present) throw notFound();
    return {};
  };
  Object.assign(driver, {
    core: { readNamespacedConfigMap: vi.fn(read(exists.root)) },
    apps: { readNamespacedDeployment: vi.fn(read(exists.deployment)) },
    objects: {
      patch: vi.fn(async (obj: KubernetesObject, _pretty: unknown, _dryRun: unknown, manager: string) => {
        applied.push({ obj, manager });
        return obj;
      }),
    },
  });
  return { driver, applied };
}

describe('KubernetesDriver.keepFailed', () => {
  it('scales the Deployment to 0 (its own field manager) and annotates the root with the deadline (the provisioner’s)', async () => {
    const { driver, applied } = driverWith({ root: true, deployment: true });
    expect(driver.keeper).toBe('kubernetes:vscode-system');
    expect(await driver.keepFailed(record, UNTIL)).toBe(true);
    expect(applied.map((a) => [a.obj.kind, a.obj.metadata?.name, a.manager])).toEqual([
      ['ConfigMap', k8sNames.root(record.id), FIELD_MANAGER],
      ['Deployment', k8sNames.deployment(record.id), KEEP_FIELD_MANAGER],
    ]);
    expect(applied[0]!.obj.metadata?.annotations).toEqual({ [KEPT_UNTIL_ANNOTATION]: UNTIL });
    expect((applied[1]!.obj as KubernetesObject & { spec: unknown }).spec).toEqual({ replicas: 0 });
  });

  it('keeps the root alone when the Deployment was never made, and nothing when the root was not', async () => {
    const noDeployment = driverWith({ root: true, deployment: false });
    expect(await noDeployment.driver.keepFailed(record, UNTIL)).toBe(true);
    expect(noDeployment.applied.map((a) => a.obj.kind)).toEqual(['ConfigMap']);
    const noRoot = driverWith({ root: false, deployment: true });
    expect(await noRoot.driver.keepFailed(record, UNTIL)).toBe(false);
    expect(noRoot.applied).toEqual([]);
  });

  it('an API server that fails the read: a transient error (the failure is then removed at once instead)', async () => {
    const { driver, applied } = driverWith({ root: Object.assign(new Error('etcd timeout'), { code: 503 }), deployment: true });
    await expect(driver.keepFailed(record, UNTIL)).rejects.toBeInstanceOf(TransientError);
    expect(applied).toEqual([]);
  });
});
