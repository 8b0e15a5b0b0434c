import { TransientError } from '@codebay/contracts';
import { followProgress, splitImageRef, type Docker, type DockerAuthConfig } from '@codebay/platform';

/**
 * The builder's view of its Docker daemon's images: push (with the push credentials only
 * builders hold), pull (with the pull-only credentials), read labels, clean up. The
 * daemon stores no credentials: each call hands its own, so a build step never has any.
 */
export class ImageStore {
  constructor(
    private readonly docker: Docker,
    /** The push user (only builders hold it) and the pull-only user, per call (see registryAuthConfig). */
    private readonly auth: { push?: DockerAuthConfig; pull?: DockerAuthConfig } = {},
  ) {}

  /** Pushes one tag; the log gets one line per layer outcome and the digest. Registry faults are transient. */
  async push(image: string, onLine: (line: string) => void): Promise<string | undefined> {
    const { tag } = splitImageRef(image);
    let digest: string | undefined;
    try {
      const stream = await this.docker.getImage(image).push({ tag, authconfig: this.auth.push });
      await followProgress(this.docker, stream, (e) => {
        if (e.aux?.Digest) digest = e.aux.Digest;
        if (e.status && e.id && (e.status === 'Pushed' || e.status === 'Layer already exists')) onLine(`${e.id}: ${e.status}`);
        else if (e.status && !e.id && !e.status.startsWith('Pushing')) onLine(e.status);
      });
    } catch (err) {
      throw new TransientError(`push of ${image} failed: ${(err as Error).message}`);
    }
    return digest;
  }

  /**
   * Pulls an image if the registry has it; false when it does not (or cannot be reached).
   * `as`: whose credentials — `pull` (default), or `push` for codebay's own earlier builds,
   * which the builder reads where it writes them (on Kubernetes the pull address is the
   * nodes' view, `localhost:32000`, which a builder pod's daemon cannot reach).
   */
  async pull(image: string, as: 'pull' | 'push' = 'pull'): Promise<boolean> {
    try {
      const stream = await this.docker.pull(image, { authconfig: this.auth[as] });
      await followProgress(this.docker, stream);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Drops the image's `repo@sha256:…` references on this daemon (the image and its tags
   * stay), so a build step cannot name a freshly pushed image by its digest and get it
   * without pulling. This narrows, not closes, what names open on a daemon: Docker keeps
   * the manifests it pulls and serves a pull by digest from them without asking the
   * registry, so digests remain capabilities there (docs/security.md).
   */
  async forgetDigests(image: string): Promise<void> {
    const info = await this.docker
      .getImage(image)
      .inspect()
      .catch(() => undefined);
    for (const ref of info?.RepoDigests ?? [])
      await this.docker
        .getImage(ref)
        .remove({ noprune: true })
        .catch(() => undefined);
  }

  async tag(image: string, target: string): Promise<void> {
    const { repo, tag } = splitImageRef(target);
    await this.docker.getImage(image).tag({ repo, tag });
  }

  /**
   * Housekeeping after a job: dangling images (intermediate layers of failed or
   * replaced builds) go, then the oldest images carrying `label` until what is left
   * of them fits in `maxBytes`; BuildKit's build cache is isolated (isolateBuildCache, with
   * `tainted`) and kept within `maxCacheBytes` (the daemon's own least-recently-used order,
   * `POST /build/prune?keep-storage=`). Returns what was removed (`cacheBytes`: bytes of build
   * cache freed; `clearedBuildCache`: all of it went).
   */
  async prune(
    label: string,
    maxBytes: number,
    maxCacheBytes: number,
    tainted: boolean,
  ): Promise<{ containers: number; dangling: number; removed: string[]; keptBytes: number; cacheBytes: number; clearedBuildCache: boolean }> {
    // A build cut off at a bad moment (the extension bake's classic build, a daemon restart) can
    // leave a stopped, unlabelled container made from an untagged intermediate image. They pin
    // their images, so they go first. Instance containers carry codebay labels and are never touched.
    const leftovers = (await this.docker.listContainers({ all: true, filters: JSON.stringify({ status: ['created', 'exited', 'dead'] }) })).filter(
      (c) => !c.Labels?.['codebay.managed'] && /^(sha256:)?[0-9a-f]{12,64}$/.test(c.Image),
    );
    for (const c of leftovers)
      await this.docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
    // The CLI's own intermediate tags (feature content, `vsc-…` stages): only this build used them.
    const scratch = (await this.docker.listImages()).flatMap((i) => i.RepoTags ?? []).filter((t) => /^(dev_container_feature_content_temp|vsc-)/.test(t));
    for (const tag of scratch)
      await this.docker
        .getImage(tag)
        .remove({ noprune: false })
        .catch(() => undefined);
    const dangling = await this.docker.pruneImages({ filters: JSON.stringify({ dangling: ['true'] }) }).catch(() => ({ ImagesDeleted: [] }));
    const images = (await this.docker.listImages({ filters: JSON.stringify({ label: [label] }) })).sort((a, b) => b.Created - a.Created);
    const removed: string[] = [];
    let kept = 0;
    for (const image of images) {
      if (kept + image.Size <= maxBytes) {
        kept += image.Size;
        continue;
      }
      const ok = await this.docker
        .getImage(image.Id)
        .remove({ force: false })
        .then(
          () => true,
          () => false, // in use by a container, or a parent of a kept image
        );
      if (ok) removed.push(...(image.RepoTags ?? [image.Id]));
      else kept += image.Size;
    }
    // Isolation first: the budget's least-recently-used pruning could take a cache mount's record
    // (the sign that steps ran over one) and leave the records of those steps.
    const isolated = await this.isolateBuildCache(tainted);
    const cache = await this.pruneBuildCache({ 'keep-storage': maxCacheBytes });
    return {
      containers: leftovers.length,
      dangling: dangling.ImagesDeleted?.length ?? 0,
      removed,
      keptBytes: kept,
      cacheBytes: isolated.bytes + cache.bytes,
      clearedBuildCache: isolated.cleared,
    };
  }

  /**
   * Keeps the records of earlier builds (other tenants') from answering this daemon's next
   * build. A BuildKit step's cache key covers its command, its mounts' specs and the content of
   * its inputs — not what a `RUN --mount=type=cache` folder holds (shared by id between every
   * build on the daemon), nor where an imported (`--cache-from`) record came from. So a tenant
   * can run a step identical to another's (a public repository's devcontainer) over a cache mount
   * it filled from another stage of its own build, or import inline cache metadata that claims
   * any key, and the cache then answers the victim's identical step with the attacker's layer
   * (test/hostile/buildkit.test.ts). Cache mounts always go; when there were any (a build since
   * the last clearing ran a step over one) or the caller says the cache is `tainted` (a build
   * imported cache its user named in `build.cacheFrom`, or what ran before is unknown: a builder
   * that just started), all of the build cache goes (`POST /build/prune?all=true`). Otherwise
   * every record came from content-addressed inputs and stays shared: layers common to
   * configurations are built once. Builds run one at a time per daemon. Returns whether it all
   * went, and the bytes freed.
   * @throws Error when the daemon refuses: no build may run on a daemon that may hold them.
   */
  async isolateBuildCache(tainted: boolean): Promise<{ cleared: boolean; bytes: number }> {
    const mounts = await this.pruneBuildCache({ filters: JSON.stringify({ type: ['exec.cachemount'] }) });
    if (!tainted && mounts.caches === 0) return { cleared: false, bytes: mounts.bytes };
    const all = await this.pruneBuildCache({ all: 'true' });
    return { cleared: true, bytes: mounts.bytes + all.bytes };
  }

  /**
   * `POST /build/prune` with these query parameters (Engine API 1.39+: `keep-storage` bytes,
   * `filters` JSON, `all`); dockerode's pruneBuilder sends none. Returns the records removed
   * and the bytes freed.
   * @throws Error when the daemon refuses.
   */
  private pruneBuildCache(query: Record<string, string | number>): Promise<{ caches: number; bytes: number }> {
    return new Promise((resolve, reject) =>
      this.docker.modem.dial(
        { path: '/build/prune?', method: 'POST', options: query, statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error' } },
        (err: unknown, data: unknown) => {
          if (err) return reject(err as Error);
          const answer = (data ?? {}) as { CachesDeleted?: string[] | null; SpaceReclaimed?: number };
          resolve({ caches: answer.CachesDeleted?.length ?? 0, bytes: answer.SpaceReclaimed ?? 0 });
        },
      ),
    );
  }

  /**
   * Builds an image from a folder on the builder (`context`: a Dockerfile and the `files` named,
   * paths relative to it) as `tag`, with `labels`; the daemon's output goes to `onLine`. Returns
   * the new image's ID. A step that fails or a daemon fault throws TransientError; `signal`
   * cuts the request off.
   */
  async build(
    context: string,
    files: string[],
    tag: string,
    labels: Record<string, string>,
    onLine: (line: string) => void,
    signal?: AbortSignal,
  ): Promise<string> {
    try {
      const stream = await this.docker.buildImage(
        { context, src: ['Dockerfile', ...files] },
        { t: tag, labels, rm: true, forcerm: true, ...(signal ? { abortSignal: signal } : {}) },
      );
      await followProgress(this.docker, stream, (e) => {
        const text = (e as { stream?: string }).stream?.trim();
        if (text) onLine(text);
      });
    } catch (err) {
      throw new TransientError(`build of ${tag} failed: ${(err as Error).message}`);
    }
    return (await this.image(tag)).id;
  }

  async labels(image: string): Promise<Record<string, string>> {
    return (await this.image(image)).labels;
  }

  /** The image a name stands for on this daemon now: its ID (`sha256:…`, the content address of its config and so of its layers) and labels. */
  async image(name: string): Promise<{ id: string; labels: Record<string, string> }> {
    const info = await this.docker.getImage(name).inspect();
    return { id: info.Id, labels: info.Config?.Labels ?? {} };
  }

  /** Whether this daemon holds the image with exactly this ID (`sha256:…`): a name never stands in for it. */
  async has(id: string): Promise<boolean> {
    const info = await this.docker
      .getImage(id)
      .inspect()
      .catch(() => undefined);
    return info?.Id === id;
  }

  async remove(image: string): Promise<void> {
    await this.docker
      .getImage(image)
      .remove({ noprune: false })
      .catch(() => undefined);
  }

  async ping(): Promise<boolean> {
    return this.docker.ping().then(
      () => true,
      () => false,
    );
  }
}
