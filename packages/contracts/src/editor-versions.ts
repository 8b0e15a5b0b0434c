import { z } from 'zod';

/** One editor version an instance can run: the VS Code version (what `vscode_version` names) and the code-server release that serves it. */
export const editorVersionSchema = z.object({
  vscode_version: z.string().regex(/^[0-9]+\.[0-9]+\.[0-9]+$/),
  /** null when only the VS Code version is known (a deployment's configured list). */
  code_server_version: z.string().nullable(),
});
export type EditorVersion = z.infer<typeof editorVersionSchema>;

/**
 * What a provisioner publishes at `redisKeys.editorVersions(queuePrefix)`: the editor bundles it
 * can start instances with (a wire format: gateway and provisioner parse it with this schema).
 */
export const publishedEditorVersionsSchema = z.object({
  versions: z.array(editorVersionSchema),
  /** Who published it (`provisioner@<host>:<pid>`), and when (ISO time). */
  publisher: z.string(),
  published_at: z.string(),
});
export type PublishedEditorVersions = z.infer<typeof publishedEditorVersionsSchema>;

/** Compares dotted numeric versions (`1.100.3` < `1.139.0`); missing parts count as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Newest VS Code first, one entry per VS Code version: the order the API lists them in, and the first is the default. */
export function newestFirst(versions: EditorVersion[]): EditorVersion[] {
  const seen = new Set<string>();
  return [...versions]
    .sort((a, b) => compareVersions(b.vscode_version, a.vscode_version))
    .filter((v) => (seen.has(v.vscode_version) ? false : (seen.add(v.vscode_version), true)));
}
