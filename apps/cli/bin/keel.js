#!/usr/bin/env node
// The `keel` command. It runs the compiled bundle in ../dist (`npm run build`, which `npm ci` runs
// through the root `prepare` script). When that bundle is missing or was built from sources that
// have changed since, it runs the TypeScript sources through tsx instead and says so on stderr:
// a stale build never runs old code silently.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { staleness } from './fresh.js';

const cliDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const why = staleness(path.join(cliDir, 'dist'), path.resolve(cliDir, '../..'));
let main;
if (why === undefined) {
  if (process.env.KEEL_DEBUG) process.setSourceMapsEnabled(true);
  // A strategy file's `import ... from '@keel/core'` and `from 'zod'` get these very modules (one
  // engine, one SMA class, one zod).
  globalThis[Symbol.for('keel.bundledModules')] = {
    '@keel/core': new URL('../dist/keel-core.js', import.meta.url).href,
    zod: new URL('../dist/keel-zod.js', import.meta.url).href,
  };
  ({ main } = await import('../dist/main.js'));
} else {
  process.stderr.write(`keel: ${why}; running the TypeScript sources (slower). \`npm run build\` compiles them.\n`);
  const { register } = await import('tsx/esm/api');
  register();
  globalThis[Symbol.for('keel.tsxRegistered')] = true;
  ({ main } = await import('../src/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
