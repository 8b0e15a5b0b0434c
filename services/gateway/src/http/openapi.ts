import { INSTANCE_STATUSES, createFieldsSchema, createSimpleSchema, resourcesSchema } from '@codebay/contracts';
import { z } from 'zod';

type Json = Record<string, unknown>;

/** A request schema as JSON Schema, from the zod schema that validates it (so the two cannot drift); `output`: what it parses to. */
function fromZod(schema: z.ZodType, io: 'input' | 'output' = 'input'): Json {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ref('Error') } } });
const ERRORS = {
  '400': errorResponse('Bad input (malformed JSON/JSONC, invalid fields)'),
  '401': errorResponse('No or wrong API token'),
  '403': errorResponse('The token may not act for that user'),
  '404': errorResponse('No such instance (or not the caller’s)'),
  '409': errorResponse('A request with this Idempotency-Key is in progress'),
  '413': errorResponse('Upload or body too large'),
  '422': errorResponse(
    'devcontainer.json is not supported or does not match the spec’s schema (`unsupported_devcontainer`: also hostRequirements above what this deployment gives an instance, or a GPU it requires), or a resource field is below its hostRequirements (`below_host_requirements`)',
  ),
  '429': errorResponse('A per-user quota is reached'),
};
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 } };
/** The query of both logs (build and instance): follow as SSE, resume after an event id. */
const logParams = [
  idParam,
  { name: 'follow', in: 'query', required: false, schema: { type: 'string', enum: ['1', 'true'] } },
  { name: 'after', in: 'query', required: false, schema: { type: 'string' }, description: 'Resume after this event id (or Last-Event-ID)' },
];
const idempotencyHeader = { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 200 } };

function multipart(fileField: string, description: string): Json {
  const fields = fromZod(createFieldsSchema) as { properties: Json; required?: string[] };
  return {
    required: true,
    content: {
      'multipart/form-data': {
        schema: {
          type: 'object',
          properties: { ...fields.properties, [fileField]: { type: 'string', format: 'binary', description } },
          required: [fileField],
        },
      },
    },
  };
}

function create(summary: string, requestBody: Json): Json {
  return {
    summary,
    parameters: [idempotencyHeader],
    requestBody,
    responses: { '202': { description: 'Accepted: the instance is queued', content: { 'application/json': { schema: ref('Instance') } } }, ...ERRORS },
  };
}

const open = { security: [] };

/** The OpenAPI 3.1 document of the gateway's API. */
export function openApiDocument(publicUrl: string): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'codebay API',
      version: '0.1.0',
      description: 'On-demand browser-based VS Code instances built from devcontainer.json. Every route also answers without the /api prefix.',
    },
    servers: [{ url: `${publicUrl}/api` }, { url: publicUrl }],
    security: [{ bearer: [] }],
    paths: {
      '/instances/simple': {
        post: create('Create an instance from a base image (no build)', {
          required: true,
          content: { 'application/json': { schema: fromZod(createSimpleSchema) } },
        }),
      },
      '/instances/devcontainer': { post: create('Create an instance from a devcontainer.json', multipart('devcontainer_json', 'devcontainer.json (JSONC)')) },
      '/instances/workspace': {
        post: create('Create an instance from a workspace folder (tar.gz with .devcontainer/)', multipart('workspace', 'tar.gz of the folder')),
      },
      '/instances': {
        get: {
          summary: 'List instances (a user’s own; an admin’s all, or one user’s)',
          parameters: [{ name: 'user_id', in: 'query', required: false, schema: { type: 'string' } }],
          responses: { '200': { description: 'Instances', content: { 'application/json': { schema: ref('InstanceList') } } }, '401': ERRORS['401'] },
        },
      },
      '/instances/{id}': {
        get: {
          summary: 'Get an instance',
          parameters: [idParam],
          responses: {
            '200': { description: 'The instance', content: { 'application/json': { schema: ref('Instance') } } },
            '400': ERRORS['400'],
            '401': ERRORS['401'],
            '404': ERRORS['404'],
          },
        },
        delete: {
          summary: 'Delete an instance (never the user’s shared storage)',
          parameters: [idParam],
          responses: {
            '202': { description: 'Deletion queued', content: { 'application/json': { schema: ref('Instance') } } },
            '400': ERRORS['400'],
            '401': ERRORS['401'],
            '404': ERRORS['404'],
          },
        },
      },
      '/instances/{id}/build-status': {
        get: {
          summary: 'Build status',
          parameters: [idParam],
          responses: {
            '200': { description: 'Status', content: { 'application/json': { schema: ref('BuildStatus') } } },
            '401': ERRORS['401'],
            '404': ERRORS['404'],
          },
        },
      },
      '/instances/{id}/build-logs': {
        get: {
          summary: 'Build log; `follow=1` (or Accept: text/event-stream) streams it as Server-Sent Events until the end event',
          parameters: logParams,
          responses: {
            '200': {
              description: 'The log so far, or a live stream',
              content: { 'application/json': { schema: ref('BuildLogs') }, 'text/event-stream': { schema: { type: 'string' } } },
            },
            '401': ERRORS['401'],
            '404': ERRORS['404'],
          },
        },
      },
      '/instances/{id}/logs': {
        get: {
          summary:
            'The instance’s own log: the launcher, the lifecycle commands (onCreateCommand … postAttachCommand) and the editor, from its container; kept after a failure or a delete (7 days). `follow=1` (or Accept: text/event-stream) streams it as Server-Sent Events',
          parameters: logParams,
          responses: {
            '200': {
              description: 'The log so far, or a live stream (ends with an `end` event when the instance failed or was deleted)',
              content: { 'application/json': { schema: ref('BuildLogs') }, 'text/event-stream': { schema: { type: 'string' } } },
            },
            '401': ERRORS['401'],
            '404': ERRORS['404'],
          },
        },
      },
      '/editor-versions': {
        get: {
          summary: 'The editor (VS Code) versions instances can run: what `vscode_version` may name (`1.100` picks the newest 1.100.x), the default first',
          responses: {
            '200': { description: 'The versions', content: { 'application/json': { schema: ref('EditorVersions') } } },
            '401': ERRORS['401'],
          },
        },
      },
      '/seed/instances/{id}': {
        get: {
          ...open,
          summary:
            'A workspace instance’s upload (tar.gz), for the instance to unpack on first start; Authorization: Bearer <the instance’s seeding token, from its Kubernetes Secret>',
          parameters: [idParam],
          responses: {
            '200': {
              description: 'The archive',
              content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
            },
            '401': { description: 'Not this instance’s seeding token' },
            '404': { description: 'The instance has no workspace upload' },
            '410': { description: 'The upload is no longer stored' },
          },
        },
      },
      '/health': { get: { ...open, summary: 'Liveness', responses: { '200': { description: 'ok' } } } },
      '/healthz': { get: { ...open, summary: 'Liveness', responses: { '200': { description: 'ok' } } } },
      '/readyz': {
        get: { ...open, summary: 'Readiness (Redis reachable)', responses: { '200': { description: 'ready' }, '503': { description: 'not ready' } } },
      },
      '/openapi.json': { get: { ...open, summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
      '/docs': { get: { ...open, summary: 'This document as a page', responses: { '200': { description: 'HTML' } } } },
      '/': { get: { ...open, summary: 'Service description', responses: { '200': { description: 'name and description' } } } },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The admin token or a user’s API token' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} } },
          },
        },
        Instance: {
          type: 'object',
          required: ['instance_id', 'url', 'access_token', 'status', 'base_image', 'devcontainer_image', 'build_logs_url'],
          properties: {
            instance_id: { type: 'string' },
            user_id: { type: 'string' },
            url: {
              type: 'string',
              description:
                'Opens the editor: https://<BASE_DOMAIN>/instances/<id>?tkn=<access_token>, which redirects to the instance’s own origin (editor_url) and leaves a session cookie there',
            },
            access_token: { type: 'string', description: 'Opens this instance’s editor; empty when it was sealed with an earlier CODEBAY_SECRET_KEY' },
            status: { type: 'string', enum: [...INSTANCE_STATUSES] },
            base_image: { type: ['string', 'null'] },
            devcontainer_image: { type: ['string', 'null'] },
            build: {
              type: ['object', 'null'],
              description: 'Build key (sha256 of everything the build reads) and whether the image was already in the registry',
              properties: { key: { type: 'string' }, cache: { type: 'string', enum: ['hit', 'miss'] } },
            },
            build_logs_url: { type: 'string' },
            editor_url: {
              type: 'string',
              description: 'The instance’s own origin, https://<id>.<BASE_DOMAIN>/ (http://<id>.localhost:<port>/ on one machine)',
            },
            error: { type: ['string', 'null'] },
            phase: { type: ['string', 'null'] },
            resources: {
              ...fromZod(resourcesSchema, 'output'),
              description:
                'What the instance runs with, named as the create fields: the request’s (with defaults), raised to the devcontainer.json’s hostRequirements (cpus → cpu_request, memory → memory_request, storage → storage_size; limits at least the requests)',
            },
            kept_until: {
              type: ['string', 'null'],
              format: 'date-time',
              description:
                'A Failed instance whose provisioning failed: until when what it left is kept for the platform’s operators to inspect (FAILED_INSTANCE_KEEP_SECONDS; Docker: the stopped container; Kubernetes: the objects and volume, the Deployment scaled to 0); removed then, or at once by a DELETE. Null when nothing is kept',
            },
            warning: {
              type: ['string', 'null'],
              description:
                'Something that went wrong without stopping the instance: its image’s push failed after it started from the image its builder built (the image is not in the build cache)',
            },
            warnings: {
              type: 'array',
              description:
                'devcontainer.json properties accepted but not applied as written (docs/conformance.md), and lifecycle commands that failed; shown in the build log too',
              items: { type: 'object', required: ['property', 'message'], properties: { property: { type: 'string' }, message: { type: 'string' } } },
            },
            lifecycle: {
              type: ['object', 'null'],
              description: 'The lifecycle commands of the instance’s last start, as its launcher reported them (null until one ran)',
              properties: {
                wait_for: { type: 'string', description: 'The command the editor waited for (waitFor; default updateContentCommand)' },
                commands: {
                  type: 'object',
                  additionalProperties: {
                    type: 'object',
                    properties: {
                      state: { type: 'string', enum: ['running', 'succeeded', 'failed', 'skipped'] },
                      exit_code: { type: ['integer', 'null'] },
                      duration_ms: { type: ['integer', 'null'] },
                      at: { type: 'string', format: 'date-time' },
                    },
                  },
                },
                ended: { type: 'boolean', description: 'postStartCommand ended: every command of the start ran (postAttachCommand runs per session)' },
                ok: { type: 'boolean', description: 'false once a command failed; the ones after it were skipped' },
              },
            },
            logs_url: { type: 'string', description: 'The instance’s own log (GET /api/instances/{id}/logs)' },
            workspace_folder: {
              type: 'string',
              description:
                'The folder the editor opens and lifecycle commands run in (devcontainer.json workspaceFolder; default /workspace). The instance’s own workspace volume is at workspaceMount’s target (default /workspace).',
            },
            ports: {
              type: 'array',
              description:
                'The config’s forwardPorts, each at its own origin https://<id>-<port>.<BASE_DOMAIN>/ (http://<id>-<port>.localhost:<port>/ on one machine), guarded by the instance’s access token like the editor; any other port of the instance is reachable the same way',
              items: {
                type: 'object',
                required: ['port', 'label', 'origin', 'url'],
                properties: {
                  port: { type: 'integer', minimum: 1, maximum: 65535 },
                  label: { type: ['string', 'null'], description: 'portsAttributes.<port>.label' },
                  origin: { type: 'string', description: 'Where the port is served' },
                  url: { type: 'string', description: 'Opens it: the origin with ?tkn=<access_token>, exchanged for a cookie of that origin' },
                },
              },
            },
            vscode_version: { type: 'string' },
            created_at: { type: 'string', format: 'date-time' },
            timings: { type: 'object', additionalProperties: { type: ['string', 'null'] } },
            queue: {
              type: ['object', 'null'],
              description:
                'While the instance is Queued and its build waits for a builder: its place in the order builders take builds (first come, first served), and a rough estimate of when it starts. Null otherwise.',
              required: ['position', 'waiting', 'builds_ahead', 'running', 'estimated_start_seconds'],
              properties: {
                position: { type: 'integer', minimum: 1, description: '1 = the next build a free builder takes' },
                waiting: { type: 'integer', minimum: 1, description: 'Builds waiting, this one included' },
                builds_ahead: { type: 'integer', minimum: 0, description: 'Waiting builds ahead of this one (position - 1)' },
                running: { type: 'integer', minimum: 0, description: 'Builds running now' },
                estimated_start_seconds: {
                  type: ['integer', 'null'],
                  minimum: 0,
                  description:
                    'Seconds until a builder takes it: position × the mean duration of recent builds ÷ the builds running; null when no build finished lately or no builder is working',
                },
              },
            },
          },
        },
        EditorVersions: {
          type: 'object',
          required: ['versions', 'source'],
          properties: {
            versions: {
              type: 'array',
              items: {
                type: 'object',
                required: ['vscode_version', 'code_server_version', 'default'],
                properties: {
                  vscode_version: { type: 'string', examples: ['1.100.3'] },
                  code_server_version: { type: ['string', 'null'], description: 'The code-server release serving it (null when only configured)' },
                  default: { type: 'boolean', description: 'What an instance runs when its request names no vscode_version' },
                },
              },
            },
            source: {
              type: 'string',
              enum: ['provisioner', 'configuration'],
              description: 'provisioner: the editor bundles the provisioners found and published; configuration: CODEBAY_VSCODE_VERSIONS',
            },
            published_at: { type: ['string', 'null'], format: 'date-time' },
          },
        },
        InstanceList: { type: 'object', required: ['instances'], properties: { instances: { type: 'array', items: ref('Instance') } } },
        BuildStatus: {
          type: 'object',
          properties: { instance_id: { type: 'string' }, status: { type: 'string' }, error: { type: ['string', 'null'] }, phase: { type: ['string', 'null'] } },
        },
        BuildLogs: {
          type: 'object',
          properties: {
            instance_id: { type: 'string' },
            status: { type: 'string' },
            logs: { type: 'string' },
            lines: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, text: { type: 'string' } } } },
            finished: { type: ['object', 'null'] },
          },
        },
      },
    },
  };
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A plain, self-contained page of the document (no external assets: this network is closed). */
export function openApiPage(doc: Json): string {
  const paths = doc.paths as Record<string, Record<string, { summary?: string; security?: unknown[] }>>;
  const rows = Object.entries(paths)
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(
        ([method, op]) =>
          `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${escape(path)}</code></td><td>${escape(op.summary ?? '')}</td><td>${op.security ? 'none' : 'bearer'}</td></tr>`,
      ),
    )
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>codebay API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}td{padding:.3rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}code{font-size:.95em}</style></head>
<body><h1>codebay API</h1><p>${escape(String((doc.info as Json).description))} Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI 3.1).</p>
<table><thead><tr><th>method</th><th>path</th><th>what</th><th>auth</th></tr></thead><tbody>
${rows}
</tbody></table></body></html>`;
}
