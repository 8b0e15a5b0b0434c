import openapiTS, { astToString } from 'openapi-typescript';
import { format, resolveConfig } from 'prettier';
import { fileURLToPath } from 'node:url';

const HEADER = `// Generated from the gateway's OpenAPI document by packages/api-client/scripts/generate.ts.
// Do not edit: change the gateway's document (services/gateway/src/http/openapi.ts) and regenerate.
// A test compares this file with what the running gateway serves.
`;

/** The route types for an OpenAPI document, as src/schema.ts holds them. */
export async function schemaFromDocument(doc: unknown): Promise<string> {
  const ast = await openapiTS(doc as Parameters<typeof openapiTS>[0]);
  // Formatted as the repository formats code, so a regeneration diffs only where the API changed.
  const file = fileURLToPath(new URL('./schema.ts', import.meta.url));
  return format(HEADER + astToString(ast), { ...(await resolveConfig(file)), filepath: file });
}
