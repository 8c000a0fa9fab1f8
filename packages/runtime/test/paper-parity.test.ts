import { Account, type BarSeries, defineInstrument, runBacktest, sliceSeries } from '@keel/core';
import { readBarsFile } from '@keel/data';
import { getStrategy } from '@keel/strategies';
import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { paperReplay, replaySource, signalOrderId } from '../src/index.ts';

if (!HAS_SHARED_DATA) noteSkip('paper parity (replay)');

describe.skipIf(!HAS_SHARED_DATA)('paper mode equals the backtest of the same bars', () => {
  const series: BarSeries = HAS_SHARED_DATA
    ? sliceSeries(readBarsFile(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')).series, 0, 20_000)
    : (undefined as never);
  for (const name of ['sma-cross', 'rsi-reversion', 'bollinger-reversion']) {
    it(`${name}: same fills, same trades, same final cash (oracle: runBacktest on the same bars)`, async () => {
      const feed = { symbol: 'BTC/USDT', timeframe: '1m' as const };
      const bt = runBacktest({ strategy: getStrategy(name), data: [{ ...feed, series }], cash: 10_000, fee: 0.001 });
      const inst = defineInstrument({ symbol: 'BTC/USDT' });
      const account = new Account('USDT', 10_000);
      const { percentFee } = await import('@keel/core');
      const bot = await paperReplay({
        botId: 'parity',
        strategy: getStrategy(name),
        feeds: [feed],
        instruments: [inst],
        account,
        simulated: { fees: percentFee(0.001) },
        source: replaySource(feed, series),
      });
      const strip = (fs: readonly { price: number; amount: number; side: string; time: number; fee: number }[]) =>
        fs.map((f) => [f.side, f.time, f.price, f.amount, f.fee]);
      expect(bot.engine.fills.length).toBeGreaterThan(10);
      expect(strip(bot.engine.fills)).toEqual(strip(bt.fills));
      expect(bot.closedTrades().map((t) => t.pnlNet)).toEqual(bt.trades.map((t) => t.pnlNet));
      expect(account.cash).toBe(bt.finalCash);
    });
  }

  it('client order ids are deterministic per bot, bar and signal, and fit Binance’s 36 characters', () => {
    const id = signalOrderId('my bot #1 with a long name', Date.UTC(2024, 0, 1), 3);
    expect(id).toBe(signalOrderId('my bot #1 with a long name', Date.UTC(2024, 0, 1), 3));
    expect(id).not.toBe(signalOrderId('my bot #1 with a long name', Date.UTC(2024, 0, 1), 4));
    expect(id.length).toBeLessThanOrEqual(36);
    expect(id).toMatch(/^[.A-Z:/a-z0-9_-]+$/);
  });
});
