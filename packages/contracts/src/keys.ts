/** Redis key helpers. Keys are a wire format shared by every service. */
export const redisKeys = {
  instance: (instanceId: string) => `codebay:instance:${instanceId}`,
  userInstances: (userId: string) => `codebay:user:${userId}:instances`,
  allInstances: () => 'codebay:instances',
  buildLogs: (instanceId: string) => `codebay:build:${instanceId}:logs`,
  /** The instance's own log (launcher, lifecycle commands, editor), mirrored from its container by the provisioner. */
  instanceLogs: (instanceId: string) => `codebay:instance:${instanceId}:logs`,
  /** Held by the instance whose builder is building a build key right now. */
  buildLock: (key: string) => `codebay:build-lock:${key}`,
  /** The image a builder built and pushed for a build key: its digest and launch configuration (JSON). */
  builtImage: (key: string) => `codebay:built-image:${key}`,
  /** A create's Idempotency-Key, per caller (`admin` or `user:<id>`): the instance it made. */
  idempotency: (caller: string, key: string) => `codebay:idempotency:${caller}:${key}`,
  /** A gateway process's own stream that wakes its build-log reader when a follower joins. */
  logFollowersWake: (processId: string) => `codebay:sse-wake:${processId}`,
  /**
   * The editor versions the provisioners of one deployment (its queue prefix) can start
   * instances with (JSON, `publishedEditorVersionsSchema`), published by them and read by the gateway.
   */
  editorVersions: (queuePrefix: string) => `codebay:editor-versions:${queuePrefix}`,
  /**
   * The fingerprint of the extension source the builders of one deployment (its queue prefix)
   * bake extensions from (JSON, `publishedExtensionSourceSchema`), published by them and read
   * wherever the build cache is looked up: an image baked from another source is not a hit.
   */
  extensionSource: (queuePrefix: string) => `codebay:extension-source:${queuePrefix}`,
  /**
   * How long the last build jobs held a builder, seconds (a list, newest first, capped): what
   * a queued instance's estimated start is computed from. Per BullMQ prefix, as the queues.
   */
  recentBuildSeconds: (queuePrefix: string) => `codebay:recent-build-seconds:${queuePrefix}`,
} as const;

/** BullMQ key prefix; tests give each run its own. */
export const DEFAULT_QUEUE_PREFIX = 'codebay:bull';
