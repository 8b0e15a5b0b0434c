import { UnprocessableError } from '@codebay/contracts';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { readFileSync } from 'node:fs';
import type { DevcontainerConfig } from './parse.ts';

/**
 * The Development Container Specification's own schema (devContainer.base.schema.json,
 * draft 2019-09, copied with its SOURCE.md). VS Code's and Codespaces' customization
 * schemas cannot be fetched here: `customizations.vscode` is checked by hand below.
 */
const schema = JSON.parse(readFileSync(new URL('../schemas/devContainer.base.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
// Editor hints, not JSON Schema keywords.
const ajv = new Ajv2019({ allErrors: true, strict: false, validateFormats: false });
const validate = ajv.compile(schema);

/**
 * An extension id, `publisher.name[@version]`; a leading `-` opts out of one a feature or the image
 * added (the spec's form, containers.dev/implementors/json_reference: customizations.vscode.extensions).
 */
const EXTENSION_ID = /^-?[a-z0-9][a-z0-9-]*\.[a-z0-9][a-z0-9-]*(@[0-9A-Za-z.+-]+)?$/i;

export interface SchemaProblem {
  path: string;
  message: string;
}

function vscodeProblems(config: DevcontainerConfig): SchemaProblem[] {
  const vscode = (config.customizations as Record<string, unknown> | undefined)?.vscode as Record<string, unknown> | undefined;
  if (vscode === undefined) return [];
  if (vscode === null || typeof vscode !== 'object' || Array.isArray(vscode)) return [{ path: '/customizations/vscode', message: 'must be an object' }];
  const problems: SchemaProblem[] = [];
  if (vscode.extensions !== undefined) {
    if (!Array.isArray(vscode.extensions)) problems.push({ path: '/customizations/vscode/extensions', message: 'must be an array of extension ids' });
    else
      vscode.extensions.forEach((e, i) => {
        if (typeof e !== 'string' || !EXTENSION_ID.test(e))
          problems.push({
            path: `/customizations/vscode/extensions/${i}`,
            message: 'must be an extension id like publisher.name, publisher.name@1.2.3 or -publisher.name (opt out)',
          });
      });
  }
  if (vscode.settings !== undefined && (vscode.settings === null || typeof vscode.settings !== 'object' || Array.isArray(vscode.settings))) {
    problems.push({ path: '/customizations/vscode/settings', message: 'must be an object' });
  }
  return problems;
}

/** Validates a parsed devcontainer.json against the spec's schema; 422 with every problem found. */
export function checkSchema(config: DevcontainerConfig, name = 'devcontainer.json'): void {
  const problems: SchemaProblem[] = [];
  if (!validate(config)) {
    for (const e of validate.errors ?? []) {
      // The schema's oneOf/anyOf branches repeat themselves: keep the specific messages.
      if (e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'if') continue;
      problems.push({ path: e.instancePath || '/', message: e.message ?? 'is invalid' });
    }
    if (problems.length === 0) problems.push({ path: '/', message: 'does not match the devcontainer schema' });
  }
  problems.push(...vscodeProblems(config));
  if (problems.length === 0) return;
  const unique = [...new Map(problems.map((p) => [`${p.path} ${p.message}`, p])).values()];
  const first = unique[0]!;
  throw new UnprocessableError(
    'invalid_devcontainer',
    `${name}: ${first.path} ${first.message}${unique.length > 1 ? ` (and ${unique.length - 1} more)` : ''}`,
    {
      problems: unique,
    },
  );
}
