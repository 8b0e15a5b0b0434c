import { publishedEditorVersionsSchema, redisKeys, type EditorVersion, type PublishedEditorVersions } from '@codebay/contracts';
import type { Redis } from 'ioredis';

/**
 * The editor versions a deployment can run, as its provisioners published them in Redis: the
 * provisioner is the one that sees the editor bundles (a folder on the Docker runtime), the
 * gateway answers the API and checks `vscode_version` with what they published.
 */
export class EditorVersionsBoard {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    queuePrefix: string,
  ) {
    this.key = redisKeys.editorVersions(queuePrefix);
  }

  /** Publishes `versions` for `ttlSeconds` (a provisioner republishes before then; a stopped one's claim lapses). */
  async publish(versions: EditorVersion[], publisher: string, ttlSeconds: number): Promise<PublishedEditorVersions> {
    const record = publishedEditorVersionsSchema.parse({ versions, publisher, published_at: new Date().toISOString() });
    await this.redis.set(this.key, JSON.stringify(record), 'EX', ttlSeconds);
    return record;
  }

  /** What was published last, or undefined when nothing (valid) is there. */
  async read(): Promise<PublishedEditorVersions | undefined> {
    const raw = await this.redis.get(this.key);
    if (raw === null) return undefined;
    try {
      const parsed = publishedEditorVersionsSchema.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }
}
