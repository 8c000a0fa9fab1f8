import path from 'node:path';
import {
  type BarSeries,
  constantFundingSeries,
  type FundingRateSeries,
  type FuturesMarketSettings,
  type MarginMode,
  type Timeframe,
  timeframeEnd,
  timeframeMs,
} from '@keel/core';
import { readFundingRateFile } from '@keel/data/csv';
import { UsageError } from './errors.ts';

/** The futures flags of `keel backtest` (parseArgs options). */
export const FUTURES_FLAGS = {
  market: { type: 'string' },
  leverage: { type: 'string' },
  margin: { type: 'string' },
  funding: { type: 'string' },
  'funding-rate': { type: 'string' },
} as const;

export const FUTURES_HELP = `Futures (USD-M perpetuals, docs/futures.md):
  --market spot|futures  futures: the symbol becomes BASE/QUOTE:QUOTE, traded with margin, funding
                         and liquidation (default fees 0.05 % taker, 0.02 % maker: Binance USD-M VIP 0)
  --leverage <n>         leverage, 1 to the brackets' maximum (default 1); an allocation is margin:
                         allocation=0.5 at --leverage 3 holds 1.5x equity of notional
  --margin <mode>        isolated or cross (default cross)
  --funding <file>       funding rates: Binance's archive CSV (calc_time,funding_interval_hours,
                         last_funding_rate), .csv.gz, or ccxt fetchFundingRateHistory JSON
  --funding-rate <r>     a constant rate every 8 h from 00:00 UTC instead (0.0001 = 0.01 %)
                         Without either no funding is charged, and the summary says so.`;

export interface FuturesRun {
  readonly symbol: string;
  readonly settings: FuturesMarketSettings;
  readonly takerFee: number;
  readonly makerFee: number;
}

/**
 * `--market futures` and its flags as the perpetual's settings, or undefined for spot. A futures
 * flag without `--market futures` is a usage error (it would be silently ignored).
 */
export function futuresFromFlags(
  values: Readonly<Record<string, unknown>>,
  symbol: string,
  series: BarSeries,
  timeframe: Timeframe,
): FuturesRun | undefined {
  const market = (values.market as string | undefined) ?? 'spot';
  if (market !== 'spot' && market !== 'futures')
    throw new UsageError(`--market must be spot or futures, got "${market}"`, 'backtest');
  const given = (['leverage', 'margin', 'funding', 'funding-rate'] as const).filter((k) => values[k] !== undefined);
  if (market === 'spot') {
    if (given.length > 0) throw new UsageError(`--${given[0]} needs --market futures`, 'backtest');
    return undefined;
  }
  const leverage = values.leverage === undefined ? 1 : Number(values.leverage);
  if (!(Number.isFinite(leverage) && leverage >= 1))
    throw new UsageError(`--leverage must be a number >= 1, got "${String(values.leverage)}"`, 'backtest');
  const margin = (values.margin as string | undefined) ?? 'cross';
  if (margin !== 'isolated' && margin !== 'cross')
    throw new UsageError(`--margin must be isolated or cross, got "${margin}"`, 'backtest');
  if (values.funding !== undefined && values['funding-rate'] !== undefined)
    throw new UsageError('--funding and --funding-rate are two sources of one series: give one', 'backtest');
  const perp = symbol.includes(':') ? symbol : `${symbol}:${symbol.split('/')[1]}`;
  let funding: FundingRateSeries | null = null;
  let source = 'none given';
  if (typeof values.funding === 'string') {
    funding = readFundingRateFile(values.funding, { symbol: perp }).series;
    source = path.basename(values.funding);
  } else if (values['funding-rate'] !== undefined) {
    const rate = Number(values['funding-rate']);
    if (!Number.isFinite(rate) || Math.abs(rate) >= 0.1)
      throw new UsageError(
        `--funding-rate must be a rate such as 0.0001, got "${String(values['funding-rate'])}"`,
        'backtest',
      );
    const first = series.length > 0 ? (series.time[0] as number) : 0;
    const lastOpen = series.length > 0 ? (series.time[series.length - 1] as number) : 0;
    const end = timeframe === '1M' ? timeframeEnd('1M', lastOpen) : lastOpen + timeframeMs(timeframe);
    funding = constantFundingSeries(rate, first, end - 1, 8, perp);
    source = `a constant ${rate} every 8 h`;
  }
  return {
    symbol: perp,
    settings: { leverage, marginMode: margin as MarginMode, funding, fundingSource: source },
    takerFee: 0.0005,
    makerFee: 0.0002,
  };
}
