// A live bot in this process against the exchange simulator (real ccxt client, loopback), stepped
// bar by bar. Shared by the live integration tests.
import type { AnyStrategy } from '@keel/core';
import { type ExchangeSim, type ExchangeSimOptions, type SimBar, startExchangeSim } from '@keel/exchange-sim';
import type { Store } from '@keel/store';
import { Bot, connectExchange } from '../src/index.ts';

export const KEY = { apiKey: 'live-key', secret: 'live-secret' };

export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export interface LiveRun {
  readonly sim: ExchangeSim;
  readonly bot: Bot;
  /** Steps the simulator one bar and waits until the bot has handled the bar that closed. */
  step(): Promise<void>;
  /** Stops the bot (graceful, open orders kept) and closes the simulator. */
  close(): Promise<void>;
}

export async function startLiveBot(opts: {
  readonly bars: readonly SimBar[];
  readonly strategy: AnyStrategy;
  readonly store: Store;
  readonly balances?: Record<string, number>;
  readonly onSend?: (clientOrderId: string) => void;
  readonly log?: (level: string, msg: string) => void;
  readonly sim?: Partial<ExchangeSimOptions>;
}): Promise<LiveRun> {
  const sim = await startExchangeSim({
    ...opts.sim,
    markets: [{ symbol: 'BTC/USDT', bars: [...opts.bars] }],
    accounts: [{ ...KEY, balances: opts.balances ?? { USDT: 100_000 } }],
    startTime: opts.bars[0]!.time,
  });
  const log = opts.log ?? ((l: string, m: string) => process.env.KEEL_DEBUG && process.stderr.write(`${l} ${m}\n`));
  const conn = await connectExchange({
    exchange: 'binance',
    url: sim.httpUrl,
    ...KEY,
    botId: 'lt',
    symbols: ['BTC/USDT'],
    log,
    warmupBars: 0,
    ccxtOptions: { options: { recvWindow: 59_000 } },
  });
  const feed = { symbol: 'BTC/USDT', timeframe: '1m' as const };
  const bot = new Bot({
    botId: 'lt',
    mode: 'live',
    strategy: opts.strategy,
    params: {},
    feeds: [feed],
    instruments: [await conn.instrument('BTC/USDT')],
    store: opts.store,
    log,
    exchange: conn.live,
    exchangeName: 'binance',
    onShutdown: 'keep',
    ...(opts.onSend ? { onSend: opts.onSend } : {}),
  });
  await bot.start();
  const source = conn.candles(feed);
  const running = bot.run(source);
  await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
  let k = 0;
  return {
    sim,
    bot,
    async step() {
      sim.step();
      k++;
      await until(() => bot.barsHandled >= k, 10_000, `bar ${k - 1} to be handled`);
    },
    async close() {
      try {
        await source.close();
        await running;
        await bot.stop('test');
      } finally {
        await conn.close();
        await sim.close();
      }
    },
  };
}
