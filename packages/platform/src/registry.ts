import { TransientError } from '@codebay/contracts';
import type { RegistryCredentials } from './config.ts';

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

interface Manifest {
  mediaType?: string;
  config?: { digest: string };
  manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[];
}

export interface RegistryImage {
  /** The manifest digest (`sha256:…`). */
  digest: string;
  labels: Record<string, string>;
}

/**
 * The registry's HTTP API (distribution v2), for what Docker's client does not answer
 * without pulling: does a tag exist, and what labels does its image carry. `baseUrl`
 * is how this process reaches the registry (`http://localhost:32000`), which may differ
 * from the address instances pull from.
 */
export class RegistryClient {
  private readonly authorization: string | undefined;

  /**
   * @param baseUrl `http(s)://host:port` of the registry
   * @param options.timeoutMs per request (default 10 s)
   * @param options.auth basic-auth user (the pull-only one for lookups)
   */
  constructor(
    private readonly baseUrl: string,
    options: { timeoutMs?: number; auth?: RegistryCredentials } = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.authorization = options.auth ? `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}` : undefined;
  }

  private readonly timeoutMs: number;

  private async get(path: string, accept?: string, method = 'GET'): Promise<Response> {
    const headers: Record<string, string> = {};
    if (accept) headers.accept = accept;
    if (this.authorization) headers.authorization = this.authorization;
    try {
      return await fetch(`${this.baseUrl.replace(/\/$/, '')}/v2/${path}`, { method, headers, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new TransientError(`registry ${this.baseUrl} unreachable: ${(err as Error).message}`);
    }
  }

  private async manifest(repository: string, reference: string): Promise<{ digest: string; manifest: Manifest } | undefined> {
    const res = await this.get(`${repository}/manifests/${reference}`, MANIFEST_TYPES);
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) throw new TransientError(`registry answered ${res.status} for ${repository}:${reference}`);
    const digest = res.headers.get('docker-content-digest') ?? reference;
    return { digest, manifest: (await res.json()) as Manifest };
  }

  /** Resolves when the registry answers its API root (`/v2/`) with 200 for this client's user; throws otherwise. */
  async ping(): Promise<void> {
    const res = await this.get('');
    await res.body?.cancel();
    if (!res.ok) throw new TransientError(`registry ${this.baseUrl} answered ${res.status} to /v2/`);
  }

  /**
   * True when the registry holds the manifest `repository@digest` (a digest names content,
   * so whoever holds it has exactly that image); false on 404. Other answers throw TransientError.
   */
  async hasManifest(repository: string, digest: string): Promise<boolean> {
    const res = await this.get(`${repository}/manifests/${digest}`, MANIFEST_TYPES, 'HEAD');
    await res.body?.cancel();
    if (res.status === 404) return false;
    if (!res.ok) throw new TransientError(`registry answered ${res.status} for ${repository}@${digest}`);
    return true;
  }

  /** The image `repository:tag` (its labels), or undefined when the registry does not have it. */
  async image(repository: string, tag: string): Promise<RegistryImage | undefined> {
    const found = await this.manifest(repository, tag);
    if (!found) return undefined;
    let { manifest } = found;
    if (manifest.manifests) {
      // An index: the linux/amd64 image, or the first one.
      const entry = manifest.manifests.find((m) => m.platform?.os === 'linux' && m.platform.architecture === 'amd64') ?? manifest.manifests[0];
      const inner = entry && (await this.manifest(repository, entry.digest));
      if (!inner) return undefined;
      manifest = inner.manifest;
    }
    if (!manifest.config) return undefined;
    const blob = await this.get(`${repository}/blobs/${manifest.config.digest}`);
    if (blob.status === 404) {
      await blob.body?.cancel();
      return undefined;
    }
    if (!blob.ok) throw new TransientError(`registry answered ${blob.status} for the config of ${repository}:${tag}`);
    const config = (await blob.json()) as { config?: { Labels?: Record<string, string> | null } };
    return { digest: found.digest, labels: config.config?.Labels ?? {} };
  }
}
