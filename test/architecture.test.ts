// The direction of dependencies between Keel's packages, held against the source. The allowed
// graph is written once, as the table in docs/architecture.md: this test reads it from there, so
// the page and the rule cannot drift apart. A wrong import fails here, naming the file.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../test-support/shared.ts';

interface Rule {
  /** Workspace packages this one may import. */
  readonly keel: ReadonlySet<string>;
  /** Whether its source may import Node's built-in modules. */
  readonly node: boolean;
}

interface Workspace {
  readonly name: string;
  readonly dir: string;
  /** Runtime dependencies (what its src may import); dev dependencies are for its tests. */
  readonly deps: ReadonlySet<string>;
  readonly devDeps: ReadonlySet<string>;
}

const ARCHITECTURE = path.join(REPO_ROOT, 'docs', 'architecture.md');

/** The table rows of docs/architecture.md: | `@keel/x` | `folder` | may import ... | Node ... | */
function readRules(): Map<string, Rule> {
  const rules = new Map<string, Rule>();
  for (const line of readFileSync(ARCHITECTURE, 'utf8').split('\n')) {
    const m = /^\| `(@keel\/[a-z-]+)` \| `[^`]+` \| ([^|]*) \| (yes|no) \|/.exec(line);
    if (m === null) continue;
    const keel = new Set([...(m[2] ?? '').matchAll(/`(@keel\/[a-z-]+)`/g)].map((x) => x[1] as string));
    rules.set(m[1] as string, { keel, node: m[3] === 'yes' });
  }
  return rules;
}

function readWorkspaces(): Workspace[] {
  const out: Workspace[] = [];
  for (const group of ['packages', 'apps']) {
    for (const entry of readdirSync(path.join(REPO_ROOT, group), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = path.join(REPO_ROOT, group, entry.name);
      const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name: string;
        dependencies?: Record<string, string>;
        peerDependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
      };
      const deps = new Set([
        ...Object.keys(manifest.dependencies ?? {}),
        ...Object.keys(manifest.peerDependencies ?? {}),
      ]);
      out.push({ name: manifest.name, dir, deps, devDeps: new Set(Object.keys(manifest.devDependencies ?? {})) });
    }
  }
  return out;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) sourceFiles(full, out);
    else if (/\.(ts|tsx|mts|js|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(full);
  }
  return out.sort();
}

/** Every module specifier a file imports or re-exports, static or dynamic, type-only included. */
function importsOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

/** `@scope/name/sub` -> `@scope/name`; `name/sub` -> `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

const NODE_BUILTINS = new Set(builtinModules);

/**
 * Files Keel writes for users (`keel new strategy`) are not the CLI's own code: like any strategy
 * file, they may import only what the strategy loader provides (runtime/src/strategy-file.ts).
 */
const STRATEGY_TEMPLATES = path.join(REPO_ROOT, 'apps', 'cli', 'src', 'templates') + path.sep;
const STRATEGY_FILE_IMPORTS = new Set(['@keel/core', 'zod']);

function templateProblem(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('node:') || STRATEGY_FILE_IMPORTS.has(specifier)) return null;
  return 'is not among what a strategy file can import (@keel/core, zod, node: built-ins, files beside it)';
}

/** What is wrong with one import of a workspace's source, or null. */
function importProblem(ws: Workspace, rule: Rule, file: string, specifier: string): string | null {
  if (specifier.startsWith('.')) {
    const target = path.resolve(path.dirname(file), specifier);
    const src = path.join(ws.dir, 'src');
    return target === src || target.startsWith(src + path.sep)
      ? null
      : `reaches outside ${ws.name}'s src by a relative path: import the package instead`;
  }
  if (specifier.startsWith('node:') || NODE_BUILTINS.has(specifier)) {
    if (!rule.node) return `imports Node's ${specifier}: ${ws.name} runs without Node (docs/architecture.md)`;
    return specifier.startsWith('node:') ? null : `imports ${specifier} without the node: prefix`;
  }
  const pkg = packageOf(specifier);
  if (pkg === ws.name) return `imports its own package ${pkg}: use a relative path`;
  if (pkg.startsWith('@keel/') && !rule.keel.has(pkg))
    return `imports ${pkg}, which ${ws.name} may not import (the graph in docs/architecture.md)`;
  if (!ws.deps.has(pkg)) return `imports ${pkg}, which is not in the dependencies of ${ws.name}'s package.json`;
  return null;
}

/** Whether `from` may reach `to` through the allowed graph (directly or through other packages). */
function reaches(rules: ReadonlyMap<string, Rule>, from: string, to: string, seen = new Set<string>()): boolean {
  if (from === to) return true;
  if (seen.has(from)) return false;
  seen.add(from);
  for (const next of rules.get(from)?.keel ?? []) if (reaches(rules, next, to, seen)) return true;
  return false;
}

/** Helpers every package's tests may share (the shared data folder, PostgreSQL, fixtures). */
const TEST_SUPPORT = path.join(REPO_ROOT, 'test-support') + path.sep;

/**
 * What is wrong with one import of a workspace's tests, or null. A relative import stays inside
 * the package or reaches test-support/, never another package's files. Tests may use
 * what their package may import and, beyond that, the workspace packages their package.json lists
 * in devDependencies, provided none of those depends on the package under test: a test of core
 * that imports data would make core's tests depend on a package built on core.
 */
function testImportProblem(ws: Workspace, rule: Rule, file: string, specifier: string): string | null {
  if (specifier.startsWith('.')) {
    const target = path.resolve(path.dirname(file), specifier);
    return target.startsWith(ws.dir + path.sep) || target.startsWith(TEST_SUPPORT)
      ? null
      : `reaches outside ${ws.name} by a relative path: share it from test-support/ instead`;
  }
  if (!specifier.startsWith('@keel/')) return null;
  const pkg = packageOf(specifier);
  if (pkg === ws.name || rule.keel.has(pkg)) return null;
  if (!ws.devDeps.has(pkg))
    return `imports ${pkg}, which ${ws.name} may not import and its package.json does not list in devDependencies`;
  if (reaches(rules, pkg, ws.name))
    return `imports ${pkg}, which depends on ${ws.name}: move the test to ${pkg} or to the root test folder`;
  return null;
}

const rules = readRules();
const workspaces = readWorkspaces();

describe('dependency direction (the graph in docs/architecture.md)', () => {
  it('the page lists every workspace package, and nothing else', () => {
    expect([...rules.keys()].sort()).toEqual(workspaces.map((w) => w.name).sort());
  });

  it('the allowed graph has no cycle', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (name: string, trail: string[]): void => {
      if (state.get(name) === 'done') return;
      if (state.get(name) === 'visiting') throw new Error(`cycle: ${[...trail, name].join(' -> ')}`);
      state.set(name, 'visiting');
      for (const next of rules.get(name)?.keel ?? []) visit(next, [...trail, name]);
      state.set(name, 'done');
    };
    for (const name of rules.keys()) visit(name, []);
  });

  it('each package.json declares only the workspace packages its package may import', () => {
    const problems: string[] = [];
    for (const ws of workspaces) {
      const rule = rules.get(ws.name);
      for (const dep of ws.deps)
        if (dep.startsWith('@keel/') && !rule?.keel.has(dep)) problems.push(`${ws.name} depends on ${dep}`);
    }
    expect(problems).toEqual([]);
  });

  it('@keel/core has no runtime dependency at all', () => {
    const core = workspaces.find((w) => w.name === '@keel/core');
    expect([...(core?.deps ?? ['@keel/core missing'])]).toEqual([]);
  });

  it('@keel/core reads no wall clock, no platform randomness and sets no timer (its time comes from the bars)', () => {
    // ES itself has Date.now and Math.random, so the compiler settings alone do not keep them out.
    const forbidden =
      /\bDate\.now\s*\(|new Date\(\s*\)|Math\.random\s*\(|\b(setTimeout|setInterval|setImmediate|queueMicrotask)\s*\(|performance\.now/;
    const core = workspaces.find((w) => w.name === '@keel/core');
    const problems: string[] = [];
    for (const file of sourceFiles(path.join(core?.dir ?? 'packages/core', 'src'))) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (forbidden.test(line)) problems.push(`${path.relative(REPO_ROOT, file)}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(problems).toEqual([]);
  });

  it('every import in packages/*/src and apps/*/src is allowed and declared', () => {
    const problems: string[] = [];
    let checked = 0;
    for (const ws of workspaces) {
      const rule = rules.get(ws.name);
      if (rule === undefined) continue; // reported by the first test
      for (const file of sourceFiles(path.join(ws.dir, 'src'))) {
        for (const specifier of importsOf(file)) {
          checked++;
          const problem = file.startsWith(STRATEGY_TEMPLATES)
            ? templateProblem(specifier)
            : importProblem(ws, rule, file, specifier);
          if (problem !== null) problems.push(`${path.relative(REPO_ROOT, file)}: '${specifier}' ${problem}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
    expect(problems).toEqual([]);
  });

  it('every import of a workspace package or by a relative path in packages/*/test and apps/*/test is allowed, and none points back up', () => {
    const problems: string[] = [];
    let checked = 0;
    for (const ws of workspaces) {
      const rule = rules.get(ws.name);
      const tests = path.join(ws.dir, 'test');
      if (rule === undefined || !existsSync(tests)) continue;
      for (const file of sourceFiles(tests)) {
        for (const specifier of importsOf(file)) {
          if (specifier.startsWith('@keel/')) checked++;
          const problem = testImportProblem(ws, rule, file, specifier);
          if (problem !== null) problems.push(`${path.relative(REPO_ROOT, file)}: '${specifier}' ${problem}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(problems).toEqual([]);
  });

  it('no workspace package lists in devDependencies a workspace package that depends on it', () => {
    const problems: string[] = [];
    for (const ws of workspaces)
      for (const dep of ws.devDeps)
        if (dep.startsWith('@keel/') && reaches(rules, dep, ws.name)) problems.push(`${ws.name} dev-depends on ${dep}`);
    expect(problems).toEqual([]);
  });
});
