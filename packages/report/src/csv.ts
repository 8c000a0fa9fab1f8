import type { BacktestResult } from '@keel/core';
import { isoUtc } from '@keel/core';

/**
 * CSV exports (RFC 4180: comma-separated, a header row, fields with commas, quotes or line breaks
 * quoted, "\n" line ends, a final newline). Numbers are written at full precision as JavaScript
 * prints them, so a spreadsheet sees the exact values the engine computed; NaN is an empty cell.
 * Every time column in ms has an ISO-8601 UTC column before it.
 */

function cell(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : v > 0 ? 'Infinity' : v < 0 ? '-Infinity' : '';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? isoUtc(ms) : '';
}

function toCsv(
  header: readonly string[],
  rows: Iterable<readonly (string | number | boolean | null | undefined)[]>,
): string {
  const lines = [header.join(',')];
  for (const r of rows) lines.push(r.map(cell).join(','));
  return `${lines.join('\n')}\n`;
}

export const TRADES_CSV_HEADER = [
  'n',
  'symbol',
  'direction',
  'entry_time',
  'entry_time_ms',
  'exit_time',
  'exit_time_ms',
  'entry_price',
  'exit_price',
  'size',
  'pnl_gross',
  'fees',
  'pnl_net',
  'return_pct',
  'entry_order_id',
  'exit_order_id',
] as const;

/** One row per closed trade (round trip), numbered from 1 as in the HTML report. */
export function tradesToCsv(result: BacktestResult): string {
  return toCsv(
    TRADES_CSV_HEADER,
    result.trades.map((t, i) => [
      i + 1,
      t.symbol,
      t.direction,
      iso(t.entryTime),
      t.entryTime,
      iso(t.exitTime),
      t.exitTime,
      t.entryPrice,
      t.exitPrice,
      t.size,
      t.pnlGross,
      t.fees,
      t.pnlNet,
      t.returnPct,
      t.entryOrderId,
      t.exitOrderId,
    ]),
  );
}

export const EQUITY_CSV_HEADER = ['time', 'time_ms', 'equity', 'drawdown'] as const;

/**
 * One row per primary bar, at its close time. `drawdown` is the fraction below the running peak
 * (0 at a new high, 0.25 at 25 % under it); the peak starts at the start value, as in the metrics.
 */
export function equityToCsv(result: BacktestResult): string {
  const { times, values } = result.equity;
  const n = times.length;
  const lines = new Array<string>(n + 1);
  lines[0] = EQUITY_CSV_HEADER.join(',');
  let peak = result.startValue;
  for (let i = 0; i < n; i++) {
    const t = times[i] as number;
    const v = values[i] as number;
    if (v > peak) peak = v;
    const dd = peak > 0 ? (peak - v) / peak : 0;
    lines[i + 1] = `${iso(t)},${cell(t)},${cell(v)},${cell(dd)}`;
  }
  return `${lines.join('\n')}\n`;
}

export const FILLS_CSV_HEADER = [
  'time',
  'time_ms',
  'symbol',
  'side',
  'price',
  'amount',
  'fee',
  'fee_asset',
  'liquidity',
  'order_id',
  'trade_id',
  'tag',
] as const;

/** A hedge-mode run's fills name their side in one more column (a one-way or spot run has none). */
export function fillsToCsv(result: BacktestResult): string {
  const hedge = result.futures?.markets.some((m) => m.positionMode === 'hedge') === true;
  return toCsv(
    hedge ? [...FILLS_CSV_HEADER, 'position_side'] : FILLS_CSV_HEADER,
    result.fills.map((f) => {
      const row = [
        iso(f.time),
        f.time,
        f.symbol,
        f.side,
        f.price,
        f.amount,
        f.fee,
        f.feeAsset,
        f.liquidity,
        f.orderId,
        f.tradeId,
        f.tag,
      ];
      return hedge ? [...row, f.positionSide] : row;
    }),
  );
}

/** Parses what these functions write (quoted fields included); for tests and round trips. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else if (c !== '\r') field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
