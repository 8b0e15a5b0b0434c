// Bad input against the REAL gateway (child process) and the REAL Redis: every case
// asserts the HTTP status, the JSON error code, and that nothing was created — no
// instance record, no job in this run's queues, no file in the artifact store, no
// build log stream. The gateway must answer every one and still be up at the end.
//
// Only the gateway runs (no builder, no provisioner), with small upload limits so the
// size cases stay small.

import { JOBS, redisKeys } from '@codebay/contracts';
import { JobQueues } from '@codebay/platform';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { paxRecord, rawTar, rawTarGz, type RawEntry } from '../support/tarball.ts';

const MAX_DEVCONTAINER_BYTES = 4096;
const MAX_WORKSPACE_UNPACKED_BYTES = 1024 * 1024;
const MAX_WORKSPACE_ENTRIES = 40;
const MAX_WORKSPACE_BYTES = 512 * 1024;
const REQUEST_TIMEOUT_MS = 30_000;

/** Every user id this run sends carries TAG, so records from other runs on the shared Redis are told apart. */
const TAG = randomBytes(4).toString('hex');
const USER = `inp-${TAG}`;

let stack: Stack;
let redis: Redis;
let queues: JobQueues;

// ---------------------------------------------------------------------------
// requests

type Fields = Record<string, string>;

function api(path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  return stack.api(path, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...init });
}

function postJson(path: string, body: unknown, init: RequestInit & { token?: string | null } = {}): Promise<Response> {
  return api(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' }, ...init });
}

function form(fields: Fields, files: Array<{ field: string; data: Buffer | string; name?: string; type?: string }> = []): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  for (const file of files) {
    const bytes = typeof file.data === 'string' ? Buffer.from(file.data) : file.data;
    f.append(file.field, new Blob([new Uint8Array(bytes)], { type: file.type ?? 'application/octet-stream' }), file.name ?? 'upload');
  }
  return f;
}

const postForm = (path: string, body: FormData) => api(path, { method: 'POST', body });

const devcontainer = (text: string, fields: Fields = { user_id: USER }) =>
  postForm('/api/instances/devcontainer', form(fields, [{ field: 'devcontainer_json', data: text, name: 'devcontainer.json', type: 'application/json' }]));

const workspace = (tgz: Buffer, fields: Fields = { user_id: USER }) =>
  postForm('/api/instances/workspace', form(fields, [{ field: 'workspace', data: tgz, name: 'workspace.tar.gz', type: 'application/gzip' }]));

const simple = (body: unknown) => postJson('/api/instances/simple', body);

const GOOD_CONFIG = '{ "image": "ubuntu:22.04" }';
const CONFIG_DIR: RawEntry = { path: '.devcontainer/', type: '5' };
const CONFIG: RawEntry = { path: '.devcontainer/devcontainer.json', data: GOOD_CONFIG };
/** A workspace that is fine but for `extra`. */
const ws = (...extra: RawEntry[]) => rawTarGz([CONFIG_DIR, CONFIG, { path: 'README.md', data: 'hello\n' }, ...extra]);

/** Missing comma at the end of line 2: the error is at line 3, column 3 (the next key). */
const MISSING_COMMA = '{\n  "image": "ubuntu:22.04"\n  "name": "broken"\n}\n';

// ---------------------------------------------------------------------------
// "nothing was created"

interface Snapshot {
  instanceIds: string[];
  userSets: string[];
  logStreams: string[];
  jobs: Record<string, number>;
  artifacts: string[];
}

async function scanKeys(pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return [];
    throw e;
  });
  return entries.map((e) => join(e.parentPath ?? dir, e.name)).sort();
}

async function snapshot(): Promise<Snapshot> {
  const members = await redis.smembers(redisKeys.allInstances());
  const keyed = (await scanKeys(redisKeys.instance('*'))).map((k) => k.slice(redisKeys.instance('').length));
  const jobs: Record<string, number> = {};
  for (const [, queue] of queues.entries()) {
    const counts = await queue.getJobCounts();
    jobs[queue.name] = Object.values(counts).reduce((a, b) => a + b, 0);
  }
  return {
    instanceIds: [...new Set([...members, ...keyed])].sort(),
    userSets: (await scanKeys(redisKeys.userInstances(`*${TAG}*`))).sort(),
    logStreams: (await scanKeys(redisKeys.buildLogs('*'))).sort(),
    jobs,
    artifacts: [...(await filesUnder(join(stack.artifactDir, 'sha256'))), ...(await filesUnder(join(stack.artifactDir, 'incoming')))],
  };
}

/** Compares two snapshots; records other runs may have written meanwhile (no TAG in them) are ignored. */
function expectNothingCreated(before: Snapshot, after: Snapshot): void {
  const added = (a: string[], b: string[]) => b.filter((x) => !a.includes(x));
  const ours = (xs: string[]) => xs.filter((x) => x.toLowerCase().includes(TAG));
  expect(ours(added(before.instanceIds, after.instanceIds)), 'new instance records').toEqual([]);
  expect(ours(after.instanceIds), 'instance records of this run').toEqual([]);
  expect(added(before.userSets, after.userSets), 'new per-user instance sets').toEqual([]);
  expect(ours(added(before.logStreams, after.logStreams)), 'new build log streams').toEqual([]);
  expect(after.jobs, 'jobs in this run’s queues').toEqual(before.jobs);
  expect(
    Object.values(after.jobs).every((n) => n === 0),
    'this run’s queues are empty',
  ).toBe(true);
  expect(after.artifacts, 'files in the artifact store').toEqual([]);
}

// ---------------------------------------------------------------------------
// the corpus

interface Case {
  name: string;
  send: () => Promise<Response>;
  status: number;
  code: string;
  /** Something the error message must say. */
  message?: RegExp | string[];
}

const BAD_USER_IDS: Array<[string, string]> = [
  ['upper case', `Inp-${TAG}`],
  ['too long', `inp-${TAG}-${'a'.repeat(40)}`],
  ['with a slash', `inp-${TAG}/x`],
  ['leading hyphen', `-inp-${TAG}`],
  ['underscore', `inp_${TAG}`],
];

const VSCODE_VERSIONS = () =>
  (stack.env.CODEBAY_VSCODE_VERSIONS ?? '1.139.1,1.100.3')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

const cases: Case[] = [
  // --- POST /instances/devcontainer (multipart) -----------------------------------------------------------
  {
    name: 'devcontainer: malformed JSONC (missing comma)',
    send: () => devcontainer(MISSING_COMMA),
    status: 400,
    code: 'invalid_jsonc',
    message: /line 3, column 3/,
  },
  {
    name: 'devcontainer: unterminated object',
    send: () => devcontainer('{ "image": "ubuntu:22.04"'),
    status: 400,
    code: 'invalid_jsonc',
    message: /line 1, column \d+/,
  },
  { name: 'devcontainer: empty file', send: () => devcontainer(''), status: 400, code: 'invalid_jsonc' },
  { name: 'devcontainer: JSON that is an array', send: () => devcontainer('[{ "image": "ubuntu:22.04" }]'), status: 400, code: 'invalid_devcontainer' },
  { name: 'devcontainer: JSON that is a string', send: () => devcontainer('"ubuntu:22.04"'), status: 400, code: 'invalid_devcontainer' },
  { name: 'devcontainer: JSON null', send: () => devcontainer('null'), status: 400, code: 'invalid_devcontainer' },
  { name: 'devcontainer: missing user_id', send: () => devcontainer(GOOD_CONFIG, {}), status: 400, code: 'invalid_request', message: /user_id/ },
  { name: 'devcontainer: empty user_id', send: () => devcontainer(GOOD_CONFIG, { user_id: '' }), status: 400, code: 'invalid_request', message: /user_id/ },
  ...BAD_USER_IDS.map(([what, id]): Case => ({
    name: `devcontainer: user_id ${what}`,
    send: () => devcontainer(GOOD_CONFIG, { user_id: id }),
    status: 400,
    code: 'invalid_request',
    message: /user_id/,
  })),
  {
    name: 'devcontainer: oversize devcontainer.json',
    send: () => devcontainer(JSON.stringify({ image: 'ubuntu:22.04', name: 'x'.repeat(MAX_DEVCONTAINER_BYTES) })),
    status: 413,
    code: 'payload_too_large',
  },
  { name: 'devcontainer: missing file field', send: () => postForm('/api/instances/devcontainer', form({ user_id: USER })), status: 400, code: 'missing_file' },
  {
    name: 'devcontainer: file in an unexpected field',
    send: () => postForm('/api/instances/devcontainer', form({ user_id: USER }, [{ field: 'file', data: GOOD_CONFIG }])),
    status: 400,
    code: 'invalid_upload',
  },
  {
    name: 'devcontainer: two files',
    send: () =>
      postForm(
        '/api/instances/devcontainer',
        form({ user_id: USER }, [
          { field: 'devcontainer_json', data: GOOD_CONFIG },
          { field: 'devcontainer_json', data: GOOD_CONFIG },
        ]),
      ),
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'devcontainer: multipart without a boundary',
    send: () => api('/api/instances/devcontainer', { method: 'POST', body: 'user_id=x', headers: { 'content-type': 'multipart/form-data' } }),
    status: 400,
    code: 'invalid_upload',
  },
  {
    name: 'devcontainer: multipart body cut off mid-part',
    send: () =>
      api('/api/instances/devcontainer', {
        method: 'POST',
        body: `--XyZ\r\ncontent-disposition: form-data; name="user_id"\r\n\r\n${USER}\r\n--XyZ\r\ncontent-disposition: form-data; name="devcontainer_json"; filename="devcontainer.json"\r\ncontent-type: application/json\r\n\r\n{ "image": "ubu`,
        headers: { 'content-type': 'multipart/form-data; boundary=XyZ' },
      }),
    status: 400,
    code: 'invalid_upload',
  },
  {
    name: 'devcontainer: oversize form field',
    send: () => devcontainer(GOOD_CONFIG, { user_id: USER, memory_limit: '1'.repeat(5000) }),
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'devcontainer: too many form fields',
    send: () => devcontainer(GOOD_CONFIG, Object.fromEntries([['user_id', USER], ...Array.from({ length: 30 }, (_, i) => [`f${i}`, 'x'])])),
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'devcontainer: user_id given twice',
    send: () =>
      postForm(
        '/api/instances/devcontainer',
        (() => {
          const f = form({ user_id: USER }, [{ field: 'devcontainer_json', data: GOOD_CONFIG }]);
          f.append('user_id', USER);
          return f;
        })(),
      ),
    status: 400,
    code: 'invalid_request',
    message: /user_id/,
  },
  {
    name: 'devcontainer: JSON body instead of multipart',
    send: () => postJson('/api/instances/devcontainer', { user_id: USER }),
    status: 400,
    code: 'invalid_request',
  },
  {
    name: 'devcontainer: schema violation (forwardPorts not an array)',
    send: () => devcontainer('{ "image": "debian:bookworm", "forwardPorts": "8080" }'),
    status: 422,
    code: 'invalid_devcontainer',
    message: /\/forwardPorts must be array/,
  },
  {
    name: 'devcontainer: schema violation (features not an object)',
    send: () => devcontainer('{ "image": "debian:bookworm", "features": ["node"] }'),
    status: 422,
    code: 'invalid_devcontainer',
    message: /\/features must be object/,
  },
  {
    name: 'devcontainer: schema violation (lifecycle command a number)',
    send: () => devcontainer('{ "image": "debian:bookworm", "postCreateCommand": 42 }'),
    status: 422,
    code: 'invalid_devcontainer',
    message: /\/postCreateCommand/,
  },
  {
    name: 'devcontainer: extension id malformed',
    send: () => devcontainer('{ "image": "debian:bookworm", "customizations": { "vscode": { "extensions": ["not an id"] } } }'),
    status: 422,
    code: 'invalid_devcontainer',
    message: /extensions\/0/,
  },
  {
    name: 'devcontainer: vscode settings not an object',
    send: () => devcontainer('{ "image": "debian:bookworm", "customizations": { "vscode": { "settings": [1] } } }'),
    status: 422,
    code: 'invalid_devcontainer',
    message: /settings must be an object/,
  },
  {
    name: 'devcontainer: malformed feature reference',
    send: () => devcontainer('{ "image": "debian:bookworm", "features": { "not a feature": {} } }'),
    status: 422,
    code: 'invalid_feature',
    message: /not a feature reference/,
  },
  {
    name: 'devcontainer: local feature without a workspace',
    send: () => devcontainer('{ "image": "debian:bookworm", "features": { "./hello": {} } }'),
    status: 422,
    code: 'needs_workspace',
    message: /local feature/,
  },
  {
    name: 'devcontainer: dockerComposeFile',
    send: () => devcontainer('{ "dockerComposeFile": "docker-compose.yml", "service": "app" }'),
    status: 422,
    code: 'unsupported_devcontainer',
    message: /dockerComposeFile/,
  },
  {
    name: 'devcontainer: Dockerfile build (build.dockerfile)',
    send: () => devcontainer('{ "build": { "dockerfile": "Dockerfile" } }'),
    status: 422,
    code: 'needs_workspace',
    message: /instances\/workspace/,
  },
  {
    name: 'devcontainer: Dockerfile build (legacy dockerFile)',
    send: () => devcontainer('{ "dockerFile": "Dockerfile" }'),
    status: 422,
    code: 'needs_workspace',
  },
  { name: 'devcontainer: neither image nor build', send: () => devcontainer('{ "name": "nothing" }'), status: 422, code: 'unsupported_devcontainer' },
  { name: 'devcontainer: image is not a string', send: () => devcontainer('{ "image": 42 }'), status: 422, code: 'invalid_devcontainer' },
  {
    name: 'devcontainer: memory_request above memory_limit',
    send: () => devcontainer(GOOD_CONFIG, { user_id: USER, memory_request: '4Gi', memory_limit: '1Gi' }),
    status: 400,
    code: 'invalid_resources',
    message: /memory_request is above memory_limit/,
  },
  {
    name: 'devcontainer: cpu_limit above the operator maximum',
    send: () => devcontainer(GOOD_CONFIG, { user_id: USER, cpu_limit: '64' }),
    status: 400,
    code: 'invalid_resources',
    message: /cpu_limit is above the maximum/,
  },
  {
    name: 'devcontainer: memory_limit not a quantity',
    send: () => devcontainer(GOOD_CONFIG, { user_id: USER, memory_limit: 'lots' }),
    status: 400,
    code: 'invalid_request',
    message: /memory_limit/,
  },
  {
    name: 'devcontainer: unknown vscode_version',
    send: () => devcontainer(GOOD_CONFIG, { user_id: USER, vscode_version: '9.99.9' }),
    status: 400,
    code: 'unsupported_vscode_version',
    get message() {
      return ['9.99.9', ...VSCODE_VERSIONS()];
    },
  },
  {
    name: 'devcontainer: malformed vscode_version',
    send: () => devcontainer(GOOD_CONFIG, { user_id: USER, vscode_version: 'latest' }),
    status: 400,
    code: 'invalid_request',
    message: /vscode_version/,
  },

  // --- POST /instances/simple (JSON) -----------------------------------------------------------------------
  { name: 'simple: missing user_id', send: () => simple({}), status: 400, code: 'invalid_request', message: /user_id/ },
  ...BAD_USER_IDS.map(([what, id]): Case => ({
    name: `simple: user_id ${what}`,
    send: () => simple({ user_id: id }),
    status: 400,
    code: 'invalid_request',
    message: /user_id/,
  })),
  { name: 'simple: user_id of the wrong type', send: () => simple({ user_id: 42 }), status: 400, code: 'invalid_request', message: /user_id/ },
  {
    name: 'simple: memory_limit of the wrong type',
    send: () => simple({ user_id: USER, memory_limit: 2048 }),
    status: 400,
    code: 'invalid_request',
    message: /memory_limit/,
  },
  { name: 'simple: body is a JSON array', send: () => simple([{ user_id: USER }]), status: 400, code: 'invalid_request' },
  { name: 'simple: body is a JSON string', send: () => simple('"inp"'), status: 400, code: 'invalid_json' },
  { name: 'simple: invalid JSON', send: () => simple(`{"user_id": "${USER}",`), status: 400, code: 'invalid_json' },
  { name: 'simple: body over 16 kB', send: () => simple({ user_id: USER, pad: 'x'.repeat(20_000) }), status: 413, code: 'payload_too_large' },
  {
    name: 'simple: not JSON at all (text/plain)',
    send: () => api('/api/instances/simple', { method: 'POST', body: `user_id=${USER}`, headers: { 'content-type': 'text/plain' } }),
    status: 400,
    code: 'invalid_request',
    message: /user_id/,
  },
  {
    name: 'simple: base_image with a space',
    send: () => simple({ user_id: USER, base_image: 'ubuntu 22.04' }),
    status: 400,
    code: 'invalid_request',
    message: /base_image/,
  },
  {
    name: 'simple: base_image climbing with ../',
    send: () => simple({ user_id: USER, base_image: '../etc/passwd' }),
    status: 400,
    code: 'invalid_request',
    message: /base_image/,
  },
  {
    name: 'simple: base_image with a bad digest',
    send: () => simple({ user_id: USER, base_image: 'ubuntu@sha256:abc' }),
    status: 400,
    code: 'invalid_request',
    message: /base_image/,
  },
  {
    name: 'simple: base_image too long',
    send: () => simple({ user_id: USER, base_image: `a${'b'.repeat(300)}` }),
    status: 400,
    code: 'invalid_request',
    message: /base_image/,
  },
  {
    name: 'simple: memory_request above memory_limit',
    send: () => simple({ user_id: USER, memory_request: '3Gi', memory_limit: '2Gi' }),
    status: 400,
    code: 'invalid_resources',
    message: /memory_request is above memory_limit/,
  },
  {
    name: 'simple: memory quantities that round to 0 bytes (would mean no limit)',
    send: () => simple({ user_id: USER, memory_request: '0.1', memory_limit: '0.4' }),
    status: 400,
    code: 'invalid_request',
    message: /memory_limit/,
  },
  {
    name: 'simple: cpu quantities that round to 0 millicores (would mean no limit)',
    send: () => simple({ user_id: USER, cpu_request: '0.0001', cpu_limit: '0.0004' }),
    status: 400,
    code: 'invalid_request',
    message: /cpu_limit/,
  },
  { name: 'simple: memory_limit of 0', send: () => simple({ user_id: USER, memory_request: '0', memory_limit: '0' }), status: 400, code: 'invalid_request' },
  { name: 'simple: negative cpu_limit', send: () => simple({ user_id: USER, cpu_limit: '-1' }), status: 400, code: 'invalid_request' },
  {
    name: 'simple: cpu_request above cpu_limit',
    send: () => simple({ user_id: USER, cpu_request: '2', cpu_limit: '500m' }),
    status: 400,
    code: 'invalid_resources',
    message: /cpu_request is above cpu_limit/,
  },
  {
    name: 'simple: unknown vscode_version',
    send: () => simple({ user_id: USER, vscode_version: '1.2' }),
    status: 400,
    code: 'unsupported_vscode_version',
    get message() {
      return ['available', ...VSCODE_VERSIONS()];
    },
  },

  // --- POST /instances/workspace (multipart tar.gz) --------------------------------------------------------
  {
    name: 'workspace: path traversal ../evil',
    send: () => workspace(ws({ path: '../evil', data: 'x' })),
    status: 400,
    code: 'unsafe_archive',
    message: /\.\.\/evil/,
  },
  { name: 'workspace: inner traversal a/../../evil', send: () => workspace(ws({ path: 'a/../../evil', data: 'x' })), status: 400, code: 'unsafe_archive' },
  {
    name: 'workspace: traversal hidden in a pax header',
    send: () => workspace(ws({ path: 'PaxHeader/x', type: 'x', data: paxRecord('path', '../paxevil') }, { path: 'innocent', data: 'x' })),
    status: 400,
    code: 'unsafe_archive',
  },
  { name: 'workspace: absolute path', send: () => workspace(ws({ path: '/tmp/codebay-evil', data: 'x' })), status: 400, code: 'unsafe_archive' },
  {
    name: 'workspace: symlink pointing outside',
    send: () => workspace(ws({ path: 'link', type: '2', linkpath: '../../etc/passwd' })),
    status: 400,
    code: 'unsafe_archive',
    message: /link/,
  },
  { name: 'workspace: absolute symlink', send: () => workspace(ws({ path: 'link', type: '2', linkpath: '/etc/passwd' })), status: 400, code: 'unsafe_archive' },
  {
    name: 'workspace: hardlink pointing outside',
    send: () => workspace(ws({ path: 'hard', type: '1', linkpath: '../outside' })),
    status: 400,
    code: 'unsafe_archive',
  },
  {
    name: 'workspace: absolute hardlink',
    send: () => workspace(ws({ path: 'hard', type: '1', linkpath: '/etc/shadow' })),
    status: 400,
    code: 'unsafe_archive',
  },
  {
    name: 'workspace: character device',
    send: () => workspace(ws({ path: 'null', type: '3' })),
    status: 400,
    code: 'unsafe_archive',
    message: /CharacterDevice/,
  },
  { name: 'workspace: block device', send: () => workspace(ws({ path: 'sda', type: '4' })), status: 400, code: 'unsafe_archive' },
  {
    name: 'workspace: three unsafe entries, all three named in one answer',
    send: () =>
      workspace(
        ws(
          { path: '../evil-one', data: 'x' },
          { path: 'ok.txt', data: 'fine' },
          { path: 'link', type: '2', linkpath: '/etc/passwd' },
          { path: 'pipe', type: '6' },
        ),
      ),
    status: 400,
    code: 'unsafe_archive',
    message: ['3 unsafe workspace entries', '"../evil-one" would land outside', 'link "link" points outside', '"pipe" is a FIFO'],
  },
  { name: 'workspace: fifo', send: () => workspace(ws({ path: 'pipe', type: '6' })), status: 400, code: 'unsafe_archive', message: /FIFO/ },
  {
    name: 'workspace: no devcontainer.json',
    send: () => workspace(rawTarGz([{ path: 'README.md', data: 'hello\n' }])),
    status: 400,
    code: 'missing_devcontainer',
  },
  {
    name: 'workspace: devcontainer.json is a symlink',
    send: () =>
      workspace(
        rawTarGz([
          CONFIG_DIR,
          { path: '.devcontainer/devcontainer.json', type: '2', linkpath: 'other.json' },
          { path: '.devcontainer/other.json', data: GOOD_CONFIG },
        ]),
      ),
    status: 400,
    code: 'invalid_workspace',
  },
  {
    name: 'workspace: not a gzip at all',
    send: () => workspace(Buffer.from('this is not a tarball, just text\n'.repeat(40))),
    status: 400,
    code: 'invalid_archive',
  },
  {
    name: 'workspace: gzip of something that is not a tar',
    send: () => workspace(gzipSync(Buffer.from('plain text, gzipped\n'.repeat(100)))),
    status: 400,
    code: 'invalid_archive',
  },
  { name: 'workspace: truncated gzip', send: () => workspace(ws().subarray(0, 60)), status: 400, code: 'invalid_archive' },
  { name: 'workspace: empty file', send: () => workspace(Buffer.alloc(0)), status: 400, code: 'invalid_archive' },
  { name: 'workspace: empty tar', send: () => workspace(gzipSync(Buffer.alloc(1024))), status: 400, code: 'invalid_archive' },
  {
    name: 'workspace: gzip bomb (unpacks past MAX_WORKSPACE_UNPACKED_BYTES)',
    send: () => workspace(ws({ path: 'zeros.bin', data: Buffer.alloc(2 * MAX_WORKSPACE_UNPACKED_BYTES) })),
    status: 413,
    code: 'payload_too_large',
    message: /unpacks to more than/,
  },
  {
    name: 'workspace: many files that together unpack past the limit',
    send: () => workspace(ws(...Array.from({ length: 20 }, (_, i): RawEntry => ({ path: `blob${i}.bin`, data: Buffer.alloc(64 * 1024) })))),
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'workspace: pax header claiming a huge size',
    send: () => workspace(ws({ path: 'PaxHeader/big', type: 'x', data: paxRecord('size', String(64 * 1024 ** 3)) }, { path: 'big.bin', data: 'x' })),
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'workspace: upload larger than MAX_WORKSPACE_BYTES',
    send: () => workspace(randomBytes(MAX_WORKSPACE_BYTES + 1024)),
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'workspace: too many entries',
    send: () => workspace(ws(...Array.from({ length: MAX_WORKSPACE_ENTRIES + 10 }, (_, i): RawEntry => ({ path: `f${i}.txt`, data: `${i}\n` })))),
    status: 413,
    code: 'payload_too_large',
    message: /entries/,
  },
  {
    name: 'workspace: malformed JSONC in .devcontainer/devcontainer.json',
    send: () => workspace(rawTarGz([CONFIG_DIR, { path: '.devcontainer/devcontainer.json', data: MISSING_COMMA }])),
    status: 400,
    code: 'invalid_jsonc',
    message: /\.devcontainer\/devcontainer\.json: line 3, column 3/,
  },
  {
    name: 'workspace: malformed JSONC in .devcontainer.json',
    send: () => workspace(rawTarGz([{ path: '.devcontainer.json', data: '{ "image": }' }])),
    status: 400,
    code: 'invalid_jsonc',
    message: /\.devcontainer\.json: line 1/,
  },
  {
    name: 'workspace: dockerComposeFile',
    send: () => workspace(rawTarGz([CONFIG_DIR, { path: '.devcontainer/devcontainer.json', data: '{ "dockerComposeFile": "compose.yml" }' }])),
    status: 422,
    code: 'unsupported_devcontainer',
  },
  { name: 'workspace: missing user_id', send: () => workspace(ws(), {}), status: 400, code: 'invalid_request', message: /user_id/ },
  { name: 'workspace: user_id upper case', send: () => workspace(ws(), { user_id: `Inp-${TAG}` }), status: 400, code: 'invalid_request', message: /user_id/ },
  {
    name: 'workspace: memory_request above memory_limit',
    send: () => workspace(ws(), { user_id: USER, memory_request: '3Gi', memory_limit: '1Gi' }),
    status: 400,
    code: 'invalid_resources',
  },
  { name: 'workspace: missing file field', send: () => postForm('/api/instances/workspace', form({ user_id: USER })), status: 400, code: 'missing_file' },
  {
    name: 'workspace: uncompressed tar with ../evil',
    send: () => workspace(rawTar([CONFIG_DIR, CONFIG, { path: '../evil', data: 'x' }])),
    status: 400,
    code: 'unsafe_archive',
  },

  // --- instances by id -------------------------------------------------------------------------------------
  { name: 'GET unknown instance', send: () => api(`/api/instances/${USER}-nosuch00`), status: 404, code: 'not_found' },
  { name: 'GET unknown instance (bare path)', send: () => api(`/instances/${USER}-nosuch00`), status: 404, code: 'not_found' },
  { name: 'DELETE unknown instance', send: () => api(`/api/instances/${USER}-nosuch00`, { method: 'DELETE' }), status: 404, code: 'not_found' },
  { name: 'build-logs of unknown instance', send: () => api(`/api/instances/${USER}-nosuch00/build-logs`), status: 404, code: 'not_found' },
  { name: 'build-logs (follow) of unknown instance', send: () => api(`/api/instances/${USER}-nosuch00/build-logs?follow=1`), status: 404, code: 'not_found' },
  { name: 'build-status of unknown instance', send: () => api(`/api/instances/${USER}-nosuch00/build-status`), status: 404, code: 'not_found' },
  { name: 'GET invalid instance id (upper case)', send: () => api(`/api/instances/Inp-${TAG}`), status: 400, code: 'invalid_instance_id' },
  { name: 'GET invalid instance id (underscore)', send: () => api(`/api/instances/inp_${TAG}`), status: 400, code: 'invalid_instance_id' },
  { name: 'GET invalid instance id (too long)', send: () => api(`/api/instances/${'a'.repeat(64)}`), status: 400, code: 'invalid_instance_id' },
  { name: 'GET invalid instance id (encoded slash)', send: () => api(`/api/instances/inp-${TAG}%2Fx`), status: 400, code: 'invalid_instance_id' },
  { name: 'DELETE invalid instance id', send: () => api(`/api/instances/Inp-${TAG}`, { method: 'DELETE' }), status: 400, code: 'invalid_instance_id' },
  { name: 'build-logs of invalid instance id', send: () => api(`/api/instances/inp_${TAG}/build-logs`), status: 400, code: 'invalid_instance_id' },
  { name: 'GET instance id with a broken percent-encoding', send: () => api('/api/instances/inp-%E0%A4%A'), status: 400, code: 'bad_request' },
  { name: 'DELETE without an id', send: () => api('/api/instances', { method: 'DELETE' }), status: 404, code: 'not_found' },
  {
    name: 'simple: JSON in an unknown charset',
    send: () =>
      api('/api/instances/simple', {
        method: 'POST',
        body: JSON.stringify({ user_id: USER }),
        headers: { 'content-type': 'application/json; charset=klingon' },
      }),
    status: 415,
    code: 'bad_request',
  },
  { name: 'unknown API route', send: () => api('/api/nothing-here'), status: 404, code: 'not_found' },
];

// --- authentication: every API route, under /api and bare, without and with a wrong token ------------------

const API_ROUTES: Array<{ method: string; path: string; body?: () => RequestInit['body']; contentType?: string }> = [
  { method: 'GET', path: '/instances' },
  { method: 'GET', path: `/instances/${USER}-nosuch00` },
  { method: 'GET', path: `/instances/${USER}-nosuch00/build-status` },
  { method: 'GET', path: `/instances/${USER}-nosuch00/build-logs` },
  { method: 'DELETE', path: `/instances/${USER}-nosuch00` },
  { method: 'POST', path: '/instances/simple', body: () => JSON.stringify({ user_id: USER }), contentType: 'application/json' },
  {
    method: 'POST',
    path: '/instances/devcontainer',
    body: () => form({ user_id: USER }, [{ field: 'devcontainer_json', data: GOOD_CONFIG, name: 'devcontainer.json' }]),
  },
  { method: 'POST', path: '/instances/workspace', body: () => form({ user_id: USER }, [{ field: 'workspace', data: ws(), name: 'workspace.tar.gz' }]) },
];

const BAD_TOKENS: Array<[string, string | null, Record<string, string>?]> = [
  ['no token', null],
  ['wrong token', 'wrong-token-0123456789abcdef'],
  ['Basic scheme', null, { authorization: 'Basic YWRtaW46YWRtaW4=' }],
  ['empty bearer', null, { authorization: 'Bearer ' }],
];

for (const route of API_ROUTES) {
  for (const prefix of ['/api', '']) {
    for (const [what, token, headers] of BAD_TOKENS) {
      cases.push({
        name: `auth: ${route.method} ${prefix}${route.path} with ${what}`,
        send: () => {
          const h: Record<string, string> = { ...headers };
          if (route.contentType) h['content-type'] = route.contentType;
          return api(`${prefix}${route.path}`, { method: route.method, body: route.body?.(), headers: h, token });
        },
        status: 401,
        code: 'unauthorized',
      });
    }
  }
}
// The admin token prefixed or suffixed is still wrong.
cases.push(
  { name: 'auth: admin token with a suffix', send: () => api('/api/instances', { token: `${stack.adminToken}x` }), status: 401, code: 'unauthorized' },
  { name: 'auth: admin token cut short', send: () => api('/api/instances', { token: stack.adminToken.slice(0, -1) }), status: 401, code: 'unauthorized' },
);

// ---------------------------------------------------------------------------

describe('gateway: bad input creates nothing', () => {
  beforeAll(async () => {
    stack = await startStack({
      services: ['gateway'],
      name: 'input',
      env: {
        MAX_DEVCONTAINER_BYTES: String(MAX_DEVCONTAINER_BYTES),
        MAX_WORKSPACE_UNPACKED_BYTES: String(MAX_WORKSPACE_UNPACKED_BYTES),
        MAX_WORKSPACE_ENTRIES: String(MAX_WORKSPACE_ENTRIES),
        MAX_WORKSPACE_BYTES: String(MAX_WORKSPACE_BYTES),
      },
    });
    redis = new Redis(components().redisUrl, { maxRetriesPerRequest: null, connectionName: 'codebay-test-input' });
    queues = new JobQueues(redis, stack.queuePrefix);
    expect(queues.entries().map(([, q]) => q.name)).toEqual([JOBS.build.queue, JOBS.provision.queue, JOBS.deprovision.queue]);
  });

  afterAll(async () => {
    if (queues) await queues.close();
    if (redis) await redis.quit();
    if (stack) await stack.stop();
  });

  it.each(cases)('$name → $status $code', async (c) => {
    const before = await snapshot();
    const res = await c.send();
    const text = await res.text();
    const context = `${res.status} ${text.slice(0, 500)}`;
    expect(res.status, context).toBe(c.status);
    expect(res.headers.get('content-type') ?? '', context).toMatch(/^application\/json/);
    expect(res.headers.get('x-request-id'), 'x-request-id').toBeTruthy();
    expect(res.headers.get('x-powered-by'), 'x-powered-by').toBeNull();
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    expect(body.error?.code, context).toBe(c.code);
    expect(typeof body.error?.message, context).toBe('string');
    expect(body.error?.message ?? '', context).not.toMatch(/\n\s+at /); // no stack traces
    if (c.message instanceof RegExp) expect(body.error!.message, context).toMatch(c.message);
    else if (c.message) for (const s of c.message) expect(body.error!.message, context).toContain(s);
    expectNothingCreated(before, await snapshot());
    expect(stack.processes.get('gateway')?.exitCode, 'gateway still running').toBeNull();
  });

  it('a client that hangs up mid-upload leaves no file behind and the gateway up', async () => {
    const before = await snapshot();
    const { port } = new URL(stack.url);
    const boundary = `cut${TAG}`;
    const head = [
      `--${boundary}`,
      'content-disposition: form-data; name="user_id"',
      '',
      USER,
      `--${boundary}`,
      'content-disposition: form-data; name="workspace"; filename="workspace.tar.gz"',
      'content-type: application/gzip',
      '',
      '',
    ].join('\r\n');
    await new Promise<void>((resolve, reject) => {
      const sock = connect(Number(port), '127.0.0.1', () => {
        sock.write(
          [
            'POST /api/instances/workspace HTTP/1.1',
            `host: 127.0.0.1:${port}`,
            `authorization: Bearer ${stack.adminToken}`,
            `content-type: multipart/form-data; boundary=${boundary}`,
            `content-length: ${MAX_WORKSPACE_BYTES - 1024}`,
            '',
            '',
          ].join('\r\n'),
        );
        sock.write(head);
        sock.write(randomBytes(128 * 1024), () => {
          // Give the gateway time to open the file in incoming/, then vanish.
          setTimeout(() => {
            sock.destroy();
            resolve();
          }, 300);
        });
      });
      sock.on('error', reject);
    });
    await waitFor(
      'the partial upload to be removed',
      async () => ((await filesUnder(join(stack.artifactDir, 'incoming'))).length === 0 ? true : undefined),
      10_000,
      100,
    );
    expectNothingCreated(before, await snapshot());
    const health = await api('/health', { token: null });
    expect(health.status).toBe(200);
    await health.arrayBuffer();
  });

  it('health and readiness need no token; metrics are not on the public port but on a port of their own', async () => {
    for (const path of ['/health', '/healthz', '/api/health', '/readyz', '/api/readyz', '/']) {
      const res = await api(path, { token: null });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('x-powered-by'), path).toBeNull();
      expect(res.headers.get('x-request-id'), path).toBeTruthy();
      await res.arrayBuffer();
    }
    const exposed = await api('/metrics', { token: null });
    expect(exposed.status).not.toBe(200);
    expect(await exposed.text()).not.toContain('codebay_');
    const metrics = await (await fetch(`http://127.0.0.1:${stack.metricsPorts.gateway}/metrics`)).text();
    expect(metrics).toContain('codebay_gateway_up');
    expect(metrics).toContain('codebay_http_request_duration_seconds');
  });

  it('/api/... and bare paths both work with the token, and list nothing for this run', async () => {
    for (const path of [`/api/instances?user_id=${USER}`, `/instances?user_id=${USER}`]) {
      const res = await api(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('x-powered-by'), path).toBeNull();
      expect(res.headers.get('x-request-id'), path).toBeTruthy();
      expect(await res.json(), path).toEqual({ instances: [] });
    }
    const all = await api('/instances');
    expect(all.status).toBe(200);
    expect(((await all.json()) as { instances: Array<{ user_id: string }> }).instances.filter((i) => i.user_id.includes(TAG))).toEqual([]);
  });

  it('echoes a caller-given x-request-id and makes one otherwise', async () => {
    const mine = `req-${TAG}`;
    const a = await api('/health', { token: null, headers: { 'x-request-id': mine } });
    expect(a.headers.get('x-request-id')).toBe(mine);
    const b = await api('/api/instances/Bad_Id');
    expect(b.status).toBe(400);
    expect(b.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    await Promise.all([a.arrayBuffer(), b.arrayBuffer()]);
  });

  it('is still up and has created nothing after the whole corpus', async () => {
    const res = await api('/health', { token: null });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
    expect(stack.processes.get('gateway')?.exitCode).toBeNull();
    const end = await snapshot();
    expect(end.instanceIds.filter((id) => id.includes(TAG))).toEqual([]);
    expect(end.artifacts).toEqual([]);
    expect(Object.values(end.jobs).every((n) => n === 0)).toBe(true);
    expect(await scanKeys(`${stack.queuePrefix}:*${TAG}*`), 'job keys of this run').toEqual([]);
  });
});
