// The soak case of `npm run bench`, in its own process (its RSS is this bot's alone): a paper bot
// (the Bot and its store, as `keel paper --replay` runs it) placing two orders a bar for
// KEEL_SOAK_BARS bars (default 20,000: 40,000 orders). Prints one JSON line: the per-bar time and
// the memory after few orders and after all of them, and what the engine held at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { seriesFromRows } from '@keel/core';
import { openStore } from '@keel/store';
import { Bot, replaySource } from '../packages/runtime/src/index.ts';
import { gridChurn } from '../packages/runtime/test/fixtures/strategies.ts';
import { FEED, paperBotConfig } from '../packages/runtime/test/live-harness.ts';

const bars = Number(process.env.KEEL_SOAK_BARS ?? 20_000);
const window = 1_000;
const feed = FEED;
const t0 = Date.UTC(2024, 0, 1);
// A market going sideways: the strategy's limit buys rest 200 below the low and never fill.
const series = seriesFromRows(
  Array.from({ length: bars }, (_, i) => {
    const o = 40_000 + 10 * (i % 200);
    return { time: t0 + i * 60_000, open: o, high: o + 20, low: o - 20, close: o + 5, volume: 50 };
  }),
);
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const mb = (x: number) => x / 1048576;
const memory = () => {
  gc();
  const m = process.memoryUsage();
  return { rssMb: mb(m.rss), heapMb: mb(m.heapUsed) };
};

const dir = mkdtempSync(path.join(tmpdir(), 'keel-soak-'));
const store = await openStore({ url: `sqlite:${path.join(dir, 'soak.db')}`, synchronous: 'NORMAL' });
let orders = 0;
const bot = new Bot(
  paperBotConfig(store, 'soak', gridChurn, {
    paperCash: 1_000_000,
    onEvent: (e) => {
      if (e.type === 'order.submitted') orders++;
    },
  }),
);
await bot.start();
// Bars are timed in two windows of `window` bars: after the first few hundred (few orders) and at the
// end (after all of them). The journal's writes of a window count in it; the GC of a mark does not.
const marks: { bar: number; before: number; after: number; orders: number; rssMb: number; heapMb: number }[] = [];
const at = new Set([window / 2, (3 * window) / 2, bars - window - 1, bars - 1]);
const inner = replaySource(feed, series);
const source = {
  close: () => inner.close(),
  async *[Symbol.asyncIterator]() {
    let i = 0;
    for await (const ev of inner) {
      if (at.has(i)) {
        await bot.settled();
        const before = performance.now();
        const m = memory();
        marks.push({ bar: i, before, after: performance.now(), orders, ...m });
      }
      yield ev;
      i++;
    }
  },
};
await bot.run(source);
const retained = bot.retained().engine;
await bot.stop();
await store.close();
rmSync(dir, { recursive: true, force: true });
const [a, b, c, d] = marks as [(typeof marks)[0], (typeof marks)[0], (typeof marks)[0], (typeof marks)[0]];
const usPerBar = (x: (typeof marks)[0], y: (typeof marks)[0]) => ((y.before - x.after) / (y.bar - x.bar)) * 1000;
console.log(
  JSON.stringify({
    bars,
    early: { orders: b.orders, usPerBar: usPerBar(a, b), rssMb: b.rssMb, heapMb: b.heapMb },
    late: { orders: d.orders, usPerBar: usPerBar(c, d), rssMb: d.rssMb, heapMb: d.heapMb },
    retained,
  }),
);
