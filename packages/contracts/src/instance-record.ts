import { z } from 'zod';
import { INSTANCE_STATUSES, launchConfigSchema, resourcesSchema, runtimeInfoSchema, type InstanceRecord } from './instance.ts';

const timestamp = z.string().nullable();

/** One warning on an instance (`PropertyWarning`). */
export const propertyWarningSchema = z.object({ property: z.string().max(300), message: z.string().max(2_000) });

/** An instance's lifecycle (`LifecycleStatus`): what the provisioner checks before it writes one read from an instance's log. */
export const lifecycleStatusSchema = z.object({
  waitFor: z.string().max(100),
  commands: z.record(
    z.string().max(100),
    z.object({
      state: z.enum(['running', 'succeeded', 'failed', 'skipped']),
      exitCode: z.number().int().min(0).max(100_000).nullable().optional(),
      durationMs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
      at: z.string().max(64),
    }),
  ),
  ended: z.boolean(),
  ok: z.boolean(),
});

/**
 * The instance record as read back from Redis: every field checked, so a record another
 * version wrote (or a hand edit) is refused with the field named instead of flowing on as
 * a wrong type. Fields added since the first release are optional; unknown fields are kept.
 */
const shape = {
  id: z.string(),
  userId: z.string(),
  status: z.enum(INSTANCE_STATUSES),
  source: z.enum(['simple', 'devcontainer', 'workspace']),
  // Records made before tokens were hashed and sealed hold only `accessToken` (kept: unknown fields stay).
  accessTokenHash: z.string().default(''),
  accessTokenSealed: z.string().default(''),
  baseImage: z.string().nullable(),
  devcontainerImage: z.string().nullable(),
  artifact: z.string().nullable(),
  build: z
    .object({ key: z.string(), family: z.string(), cache: z.enum(['hit', 'miss']) })
    .nullable()
    .optional(),
  resources: resourcesSchema,
  maxResources: z.object({ cpu: z.string(), memory: z.string(), storage: z.string() }).nullable().optional(),
  vscodeVersion: z.string(),
  launch: launchConfigSchema.nullable(),
  runtime: runtimeInfoSchema.nullable(),
  failure: z.object({ phase: z.enum(['build', 'push', 'provision', 'deprovision']), reason: z.string() }).nullable(),
  kept: z.object({ until: z.string(), by: z.string() }).nullable().optional(),
  localImage: z.object({ id: z.string(), builder: z.string() }).nullable().optional(),
  warning: z.string().nullable().optional(),
  warnings: z.array(propertyWarningSchema).optional(),
  lifecycle: lifecycleStatusSchema.nullable().optional(),
  workspace: z
    .object({ target: z.string().max(1024), folder: z.string().max(1024) })
    .nullable()
    .optional(),
  workspaceSeeded: z.boolean().default(false),
  createdAt: z.string(),
  updatedAt: z.string(),
  queuedAt: timestamp,
  buildStartedAt: timestamp,
  buildEndedAt: timestamp,
  pushEndedAt: timestamp,
  provisionStartedAt: timestamp,
  containerStartedAt: timestamp,
  runningAt: timestamp,
  deletedAt: timestamp,
};
export const instanceRecordSchema = z.looseObject(shape);

// The schema and the record type describe the same thing: compiling fails when they part.
type Parsed = z.infer<z.ZodObject<typeof shape>>;
const _parsedIsRecord = (r: Parsed): InstanceRecord => r;
const _recordIsParsed = (r: InstanceRecord): Parsed => r;
void _parsedIsRecord;
void _recordIsParsed;
