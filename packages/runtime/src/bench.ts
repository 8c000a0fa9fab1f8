// Live-path latency: from the moment a closed bar from the WebSocket reaches Keel to the moment
// the order request leaves (engine, strategy, risk, journal write-ahead included), against the
// exchange simulator on loopback with the real ccxt client. Printed by `npm run bench`.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineStrategy } from '@keel/core';
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

/**
 * The simulator runs in its own process (`keel exchange-sim`, replaying real 1m candles at
 * `speed`), so what is timed is Keel's processing, not the simulator sharing our event loop.
 */
async function measure(
  synchronous: 'NORMAL' | 'FULL',
  n: number,
  dataFile: string,
): Promise<{ decided: number[]; sent: number[] }> {
  const key = { apiKey: 'bench', secret: 'bench-secret' };
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../apps/cli/bin/keel.js');
  const sim = spawn(
    process.execPath,
    [
      bin,
      'exchange-sim',
      '--data',
      dataFile,
      '--port',
      String(port),
      '--speed',
      '1200',
      '--api-key',
      key.apiKey,
      '--secret',
      key.secret,
      '--balance',
      'USDT=10000000',
      '--participation',
      '1',
    ],
    { stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`${url}/api/v3/ping`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'keel-lat-'));
  const store = await openStore({ url: `sqlite:${path.join(dir, 'b.db')}`, synchronous });
  const conn = await connectExchange({
    exchange: 'binance',
    url,
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
    log: () => {},
    exchange: conn.live,
    onSend: () => samples.push(performance.now() - receivedAt),
    onEvent: (e) => {
      if (e.type === 'order.submitted') decided.push(performance.now() - receivedAt);
    },
  });
  await bot.start();
  const inner = conn.candles(feed);
  const source: BarSource = {
    close: () => inner.close(),
    async *[Symbol.asyncIterator](): AsyncGenerator<BarEvent> {
      for await (const ev of inner) {
        receivedAt = ev.receivedAt ?? performance.now();
        yield ev;
        if (bot.barsHandled >= n) return;
      }
    },
  };
  try {
    await bot.run(source);
  } finally {
    await bot.stop();
    await conn.close();
    await store.close();
    sim.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  return { decided: decided.slice(10), sent: samples.slice(10) }; // first 10: JIT warm-up
}

export async function runLatencyBench(opts: {
  log: (line: string) => void;
  n?: number;
  dataFile?: string;
}): Promise<void> {
  const n = opts.n ?? 300;
  const dataFile =
    opts.dataFile ??
    path.resolve(
      path.dirname(fileURLToPath(import.meta.url)),
      '../../../../shared/data/binance_BTCUSDT_1m_2024-01.csv.gz',
    );
  if (!existsSync(dataFile)) {
    opts.log(`no candle file at ${dataFile}: latency bench skipped`);
    return;
  }
  for (const sync of ['NORMAL', 'FULL'] as const) {
    const { decided, sent } = await measure(sync, n, dataFile);
    const line = (what: string, s: number[]) =>
      opts.log(
        `${what.padEnd(44)} n=${s.length}: p50 ${pct(s, 50).toFixed(3)} ms  p99 ${pct(s, 99).toFixed(3)} ms  max ${Math.max(...s).toFixed(3)} ms`,
      );
    if (sync === 'NORMAL') line('bar in -> order decided (engine + strategy)', decided);
    line(`bar in -> request out (journal ${sync})`, sent);
  }
  opts.log('target: p99 < 1 ms of Keel processing (includes the write-ahead journal of the order before it is sent)');
}
