export * from './clock.ts';
export * from './sources.ts';
export * from './runner.ts';
