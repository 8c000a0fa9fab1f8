import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DATA_DIR, HAS_SHARED_DATA, noteSkip, REPO_ROOT } from '../../../test-support/shared.ts';
import { runKeel } from './run-keel.ts';

// Oracle: docs/risk.md itself. Every `keel backtest` example runs as written (from the repository
// root, with ../shared/data where the shared data is), and prints the lines the page shows.

const doc = readFileSync(path.join(REPO_ROOT, 'docs/risk.md'), 'utf8');

/** Each ```sh block's keel command, and the ```text block right after it (the lines it prints). */
function examples(): { command: string; shows: string[] }[] {
  const out: { command: string; shows: string[] }[] = [];
  const blocks = [...doc.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1],
    body: m[2] ?? '',
    end: (m.index ?? 0) + m[0].length,
    start: m.index ?? 0,
  }));
  blocks.forEach((b, i) => {
    // Backtests only: a paper or live example needs a market to connect to.
    if (b.lang !== 'sh' || !/^keel backtest /m.test(b.body)) return;
    const command = b.body
      .split('\n')
      .filter((l) => l.startsWith('keel '))
      .join('');
    const next = blocks[i + 1];
    const adjacent = next !== undefined && next.lang === 'text' && doc.slice(b.end, next.start).trim() === '';
    out.push({ command, shows: adjacent ? (next?.body ?? '').split('\n').filter((l) => l.trim() !== '') : [] });
  });
  return out;
}

/** Splits a shell command line (double quotes only, as the page uses them). */
function argv(command: string): string[] {
  return [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) =>
    (m[1] ?? m[2] ?? '').replace('../shared/data/', `${DATA_DIR}/`),
  );
}

if (!HAS_SHARED_DATA) noteSkip('docs/risk.md examples');

describe.skipIf(!HAS_SHARED_DATA)('docs/risk.md examples run as written', () => {
  const list = examples();
  it('the page has examples with their output', () => {
    expect(list.length).toBeGreaterThanOrEqual(4);
    expect(list.filter((e) => e.shows.length > 0).length).toBeGreaterThanOrEqual(4);
  });
  for (const ex of list) {
    it(ex.command.slice(0, 120), () => {
      const [keel, ...args] = argv(ex.command);
      expect(keel).toBe('keel');
      const r = runKeel(REPO_ROOT, args);
      expect(r.code, r.err).toBe(0);
      const printed = r.out.split('\n');
      for (const line of ex.shows) expect(printed, `docs/risk.md shows: ${line}`).toContain(line);
    });
  }
});
