// Compiles the `keel` command to plain JavaScript in apps/cli/dist (run by `npm run build`, and by
// `npm ci` through the root `prepare` script). Plain JavaScript itself, so it needs no loader.
//
// Why one esbuild bundle and not a compiled dist/ per package:
// - Every @keel/* package keeps pointing its `exports` at its TypeScript sources, so vitest, tsx,
//   the typecheck and the benches keep running the sources with no export condition to set, and no
//   importer but the bin can ever pick up a stale compiled copy.
// - A bundle starts faster than hundreds of separately resolved modules, and with code splitting
//   each command's dynamic import becomes its own chunk: `keel --help` loads the dispatcher only.
// - Third-party packages stay external (loaded from node_modules at run time, never copied), so
//   ccxt, DuckDB, the SQLite driver and the rest load only in the commands that import them. The
//   exception is BUNDLED below: plain-JavaScript packages published as hundreds of small ES
//   modules, whose resolution alone costs more than their code (kysely: ~280 files, ~140 ms to
//   load from node_modules, ~20 ms as one chunk; zod: ~60 ms, ~30 ms). The manifest lists their
//   package.json, so an upgrade makes the build stale.
// - The bin checks the manifest written here against the sources' modification times and runs the
//   sources through tsx (saying so) when the bundle is missing or stale (bin/fresh.js).
//
// Modules keep seeing their own source location: `import.meta.url` in a workspace file is rewritten
// to that file's URL (relative to the chunk, so the checkout can move), so assets read next to a
// source file and paths computed from it resolve as they do when the sources run directly.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { MANIFEST, staleness } from './bin/fresh.js';

const cliDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(cliDir, '../..');
const distDir = path.join(cliDir, 'dist');

/** Sources that are part of the build beyond the bundled modules: a change to any makes it stale. */
function configInputs() {
  const files = [path.join(cliDir, 'build.mjs'), path.join(cliDir, 'bin', 'fresh.js'), path.join(root, 'package.json')];
  for (const group of ['packages', 'apps']) {
    for (const d of readdirSync(path.join(root, group))) {
      const pkg = path.join(root, group, d, 'package.json');
      if (statSync(pkg, { throwIfNoEntry: false })) files.push(pkg);
    }
  }
  return files;
}

const posix = (p) => p.split(path.sep).join('/');

/**
 * Modification time of each source as it was when the build read it (taken just before the read):
 * a file changed while the build runs then differs from the manifest, so the build counts as stale.
 */
const readMtimes = new Map();

/** Dependencies bundled into the chunks that use them (see the top of this file): pure JavaScript, no assets. */
export const BUNDLED = ['kysely', 'zod'];

/** The package a bare import names: `kysely`, `@scope/pkg` (from `kysely/helpers/sqlite`, `@scope/pkg/x`). */
const packageOf = (spec) => spec.split('/', spec.startsWith('@') ? 2 : 1).join('/');

/**
 * Workspace modules and BUNDLED packages are bundled; every other bare import (node_modules, node:
 * builtins) stays external.
 */
const workspaceOnly = {
  name: 'keel-workspace-only',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('@keel/') || BUNDLED.includes(packageOf(args.path))) return undefined;
      return { path: args.path, external: true };
    });
    b.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      readMtimes.set(args.path, statSync(args.path).mtimeMs);
      let text = readFileSync(args.path, 'utf8');
      if (/import\.meta\.(dirname|filename)/.test(text))
        throw new Error(
          `${posix(path.relative(root, args.path))}: use import.meta.url (the bundle rewrites it to the source's own URL); import.meta.dirname/filename would name the bundle's folder`,
        );
      if (text.includes('import.meta.url')) {
        // Every output file sits directly in dist/ (no chunk subfolder), so one relative path is right for all.
        const rel = posix(path.relative(distDir, args.path));
        text = text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
      }
      return { contents: text, loader: /\.[cm]?ts$/.test(args.path) ? 'ts' : 'js' };
    });
  },
};

/** Builds into a fresh folder and swaps it in, so a running `keel` never sees a half-written dist. */
export async function buildCli() {
  const tmp = `${distDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  readMtimes.clear();
  for (const f of configInputs()) readMtimes.set(f, statSync(f).mtimeMs);
  const result = await build({
    // keel-core and keel-zod: what a strategy file's `import ... from '@keel/core'` and `from 'zod'`
    // load (packages/runtime/src/strategy-file.ts), sharing their chunks with main so the file and
    // the engine use one module instance of each.
    entryPoints: {
      main: path.join(cliDir, 'src', 'main.ts'),
      'keel-core': path.join(root, 'packages', 'core', 'src', 'index.ts'),
      'keel-zod': fileURLToPath(import.meta.resolve('zod')),
    },
    outdir: tmp,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    chunkNames: '[name]-[hash]',
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    legalComments: 'none',
    plugins: [workspaceOnly],
    banner: { js: '// Generated by apps/cli/build.mjs from the TypeScript sources. DO NOT EDIT: run `npm run build`.' },
  });
  // A bundled package's files stand for themselves through its package.json (its version).
  const source = (p) => {
    const m = /^(.*[\\/]node_modules[\\/](?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(p);
    return m ? path.join(m[1], 'package.json') : p;
  };
  const inputs = [
    ...new Set([
      ...Object.keys(result.metafile.inputs).map((p) => source(path.resolve(root, p))),
      ...readMtimes.keys(),
    ]),
  ].sort();
  const manifest = {
    note: 'Sources this build was made from, with their modification times: bin/fresh.js runs the sources instead when any differs.',
    inputs: inputs.map((abs) => [posix(path.relative(root, abs)), readMtimes.get(abs) ?? statSync(abs).mtimeMs]),
  };
  writeFileSync(
    path.join(tmp, MANIFEST),
    `{\n "note": ${JSON.stringify(manifest.note)},\n "inputs": [\n${manifest.inputs.map((x) => `  ${JSON.stringify(x)}`).join(',\n')}\n ]\n}\n`,
  );
  const old = `${distDir}.old-${process.pid}`;
  if (statSync(distDir, { throwIfNoEntry: false })) renameSync(distDir, old);
  try {
    renameSync(tmp, distDir);
  } catch (e) {
    // Another build of the same sources swapped its folder in first: keep that one.
    if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
    rmSync(tmp, { recursive: true, force: true });
  }
  rmSync(old, { recursive: true, force: true });
  return { files: Object.keys(result.metafile.outputs).length, inputs: inputs.length };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const ifStale = process.argv.includes('--if-stale');
  const why = ifStale ? staleness(distDir, root) : 'asked';
  if (why === undefined) process.exit(0);
  const t = performance.now();
  const r = await buildCli();
  console.log(
    `keel: built apps/cli/dist (${r.files} files from ${r.inputs} sources) in ${((performance.now() - t) / 1000).toFixed(2)} s`,
  );
}
