import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { openApiDocument, openApiPage } from './openapi.ts';
import { apiRouter, type ApiDeps } from './routes.ts';

const doc = openApiDocument('https://vscode.local');

describe('OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(doc as Parameters<Validator['validate']>[0]);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('documents every route the API router has, with its methods', () => {
    // Only the route table is read: the router is built, never called.
    const router = apiRouter({
      config: { publicUrl: 'x', MAX_DEVCONTAINER_BYTES: 1, MAX_WORKSPACE_BYTES: 1 },
      artifacts: { incomingDir: '/tmp' },
    } as unknown as ApiDeps);
    const routes = (router.stack as Array<{ route?: { path: string; methods: Record<string, boolean> } }>).flatMap((layer) =>
      layer.route ? Object.keys(layer.route.methods).map((m) => [m, layer.route!.path.replace(/:(\w+)/g, '{$1}')] as const) : [],
    );
    expect(routes.length).toBeGreaterThanOrEqual(8);
    const paths = doc.paths as Record<string, Record<string, unknown>>;
    for (const [method, path] of routes) expect(paths[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
  });

  it('takes request bodies from the zod schemas that validate them', () => {
    const simple = (doc.paths as Record<string, { post: { requestBody: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } } }>)[
      '/instances/simple'
    ]!.post;
    const props = simple.requestBody.content['application/json']!.schema.properties;
    expect(Object.keys(props)).toEqual(expect.arrayContaining(['user_id', 'base_image', 'memory_limit', 'vscode_version']));
    expect(props.base_image).toMatchObject({ default: 'ubuntu:22.04' });
  });

  it('renders a self-contained page', () => {
    const html = openApiPage(doc);
    expect(html).toContain('/instances/{id}/build-logs');
    expect(html).not.toMatch(/<script|https?:\/\/(?!vscode\.local)/);
  });
});
