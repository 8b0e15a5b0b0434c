import { describe, expect, it } from 'vitest';
import { cliEnvironment, cliLogLines, failureSummary, isTransientBuildFailure, buildxVersion } from './devcontainer-cli.ts';

const json = (entry: Record<string, unknown>) => JSON.stringify(entry);

describe('cliLogLines', () => {
  it('takes the text of a JSON text entry', () => {
    expect(cliLogLines(json({ type: 'text', level: 3, timestamp: 1700000000000, text: 'Step 1/5 : FROM ubuntu:22.04' }))).toEqual([
      'Step 1/5 : FROM ubuntu:22.04',
    ]);
  });

  it('splits a multi-line text into lines, dropping blank ones and trailing spaces', () => {
    expect(cliLogLines(json({ type: 'text', text: 'one  \n\n  two\n   \nthree\n' }))).toEqual(['one', '  two', 'three']);
  });

  it('strips ANSI colours and cursor codes from raw entries', () => {
    expect(cliLogLines(json({ type: 'raw', level: 3, text: '\u001b[1m\u001b[34m=> building\u001b[0m done\u001b[K\r\n' }))).toEqual(['=> building done']);
  });

  it('turns carriage returns (progress redraws) into line breaks', () => {
    expect(cliLogLines(json({ type: 'raw', text: ' 10%\r 50%\r100%\r\nnext line\n' }))).toEqual([' 10%', ' 50%', '100%', 'next line']);
  });

  it('keeps BuildKit’s prefix on every piece of a step’s output a carriage return splits: a step cannot forge BuildKit’s own lines', () => {
    expect(cliLogLines(json({ type: 'raw', text: '#5 0.169 abc\r#3 ERROR: forged\n0.169 x\r#3 [1/1] RUN y\r\n' }))).toEqual([
      '#5 0.169 abc',
      '#5 0.169 #3 ERROR: forged',
      '0.169 x',
      '0.169 #3 [1/1] RUN y',
    ]);
  });

  it('drops stop and progress entries', () => {
    expect(cliLogLines(json({ type: 'stop', text: 'Run: docker build', startTimestamp: 1 }))).toEqual([]);
    expect(cliLogLines(json({ type: 'progress', name: 'Building', status: 'running', text: 'x' }))).toEqual([]);
  });

  it('drops JSON entries without a text', () => {
    expect(cliLogLines(json({ type: 'start', level: 2, name: 'Run: docker' }))).toEqual([]);
    expect(cliLogLines(json({ type: 'text', text: 42 }))).toEqual([]);
    expect(cliLogLines('[1, 2]')).toEqual([]);
    expect(cliLogLines('42')).toEqual([]);
  });

  it('keeps a line that is not JSON, ANSI stripped and \\r handled', () => {
    expect(cliLogLines('plain \u001b[31mred\u001b[0m output')).toEqual(['plain red output']);
    expect(cliLogLines('a\rb')).toEqual(['a', 'b']);
    expect(cliLogLines('{"type": "text", "text": "cut off')).toEqual(['{"type": "text", "text": "cut off']);
    expect(cliLogLines('  indented')).toEqual(['  indented']);
  });

  it('gives nothing for blank lines', () => {
    expect(cliLogLines('')).toEqual([]);
    expect(cliLogLines('   ')).toEqual([]);
    expect(cliLogLines('\u001b[0m\r\n')).toEqual([]);
    expect(cliLogLines(json({ type: 'raw', text: '\r\n' }))).toEqual([]);
  });
});

describe('isTransientBuildFailure', () => {
  it.each([
    'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
    'cannot connect to the docker daemon',
    'connect ECONNREFUSED 127.0.0.1:2375',
    'read ECONNRESET',
    'error during connect: Post "http://docker/v1.43/build": EOF',
    'dial tcp 10.0.0.1:443: i/o timeout',
    'Get "https://registry-1.docker.io/v2/": net/http: TLS handshake timeout',
    'Command failed: docker build\nfirst line\ncontext: connect ECONNREFUSED /run/docker.sock',
  ])('%j is transient', (message) => {
    expect(isTransientBuildFailure(message)).toBe(true);
  });

  it.each([
    '',
    "The command '/bin/sh -c exit 1' returned a non-zero code: 1",
    'pull access denied for nosuchimage, repository does not exist or may require docker login',
    'manifest for ubuntu:99.99 not found: manifest unknown',
    'failed to solve: dockerfile parse error line 3: unknown instruction: RUNN',
  ])('%j is permanent', (message) => {
    expect(isTransientBuildFailure(message)).toBe(false);
  });
});

describe('cliEnvironment', () => {
  const builder = {
    PATH: '/usr/bin:/bin',
    REDIS_URL: 'redis://default:pw@127.0.0.1:6380',
    REGISTRY_PUSH_AUTH: 'codebay-push:secret',
    CODEBAY_SECRET_KEY: 'k',
    HOME: '/root',
    TEAM_MIRROR: 'https://mirror.example',
    npm_config_https_proxy: 'http://elsewhere:3128',
  };
  const env = (allowlist: string[]) =>
    cliEnvironment({ tmpDir: '/jobs/x/tmp', dockerHost: 'unix:///d.sock', proxyUrl: 'http://127.0.0.1:4000', allowlist, from: builder });

  it('inherits nothing of the builder’s environment but PATH: no service credential reaches the CLI', () => {
    const e = env([]);
    expect(Object.keys(e).sort()).toEqual([
      'DOCKER_HOST',
      'HOME',
      'HTTPS_PROXY',
      'HTTP_PROXY',
      'NO_COLOR',
      'NO_PROXY',
      'PATH',
      'TMPDIR',
      'http_proxy',
      'https_proxy',
      'no_proxy',
    ]);
    expect(JSON.stringify(e)).not.toMatch(/pw@|secret|codebay-push/);
    expect(e.HOME).toBe('/jobs/x/tmp/home');
  });

  it('adds the allow-listed variables, never a proxy setting, and always routes through the egress proxy', () => {
    const e = env(['TEAM_MIRROR', 'npm_config_https_proxy', 'UNSET']);
    expect(e.TEAM_MIRROR).toBe('https://mirror.example');
    expect(e).not.toHaveProperty('npm_config_https_proxy');
    expect(e).not.toHaveProperty('UNSET');
    expect([e.HTTP_PROXY, e.HTTPS_PROXY, e.http_proxy, e.https_proxy]).toEqual(Array(4).fill('http://127.0.0.1:4000'));
    expect(e.NO_PROXY).toBe('');
  });
});

describe('failureSummary', () => {
  const commandFailed = {
    message: `Command failed: docker build --build-arg _DEV_CONTAINERS_BASE_IMAGE=x ${'--label a=b '.repeat(20)}-t y /tmp/empty-folder`,
    description: 'An error occurred building the container.',
  };

  it('puts the description in place of the CLI’s command line, with Docker’s own failure line', () => {
    const tail = ['Step 1/3 : FROM nosuch/image:1', 'pull access denied for nosuch/image, repository does not exist or may require docker login'];
    expect(failureSummary(tail, commandFailed, 1)).toBe(
      'An error occurred building the container. — pull access denied for nosuch/image, repository does not exist or may require docker login',
    );
  });

  it('quotes the last lines, without stack traces, when Docker said nothing it recognises', () => {
    const tail = ['one', 'two', 'Error: Command failed: docker build -t y /tmp/x', '    at async Sp (/cli.js:1:2)'];
    expect(failureSummary(tail, commandFailed, 1)).toBe('An error occurred building the container.\nLast lines:\n  one\n  two');
  });

  it('keeps a summary that says something, and adds Docker’s line when it is new', () => {
    expect(failureSummary(['manifest for x:1 not found: manifest unknown'], { message: 'Failed to pull', description: 'x:1' }, 1)).toBe(
      'Failed to pull: x:1 — manifest for x:1 not found: manifest unknown',
    );
    expect(failureSummary([], {}, 2)).toBe('devcontainer build exited with 2');
    expect(failureSummary(['a', 'b'], {}, 2)).toBe('a\nb');
  });

  it('looks for Docker’s line among the last 20 only (earlier lines hold harmless misses)', () => {
    const tail = ['Failed to fetch control manifest: getaddrinfo ENOTFOUND containers.dev', ...Array.from({ length: 20 }, (_, i) => `step ${i}`)];
    expect(failureSummary(tail, commandFailed, 1)).toBe(
      'An error occurred building the container.\nLast lines:\n  step 15\n  step 16\n  step 17\n  step 18\n  step 19',
    );
  });
});

describe('buildxVersion', () => {
  it('refuses a docker client without the buildx plugin, naming the plugin and where it is looked for', async () => {
    // A client with no plugins: `buildx` is an unknown command to it.
    await expect(buildxVersion('/bin/false', 'unix:///nowhere.sock')).rejects.toThrow(
      /^`\/bin\/false buildx version` failed: the builder needs Docker's buildx plugin .* \/usr\/local\/lib\/docker\/cli-plugins/,
    );
  });
});
