import type { Timeframe } from '@keel/core';
import type { QuarantinedBar } from '../qc.ts';
import type { FullSeries, MarketRef, SourceKind } from '../schema.ts';

/** Bytes exactly as fetched or read, kept in the raw zone before anything is parsed. */
export interface RawPayload {
  readonly bytes: Uint8Array;
  readonly url: string;
  readonly name: string;
}

/** One unit of work from a source: the raw bytes and the bars parsed from them. */
export interface BarBatch {
  readonly raw: RawPayload;
  readonly series: FullSeries;
  /** Rows seen while parsing (quarantined rows included). */
  readonly rowsIn: number;
  /** Rows the parser could not use, with their rule (merged into the QC report). */
  readonly quarantined: readonly QuarantinedBar[];
  /** Which endpoint or exchange actually served the batch (failover shows up here). */
  readonly servedBy: string;
  readonly file?: string;
  /** 1-based file line of each row, when the batch came from a file. */
  readonly lines?: Int32Array;
  /** 1-based data row of each row in its file (the header and blank lines not counted). */
  readonly rows?: Int32Array;
  /** The bar timeframe the file's times are spaced by, when read from a file (null: could not tell). */
  readonly timeframe?: Timeframe | null;
  /** What the reader found worth telling the user (e.g. close times converted to open times). */
  readonly notes?: readonly string[];
}

export interface FetchRequest {
  readonly market: MarketRef;
  readonly timeframe: Timeframe;
  /** Inclusive start (bar open time, UTC ms). */
  readonly since: number;
  /** Exclusive end (UTC ms). */
  readonly until: number;
}

export interface SourceHooks {
  /** Progress in bars (or units) done of total, when known. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly onNote?: (message: string) => void;
}

/** A market-data source: one small port, one adapter per origin (ccxt REST, archives, files). */
export interface BarSource {
  readonly name: string;
  readonly kind: SourceKind;
  fetch(req: FetchRequest, hooks?: SourceHooks): AsyncIterable<BarBatch>;
}
