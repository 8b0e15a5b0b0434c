export * from './errors.ts';
export * from './instance.ts';
export * from './jobs.ts';
export * from './keys.ts';
export * from './logs.ts';
export * from './quantity.ts';
export * from './image-ref.ts';
export * from './instance-record.ts';
