export * from './bot-ops.ts';
export { intentLogFile, readIntentLog } from './intents.ts';
export * from './keys.ts';
export type * from './schema.ts';
export { MIGRATIONS } from './schema.ts';
export * from './store.ts';
