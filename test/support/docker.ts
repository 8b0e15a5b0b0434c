import { dockerFromHost, type Docker } from '@codebay/platform';
import { PassThrough } from 'node:stream';
import { components } from './components.ts';

/** The daemon the tests use (the services' own way of reaching a DOCKER_HOST). */
export function testDocker(): Docker {
  return dockerFromHost(components().dockerHost);
}

/** Runs a command in a container and returns its exit code and output (stdout and stderr). */
export async function execIn(docker: Docker, container: string, cmd: string[], user?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const exec = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, User: user });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  out.on('data', (c: Buffer) => chunks.out.push(c));
  err.on('data', (c: Buffer) => chunks.err.push(c));
  docker.modem.demuxStream(stream, out, err);
  await new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('error', reject);
  });
  const info = await exec.inspect();
  return { code: info.ExitCode ?? -1, stdout: Buffer.concat(chunks.out).toString('utf8'), stderr: Buffer.concat(chunks.err).toString('utf8') };
}

/** True when the daemon knows the object, false on 404; other errors throw. */
async function exists(inspect: Promise<unknown>): Promise<boolean> {
  return inspect.then(
    () => true,
    (e: { statusCode?: number }) => {
      if (e.statusCode === 404) return false;
      throw e;
    },
  );
}

export const containerExists = (docker: Docker, name: string) => exists(docker.getContainer(name).inspect());
export const volumeExists = (docker: Docker, name: string) => exists(docker.getVolume(name).inspect());
