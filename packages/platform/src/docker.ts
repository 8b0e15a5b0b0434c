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

/**
 * The text of a container's log as the Engine API returns it (`GET /containers/{id}/logs`
 * without `follow`, as one buffer). A container without a TTY sends a multiplexed stream:
 * frames of an 8-byte header — stream (0 stdin, 1 stdout, 2 stderr), three zero bytes, the
 * payload's length as a big-endian uint32 — then the payload; a container with a TTY sends the
 * raw bytes (Engine API, "Stream format"). The payloads are joined in order (stdout and
 * stderr as they came) and decoded as UTF-8 once, so a character split across frames stays
 * whole. A buffer that is not a valid frame sequence where `tty` is false (a truncated last
 * frame, a header with non-zero padding) keeps the payloads read so far plus the rest as
 * raw text; a header cut off at the end is dropped.
 */
export function demuxDockerLog(buf: Buffer, tty: boolean): string {
  if (tty) return buf.toString('utf8');
  const parts: Buffer[] = [];
  let offset = 0;
  let framed = true;
  while (offset + 8 <= buf.length) {
    const stream = buf[offset]!;
    if (stream > 2 || buf[offset + 1] !== 0 || buf[offset + 2] !== 0 || buf[offset + 3] !== 0) {
      framed = false;
      break;
    }
    const size = buf.readUInt32BE(offset + 4);
    parts.push(buf.subarray(offset + 8, Math.min(offset + 8 + size, buf.length)));
    offset += 8 + size;
  }
  // What is left is not frames (keep it as text), or the start of a header cut off (drop it).
  if (offset < buf.length && (!framed || offset === 0)) parts.push(buf.subarray(offset));
  return Buffer.concat(parts).toString('utf8');
}
