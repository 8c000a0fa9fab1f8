// Live-path latency: from the moment a closed bar from the WebSocket reaches Keel to the moment
// the order request leaves (engine, strategy, risk, journal write-ahead included), against the
// exchange simulator on loopback with the real ccxt client. Printed by `npm run bench`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy } from '@keel/core';
import { startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { Bot } from './bot.ts';
import { connectExchange } from './live/ccxt.ts';
import type { BarEvent, BarSource } from './sources.ts';

const flip = defineStrategy({
  name: 'latency-flip',
  params: { safeParse: (x: unknown) => ({ success: true as const, data: x }) },
  warmup: 'none',
  onStart: () => ({}),
  onBar(ctx) {
    if (ctx.position().size === 0) ctx.buy(0.01);
    else ctx.close();
  },
});

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

async function measure(synchronous: 'NORMAL' | 'FULL', n: number): Promise<{ decided: number[]; sent: number[] }> {
  const T0 = Date.UTC(2024, 0, 1);
  const bars = Array.from({ length: n + 5 }, (_, i) => ({
    time: T0 + i * 60_000,
    open: 40_000 + i,
    high: 40_010 + i,
    low: 39_990 + i,
    close: 40_001 + i,
    volume: 1_000,
  }));
  const key = { apiKey: 'bench', secret: 'bench-secret' };
  const sim = await startExchangeSim({
    markets: [{ symbol: 'BTC/USDT', bars }],
    accounts: [{ ...key, balances: { USDT: 1_000_000 } }],
    startTime: T0,
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'keel-lat-'));
  const store = await openStore({ url: `sqlite:${path.join(dir, 'b.db')}`, synchronous });
  const conn = await connectExchange({
    exchange: 'binance',
    url: sim.httpUrl,
    ...key,
    botId: 'lat',
    symbols: ['BTC/USDT'],
    log: () => {},
    warmupBars: 0,
    ccxtOptions: { options: { recvWindow: 59_000 } },
  });
  let receivedAt = 0;
  const samples: number[] = [];
  const decided: number[] = [];
  const feed = { symbol: 'BTC/USDT', timeframe: '1m' as const };
  const bot = new Bot({
    botId: 'lat',
    mode: 'live',
    strategy: flip,
    params: {},
    feeds: [feed],
    instruments: [await conn.instrument('BTC/USDT')],
    store,
    log: (l, m) => process.env.KEEL_BENCH_DEBUG && console.error(l, m),
    exchange: conn.live,
    onSend: () => samples.push(performance.now() - receivedAt),
    onEvent: (e) => {
      if (e.type === 'order.submitted') decided.push(performance.now() - receivedAt);
    },
  });
  await bot.start();
  if (process.env.KEEL_BENCH_DEBUG) console.error('started');
  const inner = conn.candles(feed);
  const source: BarSource = {
    close: () => inner.close(),
    async *[Symbol.asyncIterator](): AsyncGenerator<BarEvent> {
      for await (const ev of inner) {
        receivedAt = ev.receivedAt ?? performance.now();
        yield ev;
      }
    },
  };
  const running = bot.run(source);
  await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
  if (process.env.KEEL_BENCH_DEBUG) console.error('subscribed');
  for (let k = 1; k <= n; k++) {
    const before = samples.length;
    sim.step();
    const end = Date.now() + 5_000;
    while (samples.length === before && Date.now() < end) await new Promise((r) => setTimeout(r, 1));
    // let the order round-trip settle before the next bar
    await new Promise((r) => setTimeout(r, 5));
    if (process.env.KEEL_BENCH_DEBUG && k % 20 === 0) console.error('step', k, samples.length);
  }
  await source.close();
  await running;
  await bot.stop();
  await conn.close();
  await sim.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { decided: decided.slice(10), sent: samples.slice(10) }; // first 10: JIT warm-up
}

export async function runLatencyBench(opts: { log: (line: string) => void; n?: number }): Promise<void> {
  const n = opts.n ?? 300;
  for (const sync of ['NORMAL', 'FULL'] as const) {
    const { decided, sent } = await measure(sync, n);
    const line = (what: string, s: number[]) =>
      opts.log(
        `${what.padEnd(44)} n=${s.length}: p50 ${pct(s, 50).toFixed(3)} ms  p99 ${pct(s, 99).toFixed(3)} ms  max ${Math.max(...s).toFixed(3)} ms`,
      );
    if (sync === 'NORMAL') line('bar in -> order decided (engine + strategy)', decided);
    line(`bar in -> request out (journal ${sync})`, sent);
  }
  opts.log('target: p99 < 1 ms of Keel processing (includes the write-ahead journal of the order before it is sent)');
}
