import { checkFeatureRefs, checkSupported, parseDevcontainerJson, type DevcontainerConfig, type SourceShape } from './parse.ts';
import { checkRefused } from './conformance.ts';
import { checkBuildPolicy, type BuildPolicy } from './policy.ts';
import { checkSchema } from './schema.ts';

/**
 * Everything codebay checks in a devcontainer.json before anything is queued, in order:
 * JSONC syntax (400), supported forms (422), the spec's schema (422), properties an instance
 * cannot run without (422: `privileged`), feature references (422),
 * the build policy (422: host variables, Docker flags, image and feature sources).
 * The builder runs the same checks again on what it builds.
 */
export function validateDevcontainer(text: string, shape: SourceShape, policy: BuildPolicy, name = 'devcontainer.json'): DevcontainerConfig {
  const config = parseDevcontainerJson(text, name);
  checkSupported(config, shape, name);
  checkSchema(config, name);
  checkRefused(config, name);
  checkFeatureRefs(config, shape, name);
  checkBuildPolicy(config, policy, name);
  return config;
}
