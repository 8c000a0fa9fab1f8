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
 * Why `dir` cannot be a report's folder, or undefined: a path named like the page (out/report.html)
 * would become a folder of that name holding report.html. Every `--report` flag checks it before
 * the work, so the mistake costs no run.
 */
export function reportDirProblem(dir: string): string | undefined {
  if (!/\.html?$/i.test(dir)) return undefined;
  const parent = path.dirname(dir);
  return `--report takes a folder (it writes report.html, result.json, trades.csv, equity.csv and fills.csv into it), not a file: got "${dir}"; give e.g. --report ${parent === '.' ? 'out' : parent}`;
}

/**
 * Writes report.html, result.json, trades.csv, equity.csv and fills.csv into `dir` (created with
 * its parents when missing; existing files of these names are replaced) and returns their paths.
 * A `dir` named like a page is refused (`reportDirProblem`).
 */
export function writeReport(
  dir: string,
  result: BacktestResult,
  bars: BarSeries,
  opts: HtmlReportOptions = {},
): ReportPaths {
  const why = reportDirProblem(dir);
  if (why !== undefined) throw new Error(why);
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
