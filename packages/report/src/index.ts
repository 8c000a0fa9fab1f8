export {
  type MonthReturn,
  monthlyReturns,
  type ReturnBin,
  type ReturnHistogram,
  returnHistogram,
  type YearReturns,
} from './analysis.ts';
export { benchmarkLines } from './benchmark.ts';
export {
  type Aggregation,
  buildChartData,
  buildDetailBars,
  buildPairChart,
  type ChartData,
  chooseBuckets,
  type DetailBars,
  type PairChart,
} from './chart-data.ts';
export {
  EQUITY_CSV_HEADER,
  equityToCsv,
  FILLS_CSV_HEADER,
  fillsToCsv,
  parseCsv,
  TRADES_CSV_HEADER,
  tradesToCsv,
} from './csv.ts';
export { escapeHtml, formatDuration, formatNumber, formatPercent } from './format.ts';
export { resultFromJson } from './from-json.ts';
export { futuresSection, futuresSummaryLines, liquidationLine, marginRejections } from './futures.ts';
export { DEFAULT_MAX_POINTS, type HtmlReportOptions, type ReportSection, renderHtmlReport } from './html.ts';
export * from './json.ts';
export { type JsonChunkOptions, resultJsonChunks } from './json-stream.ts';
export { marketChanges, marketFeeds, pairCharts } from './markets-html.ts';
export { formatMetric, METRIC_GROUPS, METRIC_SPECS } from './metrics-format.ts';
export { formatSummary } from './summary.ts';
export { type ReportPaths, reportDirProblem, writeReport } from './write.ts';
