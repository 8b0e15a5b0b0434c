import { InputError, UnprocessableError, imageRefSchema } from '@codebay/contracts';
import { createScanner, parse, printParseErrorCode, type ParseError } from 'jsonc-parser';

export type DevcontainerConfig = Record<string, unknown>;

export interface JsoncProblem {
  line: number;
  column: number;
  error: string;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lastBreak = -1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line += 1;
      lastBreak = i;
    }
  }
  return { line, column: offset - lastBreak };
}

/** Real configs nest a few levels; parsers, schema checks and canonicalisation recurse per level. */
export const MAX_NESTING = 64;

/** jsonc-parser's `SyntaxKind` values (a const enum, which isolated modules cannot read). */
const TOKEN = { OpenBrace: 1, CloseBrace: 2, OpenBracket: 3, CloseBracket: 4, EOF: 17 } as const;

/** The deepest object/array nesting of a JSONC text, found with jsonc-parser's scanner (iterative: no recursion). */
function nestingDepth(text: string): { depth: number; offset: number } {
  const scanner = createScanner(text, true);
  let depth = 0;
  let max = { depth: 0, offset: 0 };
  for (let token = scanner.scan(); token !== TOKEN.EOF; token = scanner.scan()) {
    if (token === TOKEN.OpenBrace || token === TOKEN.OpenBracket) {
      depth += 1;
      if (depth > max.depth) max = { depth, offset: scanner.getTokenOffset() };
      if (depth > MAX_NESTING) break;
    } else if (token === TOKEN.CloseBrace || token === TOKEN.CloseBracket) depth -= 1;
  }
  return max;
}

/**
 * Parses devcontainer.json as JSONC (comments and trailing commas allowed, as the
 * spec says; CRLF line endings and a UTF-8 byte-order mark as editors save them). The Dev Containers CLI silently accepts broken JSON, so codebay
 * refuses it here, with line and column, before anything is queued.
 */
export function parseDevcontainerJson(raw: string, name = 'devcontainer.json'): DevcontainerConfig {
  // Saved as editors save it: a UTF-8 byte-order mark is read past (the reference CLI reads such files too);
  // UTF-16 (which the CLI cannot read either) is named instead of failing as "InvalidSymbol".
  if (/^(\uFFFD\uFFFD|\uFEFF?\u0000|[^\u0000]\u0000)/.test(raw) || raw.startsWith('\u00FF\u00FE') || raw.startsWith('\u00FE\u00FF'))
    throw new InputError('invalid_jsonc', `${name}: the file is not UTF-8 (it looks like UTF-16); save it as UTF-8`);
  const text = raw.startsWith('\uFEFF') ? raw.slice(1) : raw;
  const nesting = nestingDepth(text);
  if (nesting.depth > MAX_NESTING) {
    const at = lineColumn(text, nesting.offset);
    throw new InputError('invalid_jsonc', `${name}: line ${at.line}, column ${at.column}: nested more than ${MAX_NESTING} levels deep`);
  }
  const errors: ParseError[] = [];
  const value: unknown = parse(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    const problems: JsoncProblem[] = errors.map((e) => ({ ...lineColumn(text, e.offset), error: printParseErrorCode(e.error) }));
    const first = problems[0]!;
    throw new InputError('invalid_jsonc', `${name}: line ${first.line}, column ${first.column}: ${first.error}`, { problems });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InputError('invalid_devcontainer', `${name} must be a JSON object`);
  }
  return value as DevcontainerConfig;
}

export interface SourceShape {
  /** True when the upload carries a build context (a workspace), false for a lone devcontainer.json. */
  hasContext: boolean;
}

/**
 * Refuses the forms codebay cannot build, saying why: Docker Compose configs, and
 * Dockerfile builds without a workspace to find the Dockerfile in.
 */
export function checkSupported(config: DevcontainerConfig, shape: SourceShape, name = 'devcontainer.json'): void {
  if ('dockerComposeFile' in config) {
    throw new UnprocessableError('unsupported_devcontainer', `${name}: dockerComposeFile is not supported; use "image" or "build.dockerfile"`);
  }
  const build = config.build as Record<string, unknown> | undefined;
  const dockerfile = (build && typeof build === 'object' ? build.dockerfile : undefined) ?? config.dockerFile;
  const image = config.image;
  if (dockerfile === undefined && image === undefined) {
    throw new UnprocessableError('unsupported_devcontainer', `${name}: needs "image" or "build.dockerfile"`);
  }
  if (image !== undefined && (typeof image !== 'string' || !imageRefSchema.safeParse(image).success)) {
    throw new UnprocessableError('invalid_devcontainer', `${name}: "image" must be an image reference such as debian:bookworm`);
  }
  if (dockerfile !== undefined && typeof dockerfile !== 'string')
    throw new UnprocessableError('invalid_devcontainer', `${name}: "build.dockerfile" must be a string`);
  if (dockerfile !== undefined && !shape.hasContext) {
    throw new UnprocessableError('needs_workspace', `${name}: a Dockerfile build needs its build context; upload the folder with POST /instances/workspace`);
  }
}

/** The base image a config names (for the response's base_image), when it names one. */
export function baseImageOf(config: DevcontainerConfig): string | null {
  return typeof config.image === 'string' ? config.image : null;
}

/** OCI feature reference: registry/namespace/name with a tag or digest (`ghcr.io/devcontainers/features/node:1`). */
const OCI_FEATURE = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[a-f0-9]{64})?$/;
const TARBALL_FEATURE = /^https:\/\/[^\s]+\.(tgz|tar\.gz)$/;

/**
 * Checks each feature reference's form before anything is queued: an OCI reference, an
 * https tarball, or (with a workspace) a local folder under `.devcontainer/` that does not climb out.
 */
export function checkFeatureRefs(config: DevcontainerConfig, shape: SourceShape, name = 'devcontainer.json'): void {
  const features = config.features;
  if (features === undefined || features === null || typeof features !== 'object' || Array.isArray(features)) return;
  for (const [ref, options] of Object.entries(features as Record<string, unknown>)) {
    if (ref.startsWith('./') || ref.startsWith('../')) {
      if (!shape.hasContext) throw new UnprocessableError('needs_workspace', `${name}: local feature "${ref}" needs its folder; upload a workspace`);
      if (ref.split('/').includes('..')) throw new UnprocessableError('invalid_feature', `${name}: local feature "${ref}" must stay inside .devcontainer/`);
    } else if (!OCI_FEATURE.test(ref) && !TARBALL_FEATURE.test(ref)) {
      throw new UnprocessableError(
        'invalid_feature',
        `${name}: "${ref}" is not a feature reference (registry/namespace/name[:tag], https://….tgz, or ./local-folder)`,
      );
    }
    if (options !== null && typeof options === 'object' && Array.isArray(options)) {
      throw new UnprocessableError('invalid_feature', `${name}: options of feature "${ref}" must be an object, a string or a boolean`);
    }
  }
}
