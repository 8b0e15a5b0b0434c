import { checkFeatureRefs, checkSupported, parseDevcontainerJson, type DevcontainerConfig, type SourceShape } from './parse.ts';
import { checkSchema } from './schema.ts';

/**
 * Everything codebay checks in a devcontainer.json before anything is queued, in order:
 * JSONC syntax (400), supported forms (422), the spec's schema (422), feature references (422).
 */
export function validateDevcontainer(text: string, shape: SourceShape, name = 'devcontainer.json'): DevcontainerConfig {
  const config = parseDevcontainerJson(text, name);
  checkSupported(config, shape, name);
  checkSchema(config, name);
  checkFeatureRefs(config, shape, name);
  return config;
}
