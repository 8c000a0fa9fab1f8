export * from './clock.ts';
export * from './sources.ts';
export * from './runner.ts';
export * from './bot.ts';
export * from './journal.ts';
export * from './live/port.ts';
export * from './live/venue.ts';
export * from './live/recover.ts';
