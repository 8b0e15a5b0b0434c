// Writes src/schema.ts — TypeScript types of every route — from the gateway's OpenAPI
// document, so the client and the API cannot drift apart unnoticed.
//
//   node --import tsx packages/api-client/scripts/generate.ts            # from the gateway's source
//   node --import tsx packages/api-client/scripts/generate.ts --url URL  # from a running gateway
//   ... --check     exit 1 (and say so) when src/schema.ts differs from what it would write
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { schemaFromDocument } from '../src/generate.ts';

const out = fileURLToPath(new URL('../src/schema.ts', import.meta.url));
const args = process.argv.slice(2);
const url = args.includes('--url') ? args[args.indexOf('--url') + 1] : undefined;
const doc = url
  ? await (await fetch(`${url.replace(/\/$/, '')}/openapi.json`)).json()
  : (await import('../../../services/gateway/src/http/openapi.ts')).openApiDocument('https://vscode.local');
const text = await schemaFromDocument(doc);
if (args.includes('--check')) {
  if (readFileSync(out, 'utf8') !== text) {
    process.stderr.write(`${out} is out of date: run \`pnpm --filter @codebay/api-client generate\`\n`);
    process.exit(1);
  }
  process.stdout.write('schema.ts matches the OpenAPI document\n');
} else {
  writeFileSync(out, text);
  process.stdout.write(`wrote ${out}\n`);
}
