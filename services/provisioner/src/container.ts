import {
  BuildLogStream,
  PLATFORM,
  dockerFromHost,
  provide,
  provideValue,
  registerDependencyProbes,
  resolve,
  serviceContainer,
  token,
  type DependencyContainer,
  type Docker,
  type Token,
} from '@codebay/platform';
import { Counter, Histogram } from 'prom-client';
import type { ProvisionerConfig } from './config.ts';
import { DeprovisionInstance } from './deprovision-instance.ts';
import { InstanceLogMirror } from './instance-log.ts';
import { KeptFailures } from './kept-failures.ts';
import { ProvisionInstance } from './provision-instance.ts';
import { Reconciler } from './reconciler.ts';
import { DOCKER_EDITOR_PORT } from './runtime/docker-driver.ts';
import { DockerReconciler } from './runtime/docker-reconciler.ts';
import { createRuntime, type Runtime } from './runtime/index.ts';

/** The provisioner's own injection tokens. */
const OWN = {
  config: token<ProvisionerConfig>('provisioner config'),
  docker: token<Docker>('docker'),
  runtime: token<Runtime>('runtime'),
  provision: token<ProvisionInstance>('provision use-case'),
  deprovision: token<DeprovisionInstance>('deprovision use-case'),
  /** Only where the runtime can list what it holds (Kubernetes); resolving it elsewhere throws. */
  reconciler: token<Reconciler>('reconciler'),
  /** Docker runtime only: keeps Running records true to their editor containers. */
  dockerReconciler: token<DockerReconciler>('docker reconciler'),
  /** Instances' container logs → their instance log streams and lifecycle states. */
  instanceLogs: token<InstanceLogMirror>('instance log mirror'),
  /** The instance log streams (`codebay:instance:<id>:logs`). */
  instanceLogStream: token<BuildLogStream>('instance log stream'),
  /** Failed instances' leftovers kept for inspection (FAILED_INSTANCE_KEEP_SECONDS), then removed. */
  keptFailures: token<KeptFailures>('kept failures'),
  /** `codebay_reconcile_actions_total{action}`, shared by both reconcilers. */
  reconcileActions: token<Counter<'action'>>('reconcile actions'),
};

/** The provisioner's injection tokens: every service's (PLATFORM) and its own. */
export const T: typeof PLATFORM & typeof OWN = { ...PLATFORM, ...OWN };

/** The provisioner's composition root: adapters, the configured runtime and the use-cases, made once on first use. */
export function provisionerContainer(config: ProvisionerConfig): DependencyContainer {
  const c = serviceContainer('provisioner', config);
  const get = <V>(t: Token<V>): V => resolve(c, t);
  provideValue(c, T.config, config);
  provide(c, T.docker, () => dockerFromHost(config.DOCKER_HOST));
  provide(c, T.runtime, () => {
    const runtime = createRuntime(config, { logger: get(T.logger), docker: get(T.docker) });
    const k8s = runtime.kubernetes;
    const redis = get(T.redis);
    registerDependencyProbes(
      get(T.metrics),
      k8s ? { redis: () => redis.ping(), kubernetes: () => k8s.ping() } : { redis: () => redis.ping(), docker: () => get(T.docker).ping() },
    );
    if (k8s) {
      new Counter({
        name: 'codebay_kubernetes_requests_total',
        help: 'Kubernetes API requests made by the runtime driver',
        registers: [get(T.metrics)],
        collect() {
          this.reset();
          this.inc(k8s.requests);
        },
      });
    }
    return runtime;
  });
  provide(c, T.instanceLogStream, () => new BuildLogStream(get(T.redis), 'instance'));
  provide(
    c,
    T.instanceLogs,
    () => new InstanceLogMirror({ store: get(T.store), logs: get(T.instanceLogStream), driver: get(T.runtime).driver, logger: get(T.logger) }),
  );
  provide(
    c,
    T.provision,
    () =>
      new ProvisionInstance({
        store: get(T.store),
        driver: get(T.runtime).driver,
        logger: get(T.logger),
        instanceLogs: get(T.instanceLogs),
        keptFailures: get(T.keptFailures),
        duration: new Histogram({
          name: 'codebay_provision_duration_seconds',
          help: 'Time from claiming an instance to its editor answering, by outcome',
          labelNames: ['outcome'] as const,
          buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
          registers: [get(T.metrics)],
        }),
        timeToEditor: {
          total: new Histogram({
            name: 'codebay_time_to_editor_seconds',
            help: 'Instance queued (or created) to its editor answering, by build cache: hit, miss, none (no build)',
            labelNames: ['cache'] as const,
            buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200],
            registers: [get(T.metrics)],
          }),
          phases: new Histogram({
            name: 'codebay_instance_phase_duration_seconds',
            help: 'Time-to-editor by phase (queued, build, push, provision, editor_start) and build cache',
            labelNames: ['phase', 'cache'] as const,
            buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200],
            registers: [get(T.metrics)],
          }),
        },
      }),
  );
  provide(
    c,
    T.deprovision,
    () =>
      new DeprovisionInstance({
        store: get(T.store),
        driver: get(T.runtime).driver,
        logger: get(T.logger),
        deletedTtlSeconds: config.DELETED_RECORD_TTL_SECONDS,
        instanceLogs: get(T.instanceLogs),
      }),
  );
  provide(
    c,
    T.reconcileActions,
    () =>
      new Counter({
        name: 'codebay_reconcile_actions_total',
        help: 'What the reconcilers did: orphan_removed, vanished, reprovisioned, endpoint_updated, kept_failure_removed',
        labelNames: ['action'] as const,
        registers: [get(T.metrics)],
      }),
  );
  provide(
    c,
    T.keptFailures,
    () =>
      new KeptFailures({
        store: get(T.store),
        driver: get(T.runtime).driver,
        logger: get(T.logger),
        keepSeconds: config.FAILED_INSTANCE_KEEP_SECONDS,
        actions: get(T.reconcileActions),
      }),
  );
  provide(c, T.reconciler, () => {
    const { inventory } = get(T.runtime);
    if (!inventory) throw new Error(`the ${config.CODEBAY_RUNTIME} runtime has nothing to reconcile`);
    return new Reconciler(get(T.store), inventory, get(T.logger), get(T.reconcileActions), get(T.keptFailures));
  });
  provide(
    c,
    T.dockerReconciler,
    () =>
      new DockerReconciler({
        docker: get(T.docker),
        store: get(T.store),
        jobs: get(T.jobs),
        logger: get(T.logger),
        deployment: config.CODEBAY_DEPLOYMENT,
        publishHost: config.EDITOR_PUBLISH_HOST,
        editorPort: DOCKER_EDITOR_PORT,
        sweepIntervalMs: config.RECONCILE_INTERVAL_SECONDS * 1000,
        actions: get(T.reconcileActions),
        keptFailures: get(T.keptFailures),
      }),
  );
  return c;
}
