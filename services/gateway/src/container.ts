import {
  BuildLogStream,
  ArtifactStore,
  BuildCache,
  CachedBuilds,
  EditorVersionsBoard,
  ExtensionSourceBoard,
  LogFollowers,
  PLATFORM,
  RegistryClient,
  jobCatalog,
  provide,
  registerDependencyProbes,
  registerInstanceGauges,
  registerQueueDepth,
  provideValue,
  registrySettings,
  resolve,
  serviceContainer,
  token,
  type DependencyContainer,
  type Token,
} from '@codebay/platform';
import { Counter, Gauge } from 'prom-client';
import type { GatewayDeps } from './app.ts';
import type { GatewayConfig } from './config.ts';
import { EditorVersions } from './editor-versions.ts';
import { EditorProxy } from './http/editor-proxy.ts';
import { IdempotencyKeys } from './idempotency.ts';
import { TokenDirectory } from './identity.ts';
import { InstanceService } from './instances.ts';

/** The gateway's own injection tokens. */
const OWN = {
  config: token<GatewayConfig>('gateway config'),
  followers: token<LogFollowers>('build log followers'),
  artifacts: token<ArtifactStore>('artifact store'),
  cachedBuilds: token<CachedBuilds>('cached builds'),
  idempotency: token<IdempotencyKeys>('idempotency keys'),
  tokens: token<TokenDirectory>('token directory'),
  instances: token<InstanceService>('instance service'),
  editor: token<EditorProxy>('editor proxy'),
  editorVersions: token<EditorVersions>('editor versions'),
  /** The system-wide gauges (queues, instances, dependencies, followers) and the delete counter. */
  stateMetrics: token<{ deletes: Counter }>('state metrics'),
  app: token<GatewayDeps>('gateway app dependencies'),
};

/** The gateway's injection tokens: every service's (PLATFORM) and its own. */
export const T: typeof PLATFORM & typeof OWN = { ...PLATFORM, ...OWN };

/**
 * The gateway's composition root: every adapter and use-case, made once on first use from
 * the configuration. Connections open when first resolved.
 */
export function gatewayContainer(config: GatewayConfig): DependencyContainer {
  const c = serviceContainer('gateway', config, jobCatalog(config));
  const get = <V>(t: Token<V>): V => resolve(c, t);
  provideValue(c, T.config, config);
  provide(c, T.followers, () => {
    const logger = get(T.logger);
    return new LogFollowers(get(T.redis), { onError: (err) => logger.warn({ err }, 'build log reader: redis error, retrying') });
  });
  provide(c, T.artifacts, () => new ArtifactStore(config.CODEBAY_ARTIFACT_DIR));
  provide(c, T.cachedBuilds, () => {
    const registries = registrySettings(config);
    return new CachedBuilds({
      // A slow registry must not hold creates up for long: no answer in 3 s counts as a miss.
      // An image baked from an extension source other than the one the builders publish is a miss.
      cache: new BuildCache(
        get(T.redis),
        new RegistryClient(registries.apiUrl, { timeoutMs: 3_000, auth: registries.pullAuth }),
        registries.pull,
        new ExtensionSourceBoard(get(T.redis), config.CODEBAY_QUEUE_PREFIX),
      ),
      logs: get(T.logs),
      jobs: get(T.jobs),
      logger: get(T.logger),
      lookups: new Counter({
        name: 'codebay_build_cache_lookups_total',
        help: 'Registry lookups of build keys at create time: hit (no build) or miss',
        labelNames: ['result'] as const,
        registers: [get(T.metrics)],
      }),
    });
  });
  provide(c, T.idempotency, () => new IdempotencyKeys(get(T.redis)));
  provide(c, T.stateMetrics, () => {
    // What the whole system holds (queues, instances) is reported here, once per gateway.
    const metrics = get(T.metrics);
    const registries = registrySettings(config);
    const registry = new RegistryClient(registries.apiUrl, { timeoutMs: 2_000, auth: registries.pullAuth });
    registerQueueDepth(metrics, get(T.jobs));
    registerInstanceGauges(metrics, get(T.store));
    registerDependencyProbes(metrics, { redis: () => get(T.redis).ping(), registry: () => registry.ping() });
    const followers = get(T.followers);
    new Gauge({
      name: 'codebay_build_log_followers',
      help: 'Clients following a build log (Server-Sent Events) on this gateway',
      registers: [metrics],
      collect() {
        this.set(followers.size);
      },
    });
    return { deletes: new Counter({ name: 'codebay_instance_deletes_total', help: 'Instance delete requests accepted', registers: [metrics] }) };
  });
  provide(c, T.tokens, () => new TokenDirectory(config.adminToken, config.CODEBAY_TOKENS_FILE, get(T.logger)));
  provide(c, T.editorVersions, () => new EditorVersions(new EditorVersionsBoard(get(T.redis), config.CODEBAY_QUEUE_PREFIX), config.CODEBAY_VSCODE_VERSIONS));
  provide(
    c,
    T.instances,
    () =>
      new InstanceService({
        config,
        store: get(T.store),
        jobs: get(T.jobs),
        cachedBuilds: get(T.cachedBuilds),
        artifacts: get(T.artifacts),
        idempotency: get(T.idempotency),
        editorVersions: get(T.editorVersions),
        logger: get(T.logger),
        deletes: get(T.stateMetrics).deletes,
      }),
  );
  provide(c, T.editor, () => new EditorProxy({ store: get(T.store), logger: get(T.logger), origins: config.origins, key: config.CODEBAY_SECRET_KEY }));
  provide(c, T.app, () => ({
    config,
    logger: get(T.logger),
    redis: get(T.redis),
    store: get(T.store),
    logs: get(T.logs),
    instanceLogs: new BuildLogStream(get(T.redis), 'instance'),
    followers: get(T.followers),
    artifacts: get(T.artifacts),
    instances: get(T.instances),
    editorVersions: get(T.editorVersions),
    editor: get(T.editor),
    metrics: get(T.metrics),
    tokens: get(T.tokens),
  }));
  return c;
}
