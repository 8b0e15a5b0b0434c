import Docker from 'dockerode';

export { Docker };

/** A dockerode client for a DOCKER_HOST value (`unix:///path` or `tcp://host:port`). */
export function dockerFromHost(dockerHost: string): Docker {
  if (dockerHost.startsWith('unix://')) return new Docker({ socketPath: dockerHost.slice('unix://'.length) });
  const url = new URL(dockerHost.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
}

/** Splits `registry/repo:tag` (or `repo@sha256:…`) into repository and tag/digest. */
export function splitImageRef(ref: string): { repo: string; tag: string } {
  const at = ref.indexOf('@');
  if (at !== -1) return { repo: ref.slice(0, at), tag: ref.slice(at + 1) };
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref, tag: 'latest' };
}

export interface ProgressEvent {
  status?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { Digest?: string };
}

/** Waits for a docker progress stream (pull/push) to finish; rejects on an error event. */
export function followProgress(docker: Docker, stream: NodeJS.ReadableStream, onEvent?: (e: ProgressEvent) => void): Promise<ProgressEvent[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, events: ProgressEvent[]) => {
        if (err) return reject(err);
        const failed = events.find((e) => e.error);
        if (failed) return reject(new Error(failed.errorDetail?.message ?? failed.error));
        resolve(events);
      },
      (e: ProgressEvent) => onEvent?.(e),
    );
  });
}
