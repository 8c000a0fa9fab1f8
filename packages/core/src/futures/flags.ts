import type { BarSeries } from '../model/bar.ts';
import type { FuturesMarketSettings } from './book.ts';
import { constantFundingSeries, type FundingRateSeries } from './funding.ts';

/**
 * The futures flags every command takes (`keel backtest|paper`), as option definitions in the
 * shape `node:util` parseArgs reads; `futuresFromFlags` turns what it parsed into a perpetual's
 * settings. The funding file is read by the caller (I/O stays at the edge).
 */
export const FUTURES_FLAGS = {
  market: { type: 'string' },
  leverage: { type: 'string' },
  margin: { type: 'string' },
  funding: { type: 'string' },
  'funding-rate': { type: 'string' },
  mark: { type: 'string' },
  'position-mode': { type: 'string' },
} as const;

export const FUTURES_FLAGS_HELP = `Futures (USD-M perpetuals, docs/futures.md):
  --market spot|futures  futures: the symbol becomes BASE/QUOTE:QUOTE, traded with margin, funding
                         and liquidation (default fees 0.05 % taker, 0.02 % maker: Binance USD-M VIP 0)
  --leverage <n>         leverage, 1 to the brackets' maximum (default 1); an allocation is margin:
                         allocation=0.5 at --leverage 3 holds 1.5x equity of notional
  --margin <mode>        isolated or cross (default cross)
  --position-mode <m>    one-way or hedge (default one-way): hedge holds a long and a short
                         position apart, and the strategy's orders name their positionSide
  --funding <file>       funding rates: Binance's archive CSV (calc_time,funding_interval_hours,
                         last_funding_rate), .csv.gz, or ccxt fetchFundingRateHistory JSON
  --funding-rate <r>     a constant rate every 8 h from 00:00 UTC instead (0.0001 = 0.01 %)
                         Without either no funding is charged, and the summary says so.
  --mark <file>          mark-price bars (Binance's markPriceKlines archive, the 12 columns of its
                         klines, bars on the same times): margins, unrealised PnL, funding and
                         liquidation on the mark; without it the mark is the last price. A bar
                         with no mark bar uses the last price and is counted in the warnings.
`;

/** Binance USD-M VIP 0 fees, the futures default. */
export const USDM_DEFAULT_FEES = { taker: 0.0005, maker: 0.0002 } as const;

export interface FuturesFlags {
  /** The perpetual's symbol (BASE/QUOTE:SETTLE). */
  readonly symbol: string;
  readonly settings: FuturesMarketSettings;
}

export type FuturesFlagsResult =
  | { readonly ok: true; readonly futures: FuturesFlags | undefined }
  | { readonly ok: false; readonly message: string };

/** What the caller reads from files (I/O stays at the edge); each names the file in its errors. */
export interface FuturesFileReaders {
  readonly funding: (file: string, symbol: string) => { series: FundingRateSeries; source: string };
  /** Mark-price bars on the run's timeframe. */
  readonly mark: (file: string) => { series: BarSeries; source: string };
}

/**
 * `--market futures` and its flags as a perpetual's settings (`futures: undefined` for spot). A
 * futures flag without `--market futures` is an error (it would be silently ignored), as are both
 * funding sources at once. `range` is the run's [first bar open, last bar close) for a constant
 * rate; `read` reads a funding or mark file.
 */
export function futuresFromFlags(
  values: Readonly<Record<string, unknown>>,
  symbol: string,
  range: { readonly from: number; readonly to: number },
  read: FuturesFileReaders,
): FuturesFlagsResult {
  const market = (values.market as string | undefined) ?? 'spot';
  if (market !== 'spot' && market !== 'futures')
    return { ok: false, message: `--market must be spot or futures, got "${market}"` };
  const given = (['leverage', 'margin', 'position-mode', 'funding', 'funding-rate', 'mark'] as const).filter(
    (k) => values[k] !== undefined,
  );
  if (market === 'spot') {
    if (given.length > 0) return { ok: false, message: `--${given[0]} needs --market futures` };
    return { ok: true, futures: undefined };
  }
  const leverage = values.leverage === undefined ? 1 : Number(values.leverage);
  if (!(Number.isFinite(leverage) && leverage >= 1))
    return { ok: false, message: `--leverage must be a number >= 1, got "${String(values.leverage)}"` };
  const margin = (values.margin as string | undefined) ?? 'cross';
  if (margin !== 'isolated' && margin !== 'cross')
    return { ok: false, message: `--margin must be isolated or cross, got "${margin}"` };
  const positionMode = (values['position-mode'] as string | undefined) ?? 'one-way';
  if (positionMode !== 'one-way' && positionMode !== 'hedge')
    return { ok: false, message: `--position-mode must be one-way or hedge, got "${positionMode}"` };
  if (values.funding !== undefined && values['funding-rate'] !== undefined)
    return { ok: false, message: '--funding and --funding-rate are two sources of one series: give one' };
  const perp = symbol.includes(':') ? symbol : `${symbol}:${symbol.split('/')[1]}`;
  let funding: FundingRateSeries | null = null;
  let source = 'none given';
  if (typeof values.funding === 'string') {
    const f = read.funding(values.funding, perp);
    funding = f.series;
    source = f.source;
  } else if (values['funding-rate'] !== undefined) {
    const rate = Number(values['funding-rate']);
    if (!Number.isFinite(rate) || Math.abs(rate) >= 0.1)
      return {
        ok: false,
        message: `--funding-rate must be a rate such as 0.0001, got "${String(values['funding-rate'])}"`,
      };
    funding = constantFundingSeries(rate, range.from, range.to - 1, 8, perp);
    source = `a constant ${rate} every 8 h`;
  }
  const mark = typeof values.mark === 'string' ? read.mark(values.mark) : undefined;
  return {
    ok: true,
    futures: {
      symbol: perp,
      settings: {
        leverage,
        marginMode: margin,
        ...(positionMode === 'hedge' ? { positionMode } : {}),
        funding,
        fundingSource: source,
        ...(mark !== undefined ? { mark: mark.series, markSource: mark.source } : {}),
      },
    },
  };
}
