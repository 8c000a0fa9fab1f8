import { existsSync, readFileSync } from 'node:fs';
import { register } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type AnyStrategy, InvalidParamsError, parseParams } from '@keel/core';
import { STRATEGIES } from '@keel/strategies';

/**
 * Where `--strategy` finds a strategy, for every command (backtest, paper, live, strategies): a
 * built-in name (`sma-cross`) or a file anywhere on disk (`./my-strategy.ts`, `.mts`, `.js`,
 * `.mjs`) that exports a `defineStrategy(...)`. A file imports `@keel/core` and `zod` without
 * installing anything: both resolve to Keel's own copies. TypeScript runs as written (tsx).
 */
export interface LoadedStrategy {
  readonly strategy: AnyStrategy;
  /** The file as the user named it; undefined for a built-in. */
  readonly file?: string;
  /** The file's absolute path. */
  readonly path?: string;
}

/**
 * A mistake in a strategy file, located: `my-strategy.ts:12:5: <what>`. The message is complete
 * (a stack trace would only show Keel's loader), so commands print it as it is.
 */
export class StrategyFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
    readonly reason: string,
    /** The loader's own error, for KEEL_DEBUG. */
    cause?: unknown,
  ) {
    super(
      `${file}${line !== undefined ? `:${line}${column !== undefined ? `:${column}` : ''}` : ''}: ${reason}`,
      cause === undefined ? undefined : { cause },
    );
    this.name = 'StrategyFileError';
  }
}

const FILE_EXT = /\.(?:[cm]?ts|[cm]?js)$/i;

/** A `--strategy` value that names a file rather than a built-in strategy. */
export function isStrategyFile(spec: string): boolean {
  return FILE_EXT.test(spec) || spec.includes('/') || spec.includes('\\');
}

/**
 * The strategy `spec` names. `suggest` picks the built-in a mistyped name most likely meant.
 * Throws an Error saying what is wrong: an unknown name, a missing file, or a StrategyFileError.
 */
export async function loadStrategy(
  spec: string,
  opts: { cwd?: string; suggest?: (name: string, names: readonly string[]) => string | undefined } = {},
): Promise<LoadedStrategy> {
  if (!isStrategyFile(spec)) {
    const s = Object.hasOwn(STRATEGIES, spec) ? STRATEGIES[spec] : undefined;
    if (s) return { strategy: s };
    const names = Object.keys(STRATEGIES);
    const guess = opts.suggest?.(spec, names);
    throw new Error(
      `Unknown strategy "${spec}". Available: ${names.join(', ')}${guess ? `. Did you mean "${guess}"?` : ''} (or a file of your own: --strategy ./my-strategy.ts)`,
    );
  }
  const abs = path.resolve(opts.cwd ?? process.cwd(), spec);
  if (!existsSync(abs)) throw new Error(`--strategy: no such file: ${spec}`);
  // require() does not go through the resolve hook that provides @keel/core and zod.
  if (/\.c[jt]s$/i.test(abs))
    throw new StrategyFileError(
      spec,
      undefined,
      undefined,
      'a strategy file is an ES module (import/export): name it .ts, .mts, .js or .mjs',
    );
  await installHooks();
  const url = pathToFileURL(abs).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    throw await locate(e, spec, abs, url);
  }
  return { strategy: locateThrows(pickExport(mod, spec, abs), spec, abs, url), file: spec, path: abs };
}

type Hook = (...args: never[]) => unknown;

/**
 * The strategy with each hook's exceptions located: a throw in `onBar` reaches the run's errors
 * (and its summary's warning) as `my-strategy.ts:14:11: <message>`, so the user sees where.
 */
function locateThrows(def: AnyStrategy, spec: string, abs: string, url: string): AnyStrategy {
  const frame = new RegExp(`(?:${escapeRe(url)}|${escapeRe(abs)})(?:\\?[^:\\s)]*)?:(\\d+):(\\d+)`);
  const wrap = <F extends Hook | undefined>(fn: F): F => {
    if (fn === undefined) return fn;
    return function located(...args: never[]) {
      try {
        return (fn as Hook).apply(def, args);
      } catch (e) {
        if (e instanceof Error && !e.message.startsWith(`${spec}:`)) {
          const m = frame.exec(e.stack ?? '');
          if (m) e.message = `${spec}:${m[1]}:${m[2]}: ${e.message}`;
        }
        throw e;
      }
    } as F;
  };
  const hooks: Partial<AnyStrategy> = {};
  for (const k of ['onStart', 'onBar', 'onOrder', 'onFill', 'onStop'] as const)
    if (def[k] !== undefined) (hooks as Record<string, unknown>)[k] = wrap(def[k] as Hook);
  return { ...def, ...hooks } as AnyStrategy;
}

/**
 * The strategy's parameters from the user's input, validated by its schema. For a file, a bad
 * value is reported at the parameter's line in the file (where its rule is written).
 */
export function strategyParams(loaded: LoadedStrategy, input: unknown): unknown {
  try {
    return parseParams(loaded.strategy, input);
  } catch (e) {
    if (!(e instanceof InvalidParamsError) || loaded.file === undefined || loaded.path === undefined) throw e;
    const key = e.issues[0]?.path[0];
    const abs = loaded.path;
    const line =
      (typeof key === 'string' ? lineOf(abs, new RegExp(`^\\s*['"]?${escapeRe(key)}['"]?\\s*:`)) : undefined) ??
      lineOf(abs, /\bparams\s*:/);
    throw new StrategyFileError(loaded.file, line, undefined, e.message, e);
  }
}

/**
 * The modules of the running keel that a strategy file must share, when keel is a compiled bundle
 * (set by the bin): specifier -> URL of the bundle's entry for `@keel/core` and `zod`.
 */
const BUNDLED = Symbol.for('keel.bundledModules');

let hooks: Promise<void> | undefined;

function installHooks(): Promise<void> {
  hooks ??= (async () => {
    // TypeScript, and ESM syntax in a .js file, through tsx (sources run by tsx, the bin's
    // fallback and the tests, have it registered already). Registered first, so the hook below
    // runs before it and sees what it resolved.
    if (!(globalThis as Record<symbol, unknown>)[TSX_ON]) {
      const { register: tsx } = await import('tsx/esm/api');
      tsx();
      (globalThis as Record<symbol, unknown>)[TSX_ON] = true;
    }
    // Resolved from this file's place in the checkout, Keel's node_modules are the ones found.
    const from = import.meta.url;
    const bundled = (globalThis as Record<symbol, Record<string, string> | undefined>)[BUNDLED] ?? {};
    register(new URL('./strategy-hooks.mjs', import.meta.url), {
      data: {
        // `zod/v4` is `zod` (zod 4 serves the same module under both names); other subpaths
        // (`zod/mini`, `zod/v4/core`) are resolved from Keel's node_modules.
        exact: bundled.zod !== undefined ? { ...bundled, 'zod/v4': bundled.zod } : bundled,
        anchored: [
          ['@keel/core', from],
          ['zod', from],
        ],
      },
    });
  })();
  return hooks;
}

const TSX_ON = Symbol.for('keel.tsxRegistered');

/** The strategy a module exports: its default export, else its only exported strategy. */
function pickExport(mod: Record<string, unknown>, spec: string, abs: string): AnyStrategy {
  const exportLine = () => lineOf(abs, /^\s*export\b/);
  const entries = Object.entries(mod).filter(([k]) => k !== 'default' || mod.default !== undefined);
  if (mod.default !== undefined) {
    const why = notAStrategy(mod.default);
    if (why === undefined) return mod.default as AnyStrategy;
    const named = entries.filter(([k, v]) => k !== 'default' && notAStrategy(v) === undefined);
    if (named.length === 0)
      throw new StrategyFileError(
        spec,
        lineOf(abs, /^\s*export\s+default\b/),
        undefined,
        `the default export is not a strategy: ${why}. Export one made by defineStrategy({ name, params, onStart, onBar })`,
      );
  }
  const found = entries.filter(([, v]) => notAStrategy(v) === undefined);
  if (found.length === 1) return (found[0] as [string, unknown])[1] as AnyStrategy;
  if (found.length > 1)
    throw new StrategyFileError(
      spec,
      exportLine(),
      undefined,
      `exports ${found.length} strategies (${found.map(([k]) => k).join(', ')}): make the one to run the default export`,
    );
  const hint = entries.length
    ? `exports ${entries.map(([k, v]) => `${k} (${notAStrategy(v)})`).join(', ')}`
    : 'exports nothing';
  throw new StrategyFileError(
    spec,
    exportLine(),
    undefined,
    `no strategy exported: the file ${hint}. Add \`export default defineStrategy({ name, params, onStart, onBar })\``,
  );
}

/** Why a value is not a strategy, or undefined when it is one. */
function notAStrategy(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return `a ${v === null ? 'null' : typeof v}, not a strategy object`;
  const s = v as Record<string, unknown>;
  if (typeof s.name !== 'string') return 'it has no name';
  if (typeof (s.params as { safeParse?: unknown } | undefined)?.safeParse !== 'function')
    return 'its params is not a schema (z.object({...}))';
  if (typeof s.onStart !== 'function') return 'it has no onStart(ctx)';
  if (typeof s.onBar !== 'function') return 'it has no onBar(ctx, state, bar)';
  return undefined;
}

/** An import failure as a StrategyFileError at the file's line, when the error says it. */
async function locate(e: unknown, spec: string, abs: string, url: string): Promise<Error> {
  const err = e instanceof Error ? e : new Error(String(e));
  const message = err.message.split('\n')[0] ?? '';
  const syntax = await syntaxError(abs);
  if (syntax) return new StrategyFileError(spec, syntax.line, syntax.column, `syntax error: ${syntax.text}`, err);
  const code = (err as { code?: unknown }).code;
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') {
    const wanted = /(?:package|module) '([^']+)'/.exec(message)?.[1];
    const name = wanted && !path.isAbsolute(wanted) ? wanted : undefined;
    return new StrategyFileError(
      spec,
      name ? lineOf(abs, new RegExp(`from\\s+['"]${escapeRe(name)}`)) : undefined,
      undefined,
      `${message}. A strategy file can import @keel/core, zod, node: built-ins and files beside it`,
      err,
    );
  }
  // A frame in the file itself (Node's own syntax errors start with "<url>:<line>").
  const frame = new RegExp(`(?:${escapeRe(url)}|${escapeRe(abs)})(?:\\?[^:\\s)]*)?:(\\d+)(?::(\\d+))?`).exec(
    err.stack ?? '',
  );
  const what = err.name === 'Error' ? message : `${err.name}: ${message}`;
  return new StrategyFileError(
    spec,
    frame ? Number(frame[1]) : undefined,
    frame?.[2] ? Number(frame[2]) : undefined,
    what,
    err,
  );
}

/**
 * The file's first syntax error, from esbuild (what tsx compiles with): the loaders' own messages
 * do not all carry a position ("Parse error" at 1:1 for a .mjs), so the file is parsed once more.
 */
async function syntaxError(abs: string): Promise<{ line: number; column: number; text: string } | undefined> {
  const { transform } = await import('esbuild');
  try {
    await transform(readFileSync(abs, 'utf8'), {
      loader: /\.[cm]?ts$/i.test(abs) ? 'ts' : 'js',
      sourcefile: abs,
      format: 'esm',
    });
    return undefined;
  } catch (e) {
    const m = (e as { errors?: { text: string; location: { line: number; column: number } | null }[] }).errors?.[0];
    return m?.location ? { line: m.location.line, column: m.location.column + 1, text: m.text } : undefined;
  }
}

function lineOf(file: string, re: RegExp): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) if (re.test(lines[i] as string)) return i + 1;
  return undefined;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
