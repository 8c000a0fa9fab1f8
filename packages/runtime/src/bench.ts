// Live-path latency: from the moment a closed bar from the WebSocket reaches Keel to the moment
// the order request leaves (engine, strategy, risk, journal write-ahead included), against the
// exchange simulator on loopback with the real ccxt client. Printed by `npm run bench`.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineStrategy } from '@keel/core';
import { ccxtUndeclared } from '@keel/exchange';
import { openStore } from '@keel/store';
import { Bot } from './bot.ts';
import { connectExchange } from './live/ccxt.ts';
import type { BarEvent, BarSource } from './sources.ts';

/**
 * Buys or sells on every 4th bar: at 1200x (20 bars a second) that is 5 orders a second, under
 * Binance's 10 per second (8 with the limiter's safety margin), so no order waits in the rate
 * limiter and what is timed is processing, not queueing.
 */
const flip = defineStrategy({
  name: 'latency-flip',
  params: { safeParse: (x: unknown) => ({ success: true as const, data: x }) },
  warmup: 'none',
  onStart: () => ({ n: 0 }),
  onBar(ctx, s) {
    if (++s.n % 4 !== 0) return;
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
): Promise<{ decided: number[]; sent: number[]; wire: number[]; writeAhead: number[]; ccxtSpan: number[] }> {
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
  // The simulator stands in for an exchange on another machine: at the lowest CPU priority it
  // does not compete with the bot for a core at the moment a bar closes (on a 2-core machine).
  try {
    if (sim.pid !== undefined) setPriority(sim.pid, 19);
  } catch {
    // not permitted here: measured as it is
  }
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`${url}/api/v3/ping`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'keel-lat-'));
  const opened = await openStore({ url: `sqlite:${path.join(dir, 'b.db')}`, synchronous });
  // The write-ahead row alone (the synchronous SQLite write inside "order decided").
  const writeAhead: number[] = [];
  const store: typeof opened = {
    ...opened,
    writeOrderNow: (botId, order) => {
      const t = performance.now();
      const wrote = opened.writeOrderNow(botId, order);
      writeAhead.push(performance.now() - t);
      return wrote;
    },
  };
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
  // The last point in this process before the request is on the socket: ccxt's own fetch(),
  // entered after the request has been built and signed.
  const wire: number[] = [];
  // From the hand-off to the gateway to ccxt's fetch: Keel's gateway, the order request, its signing.
  const ccxtSpan: number[] = [];
  let handedAt = 0;
  const client = ccxtUndeclared<{
    fetch: (url: string, method?: string, ...rest: unknown[]) => Promise<unknown>;
    handleMessage: (c: unknown, m: unknown) => unknown;
  }>(conn.gateway.client);
  const ccxtFetch = client.fetch.bind(client);
  // "Bar in" is the WebSocket message that closes the bar, as ccxt.pro hands it (JSON-parsed) to
  // its handler: ccxt's parsing and Keel's candle logic are inside the timed span. The market
  // stream's socket is opened later, by the candle stream, so it gets this wrapped handler.
  let closedKlineAt = Number.NaN;
  const handle = client.handleMessage.bind(client);
  client.handleMessage = (c, m) => {
    const k = (m as { e?: string; k?: { x?: boolean } } | undefined)?.k;
    if ((m as { e?: string } | undefined)?.e === 'kline' && k?.x === true) closedKlineAt = performance.now();
    return handle(c, m);
  };
  client.fetch = (url, method, ...rest) => {
    if (method === 'POST' && url.endsWith('/api/v3/order')) {
      const now = performance.now();
      wire.push(now - receivedAt);
      ccxtSpan.push(now - handedAt);
    }
    return ccxtFetch(url, method, ...rest);
  };
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
    onSend: () => {
      handedAt = performance.now();
      samples.push(handedAt - receivedAt);
    },
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
        const bySocket = ev.receivedAt !== undefined && closedKlineAt <= ev.receivedAt ? closedKlineAt : Number.NaN;
        receivedAt = Number.isFinite(bySocket) ? bySocket : (ev.receivedAt ?? performance.now());
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
    await opened.close();
    sim.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  // The first 10 of each: JIT warm-up.
  return {
    decided: decided.slice(10),
    sent: samples.slice(10),
    wire: wire.slice(10),
    writeAhead: writeAhead.slice(10),
    ccxtSpan: ccxtSpan.slice(10),
  };
}

export async function runLatencyBench(opts: {
  log: (line: string) => void;
  n?: number;
  dataFile?: string;
}): Promise<void> {
  const n = opts.n ?? 1600;
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
  let normalP99 = Number.NaN;
  for (const sync of ['NORMAL', 'FULL'] as const) {
    const { decided, sent, wire, writeAhead, ccxtSpan } = await measure(sync, n, dataFile);
    if (sync === 'NORMAL' && wire.length > 0) normalP99 = pct(wire, 99);
    const line = (what: string, s: number[]) =>
      s.length === 0
        ? opts.log(`${what.padEnd(48)} no samples (did the bot trade?)`)
        : opts.log(
            `${what.padEnd(48)} n=${s.length}: p50 ${pct(s, 50).toFixed(3)} ms  p99 ${pct(s, 99).toFixed(3)} ms  max ${Math.max(...s).toFixed(3)} ms`,
          );
    if (sync === 'NORMAL') line('bar in -> order decided (engine + strategy)', decided);
    line(`bar in -> order to the adapter (journal ${sync})`, sent);
    line(`bar in -> request out, signed (journal ${sync})`, wire);
    line(`  of which: write-ahead row (journal ${sync})`, writeAhead);
    if (sync === 'NORMAL') line('  of which: to the adapter -> request out', ccxtSpan);
  }
  opts.log(
    '"to the adapter": the write-ahead row is durable and the order goes to the exchange gateway; "request out": the HTTP request is built and signed and handed to ccxt\'s HTTP client; "to the adapter -> request out" is Keel\'s gateway, the order request and its signature (Keel\'s own for Binance spot market/limit, else ccxt\'s createOrder and sign)',
  );
  opts.log(
    `target: p99 < 1 ms of Keel processing, bar in -> request out: ${
      Number.isNaN(normalP99)
        ? 'not measured'
        : `${normalP99.toFixed(3)} ms with NORMAL, ${normalP99 < 1 ? 'met' : 'NOT met'}`
    } (FULL adds the disk's fsync to every write-ahead row)`,
  );
}
