import { TransientError } from '@codebay/contracts';
import { chmod, copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BAKED_EXTENSIONS_DIR, EXTENSIONS_LABEL, INDEX_FILE, bakedFileName, bakedIndex, type ExtensionSource, type Resolution } from './extension-source.ts';
import type { ImageStore } from './images.ts';

/** What baking extensions into an image did: the resolution, and the baked image's ID. */
export interface Baked {
  resolution: Resolution;
  imageId: string;
}

/**
 * Bakes the wanted extensions (lower-case ids, `wantedExtensionIds`) found in `source` into the
 * image `from` (an image ID on the builder's daemon): a second build `FROM` it copies each chosen
 * .vsix and the index (`BakedIndex`) to BAKED_EXTENSIONS_DIR and labels the result
 * EXTENSIONS_LABEL (with the source's fingerprint), tagged `tag` (the push ref: the push and the offer take the baked image).
 * An index is baked even when nothing was found: the launcher then installs nothing from the
 * network. `signal` stops the build. `workDir` is a scratch folder of this build (removed afterwards); `log` gets the
 * daemon's output and one line per skipped file. Throws TransientError when the source cannot
 * be listed or the build fails (`ImageStore.build`).
 */
export async function bakeExtensions(
  deps: { source: ExtensionSource; images: ImageStore },
  {
    from,
    tag,
    wanted,
    workDir,
    log,
    signal,
  }: { from: string; tag: string; wanted: readonly string[]; workDir: string; log: (line: string) => void; signal?: AbortSignal },
): Promise<Baked> {
  // The operator's folder, gone or unreadable since the builder started: a fault of this builder, not of the config.
  const resolution = await deps.source.resolve(wanted).catch((err: NodeJS.ErrnoException) => {
    throw new TransientError(`this builder's extension source cannot be read (${err.code ?? err.message})`);
  });
  for (const s of resolution.skipped) log(`codebay: extension source: ${s.file} skipped: ${s.reason}`);
  log(`codebay: extension source ${resolution.fingerprint.slice(0, 12)}…: ${resolution.found.length} of ${wanted.length} wanted extension(s) found`);
  const dir = join(workDir, 'extensions');
  await rm(workDir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  try {
    const files: string[] = [];
    for (const e of resolution.found) {
      const name = bakedFileName(e);
      await copyFile(e.path, join(dir, name)).catch((err: NodeJS.ErrnoException) => {
        throw new TransientError(`this builder's extension source changed while it was read (${e.id}: ${err.code ?? err.message})`);
      });
      await chmod(join(dir, name), 0o644);
      files.push(`extensions/${name}`);
      log(`codebay: extension ${e.id} ${e.version}: baked into the image`);
    }
    const index = bakedIndex(resolution);
    await writeFile(join(dir, INDEX_FILE), `${JSON.stringify(index, null, 2)}\n`, { mode: 0o644 });
    files.push(`extensions/${INDEX_FILE}`);
    await writeFile(join(workDir, 'Dockerfile'), `FROM ${from}\nCOPY extensions/ ${BAKED_EXTENSIONS_DIR}/\n`);
    const label = JSON.stringify({
      baked: index.extensions.map(({ id, version }) => ({ id, version })),
      missing: index.missing,
      source: resolution.fingerprint,
    });
    const imageId = await deps.images.build(workDir, files, tag, { [EXTENSIONS_LABEL]: label }, (line) => log(`codebay: ${line}`), signal);
    return { resolution, imageId };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
