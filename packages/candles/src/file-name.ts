import path from 'node:path';
import { isTimeframe, splitPair, type Timeframe } from '@keel/core';

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
  /**
   * usdm or coinm when the name says futures (binance-futures-um_...); spot when it says spot, or
   * when `binance` alone comes before the pair (binance_BTCUSDT_...: in that naming a futures file
   * says binance-futures-um). Binance's archive names (BTCUSDT-1m-2024-01.zip) are the same for
   * spot and futures, and another prefix (my_BTCUSDT_1m.csv) may be either: they say nothing.
   */
  readonly market?: 'spot' | 'usdm' | 'coinm';
}
// Binance's own layout: the pair followed by the timeframe.
const BINANCE_NAME = /([A-Z0-9]{5,})[-_](1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)(?=[-_.])/;

export function fileNameFacts(file: string): FileNameFacts {
  const base = path.basename(file);
  const m = BINANCE_NAME.exec(base);
  const market = /futures-um|[-_]um[-_]|usdm/i.test(base)
    ? 'usdm'
    : /futures-cm|coinm/i.test(base)
      ? 'coinm'
      : /(^|[-_])spot([-_.]|$)/i.test(base) || (m !== null && /^binance[-_]$/i.test(base.slice(0, m.index)))
        ? 'spot'
        : undefined;
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

/** The market kind a backtest runs: spot, or a USD-M perpetual (`--market futures`). */
export type RunMarket = 'spot' | 'futures';

export type RunMarketResult =
  | { readonly ok: true; readonly market: RunMarket; readonly note?: string }
  | { readonly ok: false; readonly message: string };

/**
 * The market kind of a run from `--market` (spot | futures, or not given), the markets given
 * (`BTC/USDT:USDT` is a perpetual) and the files' names (binance-futures-um_... is USD-M, binance_...
 * is spot). What they say must agree: spot bars run as a perpetual, or a perpetual run with spot
 * fees and no margin, would report a market that was never traded; a contradiction is refused
 * naming the flag and the file or symbol. Without `--market` the market is what the names say, with
 * a note when that is futures; spot when they say nothing.
 */
export function runMarket(
  given: string | undefined,
  symbols: readonly string[],
  files: readonly string[],
): RunMarketResult {
  if (given !== undefined && given !== 'spot' && given !== 'futures')
    return { ok: false, message: `--market must be spot or futures, got "${given}"` };
  const says: { market: RunMarket; by: string }[] = [];
  for (const s of symbols) says.push({ market: s.includes(':') ? 'futures' : 'spot', by: `--symbol ${s}` });
  for (const f of files) {
    const m = fileNameFacts(f).market;
    if (m === 'coinm')
      return {
        ok: false,
        message: `${f}: the file's name says COIN-M futures; backtests run spot or USD-M perpetuals`,
      };
    if (m !== undefined) says.push({ market: m === 'usdm' ? 'futures' : 'spot', by: `the file name ${f}` });
  }
  // A symbol without a settle currency is spot only when nothing else says: BTC/USDT with
  // --market futures is the perpetual BTC/USDT:USDT.
  const strong = says.filter((x) => x.market === 'futures' || !x.by.startsWith('--symbol'));
  const name = (m: RunMarket) => (m === 'futures' ? 'USD-M futures' : 'spot');
  if (given !== undefined) {
    const clash = strong.find((x) => x.market !== given);
    if (clash !== undefined)
      return {
        ok: false,
        message: `--market ${given}, but ${clash.by} says ${name(clash.market)}: give --market ${clash.market}, or the ${given === 'futures' ? 'futures' : 'spot'} market's ${clash.by.startsWith('--symbol') ? 'symbol' : 'file'}`,
      };
    return { ok: true, market: given };
  }
  const fut = strong.find((x) => x.market === 'futures');
  const spot = strong.find((x) => x.market === 'spot');
  if (fut !== undefined && spot !== undefined)
    return {
      ok: false,
      message: `${fut.by} says USD-M futures but ${spot.by} says spot: one run is one market kind (give the files and symbols of one, and --market)`,
    };
  if (fut !== undefined)
    return {
      ok: true,
      market: 'futures',
      note: `${fut.by} says USD-M futures: run as a perpetual, as with --market futures`,
    };
  return { ok: true, market: 'spot' };
}
