// Module resolve hook (node:module register) for strategy files: a strategy file anywhere on disk
// imports `@keel/core` and `zod` as if it lived inside Keel, so a user installs nothing and the
// file gets the very module instances the engine uses (one SMA class, one zod). Plain JavaScript:
// Node loads it in its loader thread, before anything is compiled.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** @type {Record<string, string>} specifier -> URL */
let exact = {};
/** @type {Array<[string, string]>} package name -> a file URL inside Keel to resolve it from */
let anchored = [];

export function initialize(data) {
  exact = data.exact;
  anchored = data.anchored;
}

export async function resolve(specifier, context, next) {
  const url = exact[specifier];
  if (url !== undefined) return next(url, context);
  for (const [name, from] of anchored)
    if (specifier === name || specifier.startsWith(`${name}/`)) return next(specifier, { ...context, parentURL: from });
  const r = await next(specifier, context);
  // A strategy file is ESM (it imports @keel/core) wherever it lies: in /tmp with no package.json,
  // or in a project whose package.json does not say "type": "module". Only an explicit
  // "type": "commonjs" is left to Node's own rule.
  if (
    r.url.startsWith('file:') &&
    /\.(ts|js)$/.test(r.url) &&
    !r.url.includes('/node_modules/') &&
    r.format !== 'module'
  ) {
    if (declaredType(path.dirname(fileURLToPath(r.url))) !== 'commonjs') return { ...r, format: 'module' };
  }
  return r;
}

/** @type {Map<string, string | undefined>} */
const types = new Map();

/** The "type" of the nearest package.json above `dir`, if it says one. */
function declaredType(dir) {
  if (types.has(dir)) return types.get(dir);
  let t;
  try {
    t = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).type ?? 'unset';
  } catch {
    const up = path.dirname(dir);
    t = up === dir ? undefined : declaredType(up);
  }
  types.set(dir, t);
  return t;
}
