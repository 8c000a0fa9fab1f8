// A bracket whose limit entry rests on the exchange while its take-profit and stop-loss wait in
// Keel for the entry's fill, through kill -9: the restart must keep the exits waiting (they never
// reached the exchange because they were never meant to yet), and place them when the entry fills,
// after the restart or while the bot was down. Dropping them left a position with no stop. The
// bot runs in its own process (real ccxt, the simulator over loopback, Binance's fee in the coin).
// Oracle: the backtest of the same bars (its fills and orders' end states) and the simulator's own
// records (every order once, none left open).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineInstrument, type OrderState, runBacktest } from '@keel/core';
import { type SimBar, startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { bracketLimit } from './fixtures/strategies.ts';
import { BotProcess, binanceSpotBacktest, KEY, toSeries, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-bracket-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 3, 1);
const MIN = 60_000;
// Flat at 40,000; bar 5 dips through the entry (39,900); bar 7 reaches the take-profit (40,300).
const closes = [40_000, 40_000, 40_000, 39_990, 39_960, 39_880, 40_100, 40_350, 40_350, 40_350];
const bars: SimBar[] = closes.map((c, i) => {
  const o = i === 0 ? c : closes[i - 1]!;
  return { time: T0 + i * MIN, open: o, high: Math.max(o, c) + 20, low: Math.min(o, c) - 20, close: c, volume: 50 };
});

const shape = (f: { side: string; amount: number; price: number }) => `${f.side} ${f.amount}@${f.price}`;
const stateOf = (o: OrderState) => `${o.request.tag} ${o.request.type} ${o.status}`;

/** A paper bot's oracle: its own fee model, 0.1 % in the quote currency (the exits sell the whole 0.01). */
function paperBacktest() {
  return runBacktest({
    strategy: bracketLimit,
    data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: toSeries(bars), instrument: BTC }],
    cash: 10_000,
    fee: 0.001,
  });
}
const BTC = defineInstrument({ symbol: 'BTC/USDT', tickSize: 0.01, stepSize: 0.00001 });

/** Runs the bot, kills it (-9) after the bar that places the bracket, steps `down` bars while it is down, restarts it. */
async function crashWithEntryResting(botId: string, down: number, mode: 'live' | 'paper' = 'live') {
  const sim = await startExchangeSim({
    markets: [{ symbol: 'BTC/USDT', bars, tickSize: 0.01, stepSize: 0.00001, minNotional: 5 }],
    accounts: [{ ...KEY, balances: { USDT: 10_000 } }],
    liquidity: { spreadTicks: 0 },
    startTime: bars[0]!.time,
  });
  const storeUrl = `sqlite:${path.join(dir, `${botId}.db`)}`;
  const settled = (b: BotProcess) => b.lines.filter((l) => l.startsWith('SETTLED ')).length;
  const start = async () => {
    const b = new BotProcess(sim.httpUrl, storeUrl, botId, KEY, 'bracket-limit', { KEEL_TEST_MODE: mode });
    await b.waitFor(() => b.lines.includes('READY'), 'the bot to start', 30_000);
    await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
    if (mode === 'live') await sim.waitForSubscription(`user:${KEY.apiKey}`, 10_000);
    return b;
  };
  let bot = await start();
  try {
    for (let k = 1; k <= 3; k++) {
      sim.step();
      await bot.waitFor(() => settled(bot) >= k, `bar ${k}`);
    }
    // The entry rests on the exchange (live) or in the simulated venue (paper); the exits are Keel's until it fills.
    if (mode === 'live') await until(() => sim.getOrders(KEY.apiKey).length === 1, 10_000, 'the entry on the exchange');
    await bot.crash();
    for (let k = 0; k < down; k++) sim.step();
    bot = await start();
    const from = settled(bot);
    for (let k = 1; from + k + 3 + down <= bars.length - 1; k++) {
      sim.step();
      await bot.waitFor(() => settled(bot) >= from + k, `bar ${3 + down + k} after the restart`);
    }
    await new Promise((r) => setTimeout(r, 300));
    bot.proc.kill('SIGTERM');
    expect(await bot.exited, bot.err.join('').slice(-3000)).toBe(0);
  } finally {
    if (bot.proc.exitCode === null && bot.proc.signalCode === null) await bot.crash();
    await sim.close();
  }
  const store = await openStore({ url: storeUrl });
  const fills = (await store.fills.since(botId, 0)).map(shape);
  const orders = await store.orders.list(botId);
  await store.close();
  return { bot, exchange: sim.getOrders(KEY.apiKey), fills, orders };
}

describe('a bracket whose entry rests, through kill -9 (real ccxt, the bot in its own process)', () => {
  const bt = binanceSpotBacktest(bracketLimit, bars);
  it('the oracle: the entry fills on bar 5, the take-profit on bar 7', () => {
    expect(bt.fills.map(shape)).toEqual(['buy 0.01@39900', 'sell 0.00999@40300']);
  });

  for (const [down, when] of [
    [0, 'after the restart'],
    [3, 'while the bot was down'],
  ] as const) {
    it(`the entry fills ${when}: its exits go out then, once, as the backtest's`, async () => {
      const r = await crashWithEntryResting(`br-${down}`, down);
      if (process.env.KEEL_DEBUG) process.stderr.write(`${r.bot.lines.join('\n')}\n${r.bot.err.join('')}\n`);
      expect(r.fills).toEqual(bt.fills.map(shape));
      expect(r.orders.map(stateOf)).toEqual(bt.orders.map(stateOf));
      // On the exchange: the entry, then the exits as one list; each once, nothing left working.
      expect(r.exchange.map((o) => [o.side, o.type, o.status])).toEqual([
        ['BUY', 'LIMIT', 'FILLED'],
        ['SELL', 'STOP_LOSS', 'EXPIRED'],
        ['SELL', 'LIMIT_MAKER', 'FILLED'],
      ]);
      const said = r.bot.lines.filter((l) => l.startsWith('RECOVERY exit-'));
      expect(said).toHaveLength(2);
      for (const l of said)
        expect(l).toMatch(
          down === 0
            ? /^RECOVERY exit-waiting-for-entry \S+ \((take-profit|stop-loss) sell 0\.01\): waits for its entry \S+$/
            : /^RECOVERY exit-entry-filled-while-down \S+ \((take-profit|stop-loss) sell 0\.01\): its entry \S+ filled 0\.01 while the bot was down; sent now$/,
        );
    }, 120_000);
  }

  it('a paper bot: the orders working at the kill go on working in its simulated venue (the entry fills on a bar missed while down), as the backtest', async () => {
    const r = await crashWithEntryResting('br-paper', 3, 'paper');
    const model = paperBacktest();
    expect(model.fills.map(shape)).toEqual(['buy 0.01@39900', 'sell 0.01@40300']);
    expect(r.fills).toEqual(model.fills.map(shape));
    expect(r.orders.map(stateOf)).toEqual(model.orders.map(stateOf));
    expect(r.exchange).toEqual([]); // a paper bot sends nothing
    expect(r.bot.err.join('')).toMatch(/paper: 3 order\(s\) working when the bot stopped go on working: /);
  }, 120_000);
});
