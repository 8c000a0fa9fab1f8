import path from 'node:path';
import { type BarSeries, TIMEFRAMES, type Timeframe, timeframeMs } from '@keel/core';

const QUOTES = ['USDT', 'USDC', 'FDUSD', 'BUSD', 'TUSD', 'BTC', 'ETH', 'BNB', 'EUR', 'USD', 'TRY'];

/** BTC/USDT from names like binance_BTCUSDT_1m_2024-01.csv.gz or BTCUSDT-1m-2024-01.zip. */
export function symbolFromFileName(file: string): string | undefined {
  const base = path.basename(file).toUpperCase();
  for (const tok of base.split(/[^A-Z0-9]+/)) {
    for (const q of QUOTES) {
      if (tok.length > q.length + 1 && tok.endsWith(q)) return `${tok.slice(0, -q.length)}/${q}`;
    }
  }
  return undefined;
}

/** The timeframe from a file name token (_1m_, -1h-) or else from the most common bar spacing. */
export function inferTimeframe(file: string, s: BarSeries): Timeframe | undefined {
  const toks = path.basename(file).split(/[_\-.]/);
  for (const t of toks) if ((TIMEFRAMES as readonly string[]).includes(t) && t !== '1M') return t as Timeframe;
  const counts = new Map<number, number>();
  const n = Math.min(s.length, 2000);
  for (let i = 1; i < n; i++) {
    const d = (s.time[i] as number) - (s.time[i - 1] as number);
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  let best = 0;
  let bestN = 0;
  for (const [d, c] of counts) if (c > bestN) [best, bestN] = [d, c];
  return TIMEFRAMES.find((tf) => timeframeMs(tf) === best);
}
