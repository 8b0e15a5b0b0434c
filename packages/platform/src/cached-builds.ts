import { mergeWarnings, type InstanceRecord, type PropertyWarning } from '@codebay/contracts';
import type { Counter } from 'prom-client';
import type { BuildCache, CacheHit, LookupOptions } from './build-cache.ts';
import type { BuildLogStream } from './build-log.ts';
import type { JobQueues } from './jobs.ts';
import type { Logger } from './logger.ts';

export interface CachedBuildsDeps {
  cache: BuildCache;
  logs: BuildLogStream;
  jobs: JobQueues;
  logger: Logger;
  /** `codebay_build_cache_lookups_total{result="hit"|"miss"}` of the calling service. */
  lookups: Counter<'result'>;
}

/**
 * The one owner of the "already built" decision, used by the gateway when it creates an
 * instance and by the builder before it builds (another instance may have built the key
 * since): the lookup and its metric, what a hit makes of the instance record, and what
 * follows — the build log says so and ends `cached`, provisioning is queued.
 */
export class CachedBuilds {
  constructor(private readonly deps: CachedBuildsDeps) {}

  /**
   * The verified image of `key`, or undefined. A lookup that fails (registry or Redis
   * unreachable) is a miss: the instance is built instead. `count: false` keeps the lookup
   * out of the hit/miss metric (a builder's polls while another builds the key) unless it hits.
   * `extensionSource`: the fingerprint a hit must have been baked from (see `BuildCache.lookup`).
   */
  async lookup(key: string, opts: { count?: boolean; instanceId?: string } & LookupOptions = {}): Promise<CacheHit | undefined> {
    const hit = await this.deps.cache.lookup(key, opts.extensionSource === undefined ? {} : { extensionSource: opts.extensionSource }).catch((err: Error) => {
      this.deps.logger.warn({ instanceId: opts.instanceId, key, err: err.message }, 'build cache lookup failed; counting it a miss');
      return undefined;
    });
    if (opts.count !== false || hit) this.deps.lookups.inc({ result: hit ? 'hit' : 'miss' });
    return hit;
  }

  /**
   * The fields an instance with build `build` takes on a hit (its status becomes `Cached`):
   * `warnings` are the instance's own (its config's) then the image's.
   */
  fields(
    hit: CacheHit,
    build: NonNullable<InstanceRecord['build']>,
    warnings: readonly PropertyWarning[] = [],
  ): Pick<InstanceRecord, 'devcontainerImage' | 'launch' | 'build' | 'warnings'> {
    return { devcontainerImage: hit.image, launch: hit.launch, build: { ...build, cache: 'hit' }, warnings: mergeWarnings(warnings, hit.warnings) };
  }

  /**
   * After the instance went `Cached` with `fields(hit, …)`: its build log says so (with the
   * instance's `warnings`, the image's own by default) and ends `cached`, and provisioning is queued.
   */
  async settle(instanceId: string, key: string, hit: CacheHit, warnings: readonly PropertyWarning[] = hit.warnings): Promise<void> {
    await this.deps.logs.append(instanceId, [
      `codebay: build key ${key}: already built as ${hit.image}; nothing to build`,
      ...warnings.map((w) => `codebay: warning: ${w.message}`),
    ]);
    await this.deps.logs.end(instanceId, 'cached');
    await this.deps.jobs.enqueue('provision', { instanceId });
    this.deps.logger.info({ instanceId, key, image: hit.image }, 'build key already built: cached, provisioning queued');
  }
}
