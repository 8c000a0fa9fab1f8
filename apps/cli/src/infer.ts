import path from 'node:path';
import { isTimeframe, type Timeframe } from '@keel/core';

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

/** The timeframe a file name gives (_1m_, -1h-), if any; the bar spacing is the candle reader's business. */
export function timeframeFromFileName(file: string): Timeframe | undefined {
  for (const t of path.basename(file).split(/[_\-.]/)) if (t !== '1M' && isTimeframe(t)) return t;
  return undefined;
}
