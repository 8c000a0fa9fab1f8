import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type BacktestResult, runBacktest } from '@keel/core';
import { readBarsFile } from '@keel/data';
import { describe, expect, it } from 'vitest';
import { BACKTRADER_DIR, dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { getStrategy } from '../src/index.ts';

// Oracle: backtrader 1.9.78.123's own results on the shared Binance files (shared/reference/backtrader).
const STEMS = [
  ['binance_BTCUSDT_1m_2024-01', '1m'],
  ['binance_ETHUSDT_1m_2024-01', '1m'],
  ['binance_BTCUSDT_1h_2022-01-01_2025-12-02', '1h'],
] as const;
const STRATS = [
  ['sma_cross', 'sma-cross', { fast: 10, slow: 30 }],
  ['rsi_meanrev', 'rsi-reversion', { period: 14, oversold: 30, overbought: 70 }],
  ['bbands', 'bollinger-reversion', { period: 20, stddev: 2 }],
] as const;

interface RefTrade {
  entry_bar: number;
  exit_bar: number;
  entry_price: number;
  exit_price: number;
  entry_price_trade_avg: number;
  size: number;
  commission: number;
  pnl_gross: number;
  pnl_net: number;
}
interface Ref {
  final_value: number;
  final_cash: number;
  n_closed_trades: number;
  n_rejected_orders: number;
  open_position: { size: number; price: number; entry_bar: number } | null;
  trades: RefTrade[];
}

if (!HAS_SHARED_DATA) noteSkip('backtrader parity');

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1, Math.abs(b));

describe.skipIf(!HAS_SHARED_DATA)('matches backtrader on the shared Binance files', () => {
  for (const [stem, tf] of STEMS) {
    const loaded = HAS_SHARED_DATA ? readBarsFile(dataFile(`${stem}.csv.gz`)) : undefined;
    for (const [refName, strategy, params] of STRATS) {
      it(`${strategy} on ${stem}: every trade and the final value`, () => {
        const series = loaded!.series;
        const ref = JSON.parse(readFileSync(path.join(BACKTRADER_DIR, stem, `${refName}.json`), 'utf8')) as Ref;
        const r: BacktestResult = runBacktest({
          strategy: getStrategy(strategy),
          params: { ...params, allocation: 0.95 },
          data: [{ symbol: stem.includes('ETH') ? 'ETH/USDT' : 'BTC/USDT', timeframe: tf, series }],
          cash: 10_000,
          fee: 0.001,
        });
        const barOf = new Map<number, number>();
        for (let i = 0; i < series.length; i++) barOf.set(series.time[i] as number, i);
        const tfMs = tf === '1m' ? 60_000 : 3_600_000;
        // Fill times are the fill bar's close (the engine's clock); the bar is the one that opens tfMs earlier.
        const fillBar = (t: number) => barOf.get(t - tfMs) ?? -1;
        expect(r.trades.length, 'closed trades').toBe(ref.n_closed_trades);
        for (let i = 0; i < ref.trades.length; i++) {
          const a = r.trades[i]!;
          const b = ref.trades[i]!;
          const where = `trade #${i}`;
          expect(fillBar(a.entryTime), `${where} entry bar`).toBe(b.entry_bar);
          expect(fillBar(a.exitTime), `${where} exit bar`).toBe(b.exit_bar);
          expect(a.exitPrice, `${where} exit price`).toBe(b.exit_price);
          expect(a.entryPrice, `${where} entry price (trade average)`).toBe(b.entry_price_trade_avg);
          expect(a.size, `${where} size`).toBe(b.size);
          expect(rel(a.fees, b.commission), `${where} commission`).toBeLessThan(1e-12);
          expect(rel(a.pnlGross, b.pnl_gross), `${where} pnl gross`).toBeLessThan(1e-12);
          expect(rel(a.pnlNet, b.pnl_net), `${where} pnl net`).toBeLessThan(1e-12);
        }
        expect(r.finalCash, 'final cash').toBe(ref.final_cash);
        expect(r.finalValue, 'final value').toBe(ref.final_value);
        const rejected = r.orders.filter((o) => o.status === 'rejected').length;
        expect(rejected, 'rejected orders').toBe(ref.n_rejected_orders);
        if (ref.open_position) {
          expect(r.openTrades.length).toBe(1);
          expect(r.openTrades[0]!.size).toBe(ref.open_position.size);
          expect(fillBar(r.openTrades[0]!.entryTime)).toBe(ref.open_position.entry_bar);
        } else expect(r.openTrades.length).toBe(0);
      });
    }
  }
});
