// Is the compiled CLI current? Shared by the bin (before it runs the bundle), the build script
// (`--if-stale`) and the tests. Plain JavaScript: it runs before anything is compiled.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** The build's list of sources and their modification times, inside the dist folder. */
export const MANIFEST = 'manifest.json';

/**
 * Why the compiled CLI in `distDir` must not run (missing, or built from sources that have changed
 * since), or undefined when it is current. Sources are compared by modification time: a checkout,
 * an edit or a `git pull` all change it. A new file counts through the changed file that imports it.
 */
export function staleness(distDir, root) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(path.join(distDir, MANIFEST), 'utf8'));
  } catch {
    return 'the compiled CLI (apps/cli/dist) is missing';
  }
  for (const [rel, mtimeMs] of manifest.inputs) {
    const s = statSync(path.join(root, rel), { throwIfNoEntry: false });
    if (s === undefined) return `${rel} is gone since the CLI was compiled`;
    if (s.mtimeMs !== mtimeMs) return `${rel} changed after the CLI was compiled`;
  }
  return undefined;
}
