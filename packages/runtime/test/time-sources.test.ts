// Outside the composition root, the runtime reads no wall clock, draws no platform random number
// and sets no timer of its own: the bot takes `clock`, `timer` and `rng`, the live venue its
// timer, a paced replay its timer (docs/live.md, "Where time and randomness come from"). Invariant
// over the source, naming each line that breaks it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test-support/shared.ts';

const SRC = path.join(REPO_ROOT, 'packages', 'runtime', 'src');
/** Files allowed to use the machine's time, each for a reason. */
const ALLOWED: Readonly<Record<string, string>> = {
  'cli.ts': 'the composition root of keel paper and keel live: it stamps its log lines',
  'bench.ts': 'the latency benchmark measures the machine itself',
  'live/exchange-clock.ts': 'a Timer implementation: the exchange clock extrapolated over the local one',
};
const FORBIDDEN = /\bDate\.now\s*\(|new Date\(\s*\)|Math\.random\s*\(|\b(setTimeout|setInterval)\s*\(/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

describe('runtime: time, waits and randomness come from what it is given', () => {
  it('no Date.now(), new Date(), Math.random(), setTimeout or setInterval outside the allowed files', () => {
    const problems: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const rel = path.relative(SRC, file).split(path.sep).join('/');
      if (rel in ALLOWED) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (FORBIDDEN.test(line) && !line.trim().startsWith('//') && !line.trim().startsWith('*'))
            problems.push(`${rel}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(problems).toEqual([]);
  });
});
