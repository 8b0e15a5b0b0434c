import { JOBS, type JobCatalog } from '@codebay/contracts';
import { BuildLogStream } from './build-log.ts';
import type { CommonConfig } from './config.ts';
import { createContainer, provide, resolve, token, type DependencyContainer } from './di.ts';
import { InstanceStore } from './instance-store.ts';
import { JobQueues } from './jobs.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetricsRegistry, type Registry } from './metrics.ts';
import { createRedis, type Redis } from './redis.ts';

/** Tokens of what every service's container holds (see serviceContainer); each service's own tokens spread these. */
export const PLATFORM = {
  logger: token<Logger>('logger'),
  redis: token<Redis>('redis'),
  metrics: token<Registry>('metrics registry'),
  store: token<InstanceStore>('instance store'),
  logs: token<BuildLogStream>('build log stream'),
  catalog: token<JobCatalog>('job catalog'),
  jobs: token<JobQueues>('job queues'),
};

/**
 * A service's container with what every service holds, each made once on first use: its
 * logger and metrics registry (named `service`), its Redis connection (`codebay-<service>`),
 * the instance store, the build log streams, the job catalog (`catalog`: the operator's
 * settings applied; `JOBS` by default) and the job queues (their depths are the gateway's to report).
 */
export function serviceContainer(service: string, config: CommonConfig, catalog: JobCatalog = JOBS): DependencyContainer {
  const c = createContainer();
  provide(c, PLATFORM.logger, () => createLogger(service, config.LOG_LEVEL));
  provide(c, PLATFORM.redis, () => createRedis(config.REDIS_URL, `codebay-${service}`));
  provide(c, PLATFORM.metrics, () => createMetricsRegistry(service));
  provide(c, PLATFORM.store, () => new InstanceStore(resolve(c, PLATFORM.redis)));
  provide(c, PLATFORM.logs, () => new BuildLogStream(resolve(c, PLATFORM.redis)));
  provide(c, PLATFORM.catalog, () => catalog);
  provide(c, PLATFORM.jobs, () => new JobQueues(resolve(c, PLATFORM.redis), config.CODEBAY_QUEUE_PREFIX, catalog));
  return c;
}
