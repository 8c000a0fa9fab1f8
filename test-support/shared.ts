import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root and the shared folder beside it (real data and reference results). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SHARED_DIR = process.env.KEEL_SHARED_DIR ?? path.resolve(REPO_ROOT, '../shared');
export const DATA_DIR = path.join(SHARED_DIR, 'data');
export const BACKTRADER_DIR = path.join(SHARED_DIR, 'reference', 'backtrader');
export const HAS_SHARED_DATA = existsSync(DATA_DIR);

export function dataFile(name: string): string {
  return path.join(DATA_DIR, name);
}

/** Prints a visible note once when a suite skips for lack of shared data. */
export function noteSkip(suite: string, what = `shared data at ${DATA_DIR}`): void {
  console.warn(`[skip] ${suite}: ${what} is not present`);
}
