import { afterAll, beforeAll, describe } from 'vitest';
import { editorEndToEnd } from '../support/editor-e2e.ts';
import { startStack, type Stack } from '../support/stack.ts';

/**
 * From an upload to VS Code in a browser, on the real components: gateway, builder
 * and provisioner processes, Redis, dockerd, the registry, the Dev Containers CLI,
 * code-server and Chromium. The same tests run against the compose deployment in
 * test/compose/compose.test.ts.
 */
describe('devcontainer.json in, VS Code in the browser out', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ name: 'e2e' });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  editorEndToEnd(() => ({ url: stack.url, names: stack.names, registry: stack.env.REGISTRY!, api: stack.api }), { workspace: true });
});
