import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

const SHA256_RE = /^[a-f0-9]{64}$/;

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/**
 * Content-addressed upload store (`<dir>/sha256/<hex>`), shared by the gateway
 * (writes) and the builders and provisioners (read). Same content, same file.
 */
export class ArtifactStore {
  constructor(readonly dir: string) {}

  /** A scratch folder on the same file system, for uploads in flight. */
  get incomingDir(): string {
    return join(this.dir, 'incoming');
  }

  async init(): Promise<void> {
    await mkdir(join(this.dir, 'sha256'), { recursive: true });
    await mkdir(this.incomingDir, { recursive: true });
  }

  path(digest: string): string {
    if (!SHA256_RE.test(digest)) throw new Error(`not a sha256 digest: ${digest}`);
    return join(this.dir, 'sha256', digest);
  }

  /**
   * Moves a finished upload into the store; returns its digest. Pass the digest when it was
   * computed as the file was written (the gateway's uploads are), else the file is hashed here.
   */
  async adopt(tmpPath: string, knownDigest?: string): Promise<string> {
    const digest = knownDigest ?? (await sha256File(tmpPath));
    const target = this.path(digest);
    const exists = await stat(target).then(
      () => true,
      () => false,
    );
    if (exists) await rm(tmpPath, { force: true });
    else await rename(tmpPath, target);
    return digest;
  }

  async has(digest: string): Promise<boolean> {
    return stat(this.path(digest)).then(
      () => true,
      () => false,
    );
  }
}
