import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { BacktestResult, BarSeries } from '@keel/core';
import { equityToCsv, fillsToCsv, tradesToCsv } from './csv.ts';
import { type HtmlReportOptions, renderHtmlReport } from './html.ts';
import { resultJsonChunks } from './json-stream.ts';

export interface ReportPaths {
  readonly html: string;
  readonly json: string;
  readonly trades: string;
  readonly equity: string;
  readonly fills: string;
}

/**
 * Writes report.html, result.json, trades.csv, equity.csv and fills.csv into `dir` (created with
 * its parents when missing; existing files of these names are replaced) and returns their paths.
 */
export function writeReport(
  dir: string,
  result: BacktestResult,
  bars: BarSeries,
  opts: HtmlReportOptions = {},
): ReportPaths {
  mkdirSync(dir, { recursive: true });
  const paths: ReportPaths = {
    html: path.join(dir, 'report.html'),
    json: path.join(dir, 'result.json'),
    trades: path.join(dir, 'trades.csv'),
    equity: path.join(dir, 'equity.csv'),
    fills: path.join(dir, 'fills.csv'),
  };
  // Render first: a report that cannot be rendered leaves no half-written set of files behind.
  const html = renderHtmlReport(result, bars, opts);
  writeFileSync(paths.html, html);
  const fd = openSync(paths.json, 'w');
  try {
    for (const chunk of resultJsonChunks(result, { reuseBuffer: true })) {
      for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
    }
  } finally {
    closeSync(fd);
  }
  writeFileSync(paths.trades, tradesToCsv(result));
  writeFileSync(paths.equity, equityToCsv(result));
  writeFileSync(paths.fills, fillsToCsv(result));
  return paths;
}
