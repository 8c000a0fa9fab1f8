import path from 'node:path';
import { isTimeframe, type Timeframe } from '@keel/core';

/**
 * What a candle file's name says about its bars (binance_BTCUSDT_1m_2024-01.csv.gz,
 * BTCUSDT-1h-2024-01.zip, binance-futures-um_LINKUSDT_1m_2023-02.csv.gz): one reading for every
 * command that takes a file (data import and validate, backtest --data, paper --replay), so they
 * agree on what a name means and each refuses a --symbol the name contradicts.
 */
export interface FileNameFacts {
  /** The pair as written (BTCUSDT). */
  readonly pair?: string;
  /** BASE/QUOTE when the pair ends with a known quote currency (BTC/USDT). */
  readonly symbol?: string;
  readonly timeframe?: Timeframe;
  readonly market?: 'usdm' | 'coinm';
}

const QUOTES = ['USDT', 'USDC', 'FDUSD', 'BUSD', 'TUSD', 'BTC', 'ETH', 'BNB', 'EUR', 'USD', 'TRY'];
// Binance's own layout: the pair followed by the timeframe.
const BINANCE_NAME = /([A-Z0-9]{5,})[-_](1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)(?=[-_.])/;

function splitPair(pair: string): string | undefined {
  for (const q of QUOTES) if (pair.length > q.length + 1 && pair.endsWith(q)) return `${pair.slice(0, -q.length)}/${q}`;
  return undefined;
}

export function fileNameFacts(file: string): FileNameFacts {
  const base = path.basename(file);
  const market = /futures-um|[-_]um[-_]|usdm/i.test(base)
    ? 'usdm'
    : /futures-cm|coinm/i.test(base)
      ? 'coinm'
      : undefined;
  const m = BINANCE_NAME.exec(base);
  let pair = m?.[1];
  let timeframe = m?.[2] as Timeframe | undefined;
  if (pair === undefined)
    for (const tok of base.toUpperCase().split(/[^A-Z0-9]+/))
      if (splitPair(tok) !== undefined) {
        pair = tok;
        break;
      }
  // 1M (a month) is left out of the loose reading: too easily part of something else.
  if (timeframe === undefined)
    for (const t of base.split(/[_\-.]/))
      if (t !== '1M' && isTimeframe(t)) {
        timeframe = t;
        break;
      }
  const symbol = pair !== undefined ? splitPair(pair) : undefined;
  return {
    ...(pair !== undefined ? { pair } : {}),
    ...(symbol !== undefined ? { symbol } : {}),
    ...(timeframe !== undefined ? { timeframe } : {}),
    ...(market !== undefined ? { market } : {}),
  };
}

/** BTCUSDT for BTC/USDT, btcusdt and BTC/USDT:USDT: the pair a file name would carry. */
function pairOf(symbol: string): string {
  return (symbol.split(':')[0] as string).replace('/', '').toUpperCase();
}

/**
 * Why `symbol` cannot be the market of `file`, when its name says another one (ETH/USDT bars run
 * as BTC/USDT would be reported, stored and compared under the wrong name); undefined when the
 * name agrees or says nothing.
 */
export function fileSymbolConflict(file: string, symbol: string): string | undefined {
  const named = fileNameFacts(file).pair;
  if (named === undefined || named === pairOf(symbol)) return undefined;
  return `${file}: the file's name says ${splitPair(named) ?? named}, not ${symbol}: give the file's own market (or rename the file if its name is wrong)`;
}
