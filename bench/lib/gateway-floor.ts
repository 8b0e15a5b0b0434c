// The floor for bench/gateway-load.ts: what the gateway's GET /api/instances/{id} and
// POST /api/instances/simple cannot do without, on plain node:http and one ioredis
// connection, run as a process of its own. Same bearer check (constant-time compare with
// the admin token), same Redis keys and round trips, same response bytes (the sealed access
// token opened, the same InstanceResponse JSON); no framework, no logs, no metrics, no
// request id. The bench compares the gateway with it in the same run.
//
// Environment: REDIS_URL, CODEBAY_ADMIN_TOKEN, CODEBAY_SECRET_KEY, CODEBAY_QUEUE_PREFIX,
// FLOOR_PORT, FLOOR_PUBLIC_URL (the gateway's, so URLs in the bodies match). Prints
// `listening` on stdout once it accepts requests.
import { createSimpleSchema, errorBody, newInstanceRecord, redisKeys, toInstanceResponse, type EditorOrigins, type InstanceRecord } from '@codebay/contracts';
import { InstanceStore, JobQueues, PlatformKey, createRedis, hashToken, sameSecret } from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import http from 'node:http';

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const adminToken = env('CODEBAY_ADMIN_TOKEN');
const key = new PlatformKey(env('CODEBAY_SECRET_KEY'));
const publicUrl = env('FLOOR_PUBLIC_URL');
const url = new URL(publicUrl);
const origins: EditorOrigins = { protocol: 'http:', domain: 'localhost', port: url.port ? `:${url.port}` : '' };
const redis = createRedis(env('REDIS_URL'), 'codebay-bench-floor');
const store = new InstanceStore(redis);
const queues = new JobQueues(redis, env('CODEBAY_QUEUE_PREFIX'));

const INSTANCE_PATH = /^\/api\/instances\/([a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)$/;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function respond(record: InstanceRecord): unknown {
  return toInstanceResponse(record, publicUrl, origins, key.open(record.accessTokenSealed));
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function getInstance(id: string, res: http.ServerResponse): Promise<void> {
  const hash = await redis.hgetall(redisKeys.instance(id));
  if (Object.keys(hash).length === 0) return send(res, 404, errorBody('not_found', `instance ${id} not found`));
  const record: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(hash)) record[k] = JSON.parse(v);
  // The admin sees every instance: the ownership check has nothing to compare.
  send(res, 200, respond(record as unknown as InstanceRecord));
}

/** Validate, quota (the user's records), write the record, enqueue its job: the same Redis work as the gateway's create. */
async function createSimple(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const parsed = createSimpleSchema.safeParse(JSON.parse(await readBody(req)));
  if (!parsed.success || !parsed.data.user_id) return send(res, 400, errorBody('invalid_request', 'invalid body'));
  const { user_id: userId, vscode_version: _v, base_image: baseImage, ...resources } = parsed.data;
  const live = (await store.many(await store.idsOfUser(userId))).filter((r) => !['Failed', 'Deleting', 'Deleted'].includes(r.status));
  if (live.length >= Number(process.env.MAX_INSTANCES_PER_USER ?? 10)) return send(res, 429, errorBody('too_many_requests', 'quota'));
  const token = randomBytes(30).toString('base64url').slice(0, 40);
  const record = newInstanceRecord(
    {
      id: `${userId}-${randomBytes(6).toString('hex').slice(0, 8)}`,
      userId,
      source: 'simple',
      accessTokenHash: hashToken(token),
      accessTokenSealed: key.seal(token),
      baseImage,
      artifact: null,
      resources,
      vscodeVersion: '1.139.1',
    },
    new Date().toISOString(),
  );
  if (!(await store.create(record))) return send(res, 409, errorBody('conflict', 'id taken'));
  await queues.enqueue('provision', { instanceId: record.id });
  send(res, 202, respond(record));
}

const server = http.createServer((req, res) => {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!m || !sameSecret(m[1]!, adminToken)) return send(res, 401, errorBody('unauthorized', 'a valid bearer token is required'));
  const id = req.method === 'GET' ? INSTANCE_PATH.exec(req.url ?? '')?.[1] : undefined;
  const work = id
    ? getInstance(id, res)
    : req.method === 'POST' && req.url === '/api/instances/simple'
      ? createSimple(req, res)
      : Promise.resolve(send(res, 404, errorBody('not_found', 'no route')));
  work.catch((err: Error) => send(res, 500, errorBody('internal', err.message)));
});
server.keepAliveTimeout = 65_000;
server.listen(Number(env('FLOOR_PORT')), '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void queues
    .close()
    .then(() => redis.quit())
    .finally(() => process.exit(0));
});
