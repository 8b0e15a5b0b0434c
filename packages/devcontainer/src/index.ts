export * from './merge.ts';
export * from './parse.ts';
