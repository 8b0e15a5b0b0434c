import { TransientError } from '@codebay/contracts';
import { followProgress, splitImageRef, type Docker } from '@codebay/platform';

/** The builder's view of its Docker daemon's images: push, read labels, clean up. */
export class ImageStore {
  constructor(private readonly docker: Docker) {}

  /** Pushes one tag; the log gets one line per layer outcome and the digest. Registry faults are transient. */
  async push(image: string, onLine: (line: string) => void): Promise<string | undefined> {
    const { tag } = splitImageRef(image);
    let digest: string | undefined;
    try {
      const stream = await this.docker.getImage(image).push({ tag });
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

  async labels(image: string): Promise<Record<string, string>> {
    const info = await this.docker.getImage(image).inspect();
    return info.Config?.Labels ?? {};
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
