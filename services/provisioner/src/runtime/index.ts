import type { Logger, Docker } from '@codebay/platform';
import { ArtifactStore } from '@codebay/platform';
import { KubeConfig } from '@kubernetes/client-node';
import type { ProvisionerConfig } from '../config.ts';
import { EditorBundles } from '../editor-bundles.ts';
import type { RuntimeInventory } from '../reconciler.ts';
import { DockerDriver } from './docker-driver.ts';
import type { RuntimeDriver } from './driver.ts';
import { KubernetesDriver } from './kubernetes-driver.ts';

export interface Runtime {
  driver: RuntimeDriver;
  /** Present where the runtime can list what it holds (Kubernetes). */
  inventory?: RuntimeInventory;
  kubernetes?: KubernetesDriver;
  /** The editor bundles instances start with, where the runtime sees them (Docker: a folder). */
  bundles?: EditorBundles;
}

/** Builds the configured runtime driver (for the provisioner and the reconcile command). */
export function createRuntime(config: ProvisionerConfig, deps: { logger: Logger; docker: Docker }): Runtime {
  if (config.CODEBAY_RUNTIME === 'kubernetes') {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    const driver = new KubernetesDriver({
      kc,
      layout: {
        namespace: config.KUBERNETES_NAMESPACE,
        platformNamespace: config.PLATFORM_NAMESPACE,
        gatewayInternalUrl: config.GATEWAY_INTERNAL_URL,
        imagePullSecret: config.IMAGE_PULL_SECRET,
        editorImageRepo: config.CODEBAY_EDITOR_IMAGE_REPO ?? `${config.REGISTRY}/codebay-editor`,
        storageClass: config.STORAGE_CLASS,
        sharedAccessMode: config.SHARED_ACCESS_MODE,
        runAsUser: config.INSTANCE_RUN_AS_USER,
        egressExcept: config.INSTANCE_EGRESS_EXCEPT,
      },
      logger: deps.logger,
      readyTimeoutMs: config.READY_TIMEOUT_SECONDS * 1000,
      key: config.CODEBAY_SECRET_KEY,
    });
    return { driver, inventory: driver, kubernetes: driver };
  }
  const bundles = new EditorBundles(config.CODEBAY_EDITOR_ROOT);
  const driver = new DockerDriver({
    docker: deps.docker,
    bundles,
    artifacts: new ArtifactStore(config.CODEBAY_ARTIFACT_DIR),
    logger: deps.logger,
    options: {
      deployment: config.CODEBAY_DEPLOYMENT,
      publishHost: config.EDITOR_PUBLISH_HOST,
      launcherDir: config.CODEBAY_LAUNCHER_DIR,
      readyTimeoutMs: config.READY_TIMEOUT_SECONDS * 1000,
      startCpuMillis: config.EDITOR_START_CPU,
      key: config.CODEBAY_SECRET_KEY,
      registry: { address: config.REGISTRY, auth: config.REGISTRY_PULL_AUTH },
    },
  });
  return { driver, bundles };
}
