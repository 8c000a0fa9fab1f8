import type { Metrics } from '@keel/core';
import { formatDuration, formatInteger, formatMoney, formatNumber, formatPercent } from './format.ts';

export type MetricKind = 'money' | 'percent' | 'ratio' | 'multiple' | 'integer' | 'duration';

export interface MetricSpec {
  readonly label: string;
  readonly kind: MetricKind;
  /** One line for the tooltip: what the number means and how it was computed. */
  readonly help: string;
}

/**
 * How each metric is shown. Typed as a Record over keyof Metrics, so a field added to Metrics does
 * not compile until it has a label and a format here: the report never silently omits one.
 */
export const METRIC_SPECS: Readonly<Record<keyof Metrics, MetricSpec>> = {
  startValue: { label: 'Start value', kind: 'money', help: 'Account value before the first bar.' },
  finalValue: {
    label: 'Final value',
    kind: 'money',
    help: 'Account value at the close of the last bar (open positions at market).',
  },
  totalReturn: { label: 'Total return', kind: 'percent', help: 'Final value / start value - 1.' },
  cagr: { label: 'CAGR', kind: 'percent', help: 'Compound annual growth rate over the bars replayed (365-day years).' },
  annualVolatility: {
    label: 'Annual volatility',
    kind: 'percent',
    help: 'Standard deviation of per-bar returns, annualised.',
  },
  sharpe: {
    label: 'Sharpe ratio',
    kind: 'ratio',
    help: 'Mean / standard deviation of per-bar returns, annualised; risk-free rate 0.',
  },
  sortino: { label: 'Sortino ratio', kind: 'ratio', help: 'Mean per-bar return / downside deviation, annualised.' },
  calmar: { label: 'Calmar ratio', kind: 'ratio', help: 'CAGR / maximum drawdown.' },
  maxDrawdown: { label: 'Max drawdown', kind: 'percent', help: 'Largest fall from a running peak of equity.' },
  maxDrawdownDurationMs: {
    label: 'Longest drawdown',
    kind: 'duration',
    help: 'Longest time spent below a previous equity peak.',
  },
  maxDrawdownDurationBars: {
    label: 'Longest drawdown (bars)',
    kind: 'integer',
    help: 'The same, counted in primary bars.',
  },
  tradeCount: { label: 'Trades', kind: 'integer', help: 'Closed round trips (flat to flat).' },
  winRate: { label: 'Win rate', kind: 'percent', help: 'Share of closed trades with a positive net PnL.' },
  profitFactor: {
    label: 'Profit factor',
    kind: 'ratio',
    help: 'Gross net-profit of winners / gross net-loss of losers.',
  },
  expectancy: { label: 'Expectancy', kind: 'money', help: 'Average net PnL per closed trade.' },
  averageWin: { label: 'Average win', kind: 'money', help: 'Average net PnL of winning trades.' },
  averageLoss: { label: 'Average loss', kind: 'money', help: 'Average net PnL of losing trades.' },
  exposure: { label: 'Exposure', kind: 'percent', help: 'Share of bars with an open position.' },
  feesPaid: { label: 'Fees paid', kind: 'money', help: 'All trading fees, in the account currency.' },
  turnover: { label: 'Turnover', kind: 'multiple', help: 'Traded notional / start value.' },
  bars: { label: 'Bars', kind: 'integer', help: 'Primary bars replayed.' },
  periodsPerYear: { label: 'Bars per year', kind: 'integer', help: 'Used to annualise (365-day years).' },
};

export function formatMetric(kind: MetricKind, value: number, currency?: string): string {
  switch (kind) {
    case 'money':
      return formatMoney(value, currency);
    case 'percent':
      return formatPercent(value);
    case 'ratio':
      return formatNumber(value, 2);
    case 'multiple':
      return Number.isFinite(value) ? `${formatNumber(value, 2)}×` : formatNumber(value);
    case 'integer':
      return formatInteger(value);
    case 'duration':
      return formatDuration(value);
  }
}

/** The metrics table's sections; together they list every field of Metrics once (a test checks it). */
export const METRIC_GROUPS: readonly { readonly title: string; readonly keys: readonly (keyof Metrics)[] }[] = [
  { title: 'Returns', keys: ['startValue', 'finalValue', 'totalReturn', 'cagr'] },
  {
    title: 'Risk',
    keys: [
      'maxDrawdown',
      'maxDrawdownDurationMs',
      'maxDrawdownDurationBars',
      'annualVolatility',
      'sharpe',
      'sortino',
      'calmar',
    ],
  },
  { title: 'Trades', keys: ['tradeCount', 'winRate', 'profitFactor', 'expectancy', 'averageWin', 'averageLoss'] },
  { title: 'Activity and costs', keys: ['exposure', 'feesPaid', 'turnover', 'bars', 'periodsPerYear'] },
];
