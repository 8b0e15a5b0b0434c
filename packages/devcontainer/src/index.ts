export * from './merge.ts';
export * from './parse.ts';
export * from './schema.ts';
export * from './validate.ts';
export * from './build-key.ts';
