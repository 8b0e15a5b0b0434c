import Docker from 'dockerode';
import type { RegistryCredentials } from './config.ts';

export { Docker };

/** A registry user as the Engine API takes it with one pull or push (`X-Registry-Auth`). */
export interface DockerAuthConfig {
  username: string;
  password: string;
  /** `host:port` of the registry the user is for. */
  serveraddress: string;
}

/**
 * The Engine API's credentials for `registry`, or undefined for an anonymous one. codebay's
 * daemons store no credentials: each pull or push hands its own, so a build step has none.
 */
export function registryAuthConfig(registry: string, auth: RegistryCredentials | undefined): DockerAuthConfig | undefined {
  return auth ? { ...auth, serveraddress: registry } : undefined;
}

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

/** How long a pull or push may go without a progress event before it is ended (ms). */
export const PROGRESS_IDLE_MS = 120_000;

/**
 * Waits for a docker progress stream (pull/push) to finish; rejects on an error event, and
 * when no event arrives for `idleMs` (a registry that accepts and never answers must not
 * hold a builder or a provisioner: the stream is destroyed and the wait rejects).
 */
export function followProgress(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  onEvent?: (e: ProgressEvent) => void,
  idleMs = PROGRESS_IDLE_MS,
): Promise<ProgressEvent[]> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        (stream as NodeJS.ReadableStream & { destroy?: (e?: Error) => void }).destroy?.();
        reject(new Error(`no progress for ${idleMs / 1000} s`));
      }, idleMs);
    };
    arm();
    docker.modem.followProgress(
      stream,
      (err: Error | null, events: ProgressEvent[]) => {
        if (timer) clearTimeout(timer);
        if (err) return reject(err);
        const failed = events.find((e) => e.error);
        if (failed) return reject(new Error(failed.errorDetail?.message ?? failed.error));
        resolve(events);
      },
      (e: ProgressEvent) => {
        arm();
        onEvent?.(e);
      },
    );
  });
}
