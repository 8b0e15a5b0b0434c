import {
  InstanceStore,
  JobQueues,
  createContainer,
  createLogger,
  createMetricsRegistry,
  createRedis,
  dockerFromHost,
  provide,
  provideValue,
  registerQueueDepth,
  resolve,
  token,
  type DependencyContainer,
  type Docker,
  type Logger,
  type Redis,
  type Registry,
  type Token,
} from '@codebay/platform';
import { Counter, Histogram } from 'prom-client';
import type { ProvisionerConfig } from './config.ts';
import { DeprovisionInstance } from './deprovision-instance.ts';
import { ProvisionInstance } from './provision-instance.ts';
import { Reconciler } from './reconciler.ts';
import { createRuntime, type Runtime } from './runtime/index.ts';

/** The provisioner's injection tokens. */
export const T = {
  config: token<ProvisionerConfig>('provisioner config'),
  logger: token<Logger>('logger'),
  redis: token<Redis>('redis'),
  metrics: token<Registry>('metrics registry'),
  store: token<InstanceStore>('instance store'),
  jobs: token<JobQueues>('job queues'),
  docker: token<Docker>('docker'),
  runtime: token<Runtime>('runtime'),
  provision: token<ProvisionInstance>('provision use-case'),
  deprovision: token<DeprovisionInstance>('deprovision use-case'),
  /** Only where the runtime can list what it holds (Kubernetes); resolving it elsewhere throws. */
  reconciler: token<Reconciler>('reconciler'),
};

/** The provisioner's composition root: adapters, the configured runtime and the use-cases, made once on first use. */
export function provisionerContainer(config: ProvisionerConfig): DependencyContainer {
  const c = createContainer();
  const get = <V>(t: Token<V>): V => resolve(c, t);
  provideValue(c, T.config, config);
  provide(c, T.logger, () => createLogger('provisioner', config.LOG_LEVEL));
  provide(c, T.redis, () => createRedis(config.REDIS_URL, 'codebay-provisioner'));
  provide(c, T.metrics, () => createMetricsRegistry('provisioner'));
  provide(c, T.store, () => new InstanceStore(get(T.redis)));
  provide(c, T.jobs, () => {
    const jobs = new JobQueues(get(T.redis), config.CODEBAY_QUEUE_PREFIX);
    registerQueueDepth(get(T.metrics), jobs);
    return jobs;
  });
  provide(c, T.docker, () => dockerFromHost(config.DOCKER_HOST));
  provide(c, T.runtime, () => {
    const runtime = createRuntime(config, { logger: get(T.logger), docker: get(T.docker) });
    const k8s = runtime.kubernetes;
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
  provide(
    c,
    T.provision,
    () =>
      new ProvisionInstance({
        store: get(T.store),
        driver: get(T.runtime).driver,
        logger: get(T.logger),
        duration: new Histogram({
          name: 'codebay_provision_duration_seconds',
          help: 'Time from claiming an instance to its editor answering, by outcome',
          labelNames: ['outcome'] as const,
          buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
          registers: [get(T.metrics)],
        }),
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
      }),
  );
  provide(c, T.reconciler, () => {
    const { inventory } = get(T.runtime);
    if (!inventory) throw new Error(`the ${config.CODEBAY_RUNTIME} runtime has nothing to reconcile`);
    return new Reconciler(get(T.store), inventory, get(T.logger));
  });
  return c;
}
