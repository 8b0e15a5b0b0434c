import {
  ArtifactStore,
  BuildCache,
  ExtensionSourceBoard,
  CachedBuilds,
  PLATFORM,
  RegistryClient,
  buildPolicy,
  dockerFromHost,
  registerDependencyProbes,
  jobCatalog,
  provide,
  provideValue,
  registryAuthConfig,
  registrySettings,
  resolve,
  serviceContainer,
  token,
  type DependencyContainer,
  type RegistrySettings,
  type Token,
} from '@codebay/platform';
import { Counter, Gauge, Histogram } from 'prom-client';
import { BuildInstance } from './build-instance.ts';
import { BuildLocks } from './build-lock.ts';
import type { BuilderConfig } from './config.ts';
import { DevcontainerCli } from './devcontainer-cli.ts';
import { ExtensionSource } from './extension-source.ts';
import { ExtensionSourceWatch } from './extension-source-watch.ts';
import { ImageStore } from './images.ts';
import { BuildWorkspace } from './workspace.ts';

/** The builder's own injection tokens. */
const OWN = {
  config: token<BuilderConfig>('builder config'),
  registries: token<RegistrySettings>('registry settings'),
  images: token<ImageStore>('image store'),
  build: token<BuildInstance>('build use-case'),
  sourceWatch: token<ExtensionSourceWatch>('extension source watch'),
  sourceBoard: token<ExtensionSourceBoard>('extension source board'),
};

/** The builder's injection tokens: every service's (PLATFORM) and its own. */
export const T: typeof PLATFORM & typeof OWN = { ...PLATFORM, ...OWN };

/** The builder's composition root: adapters and the build use-case, made once on first use. */
export function builderContainer(config: BuilderConfig): DependencyContainer {
  const c = serviceContainer('builder', config, jobCatalog(config));
  const get = <V>(t: Token<V>): V => resolve(c, t);
  const registries = registrySettings(config);
  provideValue(c, T.config, config);
  provideValue(c, T.registries, registries);
  provide(
    c,
    T.images,
    () =>
      new ImageStore(dockerFromHost(config.DOCKER_HOST), {
        push: registryAuthConfig(registries.push, registries.pushAuth),
        pull: registryAuthConfig(registries.pull, registries.pullAuth),
      }),
  );
  // The operator's folder of .vsix files, if any: scanned by the watch, baked from by builds (one cache of what was read).
  const extensions = config.EXTENSION_SOURCE_DIR ? new ExtensionSource(config.EXTENSION_SOURCE_DIR) : undefined;
  provide(c, T.sourceBoard, () => new ExtensionSourceBoard(get(T.redis), config.CODEBAY_QUEUE_PREFIX));
  provide(c, T.sourceWatch, () => {
    return new ExtensionSourceWatch({
      ...(extensions ? { source: extensions } : {}),
      board: get(T.sourceBoard),
      logger: get(T.logger),
      builder: config.BUILDER_NAME,
      intervalMs: config.EXTENSION_SOURCE_SCAN_SECONDS * 1000,
    });
  });
  provide(c, T.build, () => {
    const metrics = get(T.metrics);
    const redis = get(T.redis);
    const logs = get(T.logs);
    const registry = new RegistryClient(registries.apiUrl, { auth: registries.pullAuth });
    const images = get(T.images);
    registerDependencyProbes(metrics, {
      redis: () => redis.ping(),
      // The builder's own daemon client (ImageStore.ping answers false rather than throwing).
      docker: async () => {
        if (!(await images.ping())) throw new Error('the Docker daemon does not answer');
      },
      registry: () => registry.ping(),
    });
    const cache = new BuildCache(redis, registry, registries.pull, get(T.sourceBoard));
    return new BuildInstance({
      config,
      registries,
      store: get(T.store),
      logs,
      cli: new DevcontainerCli(),
      images,
      cache,
      cachedBuilds: new CachedBuilds({
        cache,
        logs,
        jobs: get(T.jobs),
        logger: get(T.logger),
        lookups: new Counter({
          name: 'codebay_build_cache_lookups_total',
          help: 'Registry lookups of build keys by the builder: hit (nothing built) or miss',
          labelNames: ['result'] as const,
          registers: [metrics],
        }),
      }),
      locks: new BuildLocks(redis, config.JOB_LOCK_SECONDS * 1000),
      workspace: new BuildWorkspace(config.CODEBAY_BUILD_DIR, new ArtifactStore(config.CODEBAY_ARTIFACT_DIR), buildPolicy(config)),
      jobs: get(T.jobs),
      logger: get(T.logger),
      ...(extensions ? { extensions } : {}),
      sourceWatch: get(T.sourceWatch),
      metrics: {
        duration: new Histogram({
          name: 'codebay_build_duration_seconds',
          help: 'Build job duration (waiting for the key, CLI build, push) by outcome: success, cached, failure, timeout, cancelled, released (handed back: the builder stopped)',
          labelNames: ['outcome'] as const,
          buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800],
          registers: [metrics],
        }),
        inProgress: new Gauge({ name: 'codebay_builds_in_progress', help: 'Builds this builder is running', registers: [metrics] }),
        extensions: new Counter({
          name: 'codebay_build_extensions_total',
          help: 'Extensions wanted by the configurations this builder built with an extension source (EXTENSION_SOURCE_DIR): baked into the image, or missing from the source',
          labelNames: ['result'] as const,
          registers: [metrics],
        }),
      },
    });
  });
  return c;
}
