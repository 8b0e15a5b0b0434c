import { z } from 'zod';
import { instanceIdSchema } from './instance.ts';

/** Every job carries only the instance id: the instance record in Redis is the source of truth. */
export const instanceJobSchema = z.object({ instanceId: instanceIdSchema });

export const buildJobSchema = instanceJobSchema;
export const provisionJobSchema = instanceJobSchema;
export const deprovisionJobSchema = instanceJobSchema;

export type BuildJob = z.infer<typeof buildJobSchema>;
export type ProvisionJob = z.infer<typeof provisionJobSchema>;
export type DeprovisionJob = z.infer<typeof deprovisionJobSchema>;
