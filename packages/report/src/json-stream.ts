import { type BacktestResult, riskConfigInput } from '@keel/core';
import {
  benchmarkToJson,
  errorToJson,
  feedsToJson,
  fillToJson,
  finiteOrNull,
  futuresToJson,
  IsoUtcFormatter,
  metricsToJson,
  openTradeToJson,
  orderToJson,
  pairToJson,
  RESULT_JSON_FORMAT,
  RESULT_JSON_VERSION,
  riskEventToJson,
  toJsonValue,
  tradeToJson,
  unwarmedToJson,
} from './json.ts';

/**
 * The result JSON as a stream of UTF-8 bytes: what `keel backtest --json` prints and result.json
 * holds, byte for byte `JSON.stringify(resultToJson(result), null, 1)` and a newline (tested).
 *
 * Why by hand: a million-bar result is about 110 MB of this text, with three million equity values
 * and a hundred thousand orders, fills and trades. Built as one value and stringified, it costs a
 * gigabyte and seconds of garbage collection. Here each item is written straight into a fixed-size
 * byte buffer that is handed out when full, so memory stays flat and almost nothing outlives the
 * item that made it (each short-lived string dies young, which the GC handles for free).
 */

const encoder = new TextEncoder();

/** Bytes written into fixed-size buffers, handed out as they fill. */
class ByteChunks {
  private buf: Uint8Array;
  private pos = 0;

  constructor(private readonly size: number) {
    this.buf = new Uint8Array(size + 1024);
  }

  /** Makes room for `n` more bytes (a buffer grows only for an item larger than its slack). */
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }

  /**
   * Text as UTF-8. ASCII (numbers, names, keys, most values) is copied by a plain loop, cheaper
   * than a call into the encoder for strings this short; the encoder takes over at the first
   * other character. Callers pass JSON text, which has no lone surrogates.
   */
  text(s: string): void {
    const n = s.length;
    this.room(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.pos = p;
        this.encode(s.slice(i));
        return;
      }
      buf[p++] = c;
    }
    this.pos = p;
  }

  /** Text with `depth` spaces after each newline (the same loop, so one pass over the text). */
  indented(s: string, depth: number): void {
    const n = s.length;
    this.room(n);
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.pos = p;
        this.encode(depth === 0 ? s.slice(i) : s.slice(i).replaceAll('\n', `\n${indent(depth)}`));
        return;
      }
      if (c === 10 && depth > 0) {
        this.pos = p;
        this.room(n - i + depth + 1);
        p = this.pos;
        this.buf[p++] = 10;
        for (let k = 0; k < depth; k++) this.buf[p++] = 32;
        continue;
      }
      this.buf[p++] = c;
    }
    this.pos = p;
  }

  /**
   * As much of `s` as fits before the buffer is full (at least `size` bytes, then), as UTF-8 by the
   * built-in encoder; returns how many characters it took. A long text is so handed out in chunks
   * of about the size asked for.
   */
  utf8To(s: string): number {
    if (this.pos >= this.size) return 0;
    // 3 bytes past `size`: the encoder stops only when a character (at most 4 bytes) does not fit.
    const r = encoder.encodeInto(s, this.buf.subarray(this.pos, this.size + 3));
    this.pos += r.written;
    return r.read;
  }

  private encode(s: string): void {
    this.room(s.length * 3);
    this.pos += encoder.encodeInto(s, this.buf.subarray(this.pos)).written;
  }

  /**
   * The items of an equity column from index `from` on, each on its own line `depth` spaces in
   * (after a comma but the first), until the buffer is full; returns the index to go on from. One
   * tight loop per column, not a call per item: three million items for a million bars. One method
   * per kind of column: a process runs each loop once, cold, and a loop that serves one kind is
   * optimised once instead of being deoptimised at the next kind's first item.
   */
  timeColumn(col: Float64Array, from: number, depth: number, c: ColumnText): number {
    const n = col.length;
    let i = from;
    while (i < n && this.pos < this.size) {
      this.room(depth + 40);
      const buf = this.buf;
      let p = this.lineStart(i, depth);
      const x = col[i] as number;
      if (!(x >= 1e6 && x < 9e15 && Number.isInteger(x))) {
        // Off the fast path (not a whole-ms time after 1970): the general formatting.
        this.pos = p;
        this.text(Number.isFinite(x) ? String(x) : 'null');
        i++;
        continue;
      }
      // Whole ms: the leading digits change every 1,000 s, the last six are written here.
      const hi = Math.floor(x / 1e6);
      if (hi !== c.hi) {
        c.hi = hi;
        c.hiText = String(hi);
      }
      const h = c.hiText;
      for (let k = 0; k < h.length; k++) buf[p++] = h.charCodeAt(k);
      let lo = x - hi * 1e6;
      for (let k = p + 5; k >= p; k--) {
        const q = Math.floor(lo / 10);
        buf[k] = 48 + lo - q * 10;
        lo = q;
      }
      this.pos = p + 6;
      i++;
    }
    return i;
  }

  /** The ISO texts of a time column (see timeColumn). */
  isoColumn(col: Float64Array, from: number, depth: number, c: ColumnText): number {
    const n = col.length;
    const f = c.iso;
    let i = from;
    while (i < n && this.pos < this.size) {
      this.room(depth + 40);
      const buf = this.buf;
      let p = this.lineStart(i, depth);
      const x = col[i] as number;
      if (!(x >= 1e6 && x < 9e15 && Number.isInteger(x))) {
        this.pos = p;
        this.text(`"${f.format(x)}"`);
        i++;
        continue;
      }
      // "YYYY-MM-DDThh:mm:ss[.mmm]Z": the date from the formatter's per-day cache, the rest as digits.
      const date = f.split(x);
      buf[p++] = 34;
      for (let k = 0; k < date.length; k++) buf[p++] = date.charCodeAt(k);
      buf[p++] = 48 + Math.floor(f.hh / 10);
      buf[p++] = 48 + (f.hh % 10);
      buf[p++] = 58;
      buf[p++] = 48 + Math.floor(f.mm / 10);
      buf[p++] = 48 + (f.mm % 10);
      buf[p++] = 58;
      buf[p++] = 48 + Math.floor(f.ss / 10);
      buf[p++] = 48 + (f.ss % 10);
      if (f.ms) {
        buf[p++] = 46;
        buf[p++] = 48 + Math.floor(f.ms / 100);
        buf[p++] = 48 + (Math.floor(f.ms / 10) % 10);
        buf[p++] = 48 + (f.ms % 10);
      }
      buf[p++] = 90;
      buf[p++] = 34;
      this.pos = p;
      i++;
    }
    return i;
  }

  /** The values of an equity column (see timeColumn); a value equal to the previous one reuses its text. */
  valueColumn(col: Float64Array, from: number, depth: number, c: ColumnText): number {
    const n = col.length;
    let i = from;
    while (i < n && this.pos < this.size) {
      this.room(depth + 40);
      this.pos = this.lineStart(i, depth);
      const x = col[i] as number;
      if (x !== c.last) {
        c.last = x;
        c.lastText = Number.isFinite(x) ? String(x) : 'null';
      }
      this.text(c.lastText);
      i++;
    }
    return i;
  }

  /** Writes the comma (but before item 0), newline and indentation before an item; returns the position after them. */
  private lineStart(i: number, depth: number): number {
    const buf = this.buf;
    let p = this.pos;
    if (i > 0) buf[p++] = 44;
    buf[p++] = 10;
    for (let k = 0; k < depth; k++) buf[p++] = 32;
    return p;
  }

  get full(): boolean {
    return this.pos >= this.size;
  }

  /**
   * The bytes written since the last take. With `reuse`, a view of the one buffer that the next
   * writes overwrite; else a buffer of their own.
   */
  take(reuse: boolean): Uint8Array {
    const out = this.buf.subarray(0, this.pos);
    if (!reuse) this.buf = new Uint8Array(this.size + 1024);
    this.pos = 0;
    return out;
  }
}

/** Items per JSON.stringify call in an array member (see array() in resultJsonChunks). */
const ARRAY_BATCH = 128;

const INDENT: string[] = [];
/** A newline and `depth` spaces, by depth. */
const NEWLINE: string[] = [];
const indent = (depth: number): string => (INDENT[depth] ??= ' '.repeat(depth));
/** `"key": ` as JSON.stringify writes a member name. */
const keyText = (k: string): string => `${JSON.stringify(k)}: `;

/**
 * Writes JSON.stringify(v, null, 1) of a value that sits `depth` levels deep in the document: the
 * built-in's own text with `depth` more spaces after each newline. JSON text has no raw newline
 * inside a string (they are escaped), so every newline in it is a line break of the layout.
 */
function writeJson(out: ByteChunks, v: unknown, depth: number): void {
  out.indented(JSON.stringify(v, null, 1) ?? 'null', depth);
}

type ColumnKind = 'time' | 'iso' | 'value';

/**
 * What a column remembers between items, so an equity curve's common cases cost less: a value
 * equal to the previous one (flat equity while out of the market) reuses its text; a whole-ms time
 * reuses the text of its leading digits, which change only every 1,000 s; an ISO time reuses its
 * day's date.
 */
class ColumnText {
  last = Number.NaN;
  lastText = 'null';
  hi = Number.NaN;
  hiText = '';
  readonly iso = new IsoUtcFormatter();
}

export interface JsonChunkOptions {
  /** About this many bytes per chunk (default 64 KiB). */
  readonly chunkBytes?: number;
  /**
   * Hand out every chunk as a view of one buffer, valid only until the next chunk is asked for:
   * for a consumer that is done with each chunk before it asks for the next (a synchronous write,
   * or one whose completion it awaits). Saves allocating the whole output again in chunks. Without
   * it each chunk is a buffer of its own, which the consumer may keep.
   */
  readonly reuseBuffer?: boolean;
}

/** The result JSON in chunks of bytes (see JsonChunkOptions). */
export function* resultJsonChunks(
  result: BacktestResult,
  opts: JsonChunkOptions = {},
): Generator<Uint8Array, void, undefined> {
  const reuse = opts.reuseBuffer === true;
  const out = new ByteChunks(opts.chunkBytes ?? 1 << 16);
  const member = (key: string, v: unknown) => {
    out.text(`${indent(1)}${keyText(key)}`);
    writeJson(out, v, 1);
    out.text(',\n');
  };
  out.text('{\n');
  member('format', RESULT_JSON_FORMAT);
  member('version', RESULT_JSON_VERSION);
  member('strategy', result.strategy);
  member('params', toJsonValue(result.params));
  member('feeds', feedsToJson(result.feeds));
  member('startValue', finiteOrNull(result.startValue));
  member('finalValue', finiteOrNull(result.finalValue));
  member('finalCash', finiteOrNull(result.finalCash));
  member('metrics', metricsToJson(result.metrics));
  member('pairs', result.pairs.map(pairToJson));
  member('benchmark', benchmarkToJson(result.benchmark));
  const { unwarmed } = unwarmedToJson(result);
  if (unwarmed !== undefined) member('unwarmed', unwarmed);
  /**
   * An array-valued member `depth` levels deep, its items made by toJson. The built-in
   * JSON.stringify writes ARRAY_BATCH items per call: the text of `[a, b, ...]` at indentation 1,
   * less its brackets and indented `depth` more, is the items' text as they sit in the document,
   * and the built-in encoder copies it in (a million-bar run's JSON, with its 100,000 orders, fills
   * and trades, takes ~15 % less CPU than with a call per item and a copy loop).
   */
  function* array<T>(key: string, depth: number, items: readonly T[], toJson: (x: T) => unknown, last: boolean) {
    const n = items.length;
    const pad = indent(depth);
    const end = last ? '\n' : ',\n';
    if (n === 0) {
      out.text(`${pad}${keyText(key)}[]${end}`);
      return;
    }
    out.text(`${pad}${keyText(key)}[`);
    for (let i = 0; i < n; i += ARRAY_BATCH) {
      const text = JSON.stringify(
        items.slice(i, i + ARRAY_BATCH).map((x) => toJson(x)),
        null,
        1,
      );
      if (i > 0) out.text(',');
      // "[\n <item>,\n <item>\n]": from the first newline to before the last one.
      let rest = text.slice(1, -2).replaceAll('\n', (NEWLINE[depth] ??= `\n${indent(depth)}`));
      while (rest.length > 0) {
        const read = out.utf8To(rest);
        if (read > 0) rest = rest.slice(read);
        if (out.full) yield out.take(reuse);
      }
    }
    out.text(`\n${pad}]${end}`);
  }
  const { trades, openTrades, fills, orders, errors, equity } = result;
  yield* array('trades', 1, trades, tradeToJson, false);
  yield* array('openTrades', 1, openTrades, openTradeToJson, false);
  yield* array('fills', 1, fills, fillToJson, false);
  yield* array('orders', 1, orders, orderToJson, false);
  out.text(`${indent(1)}${keyText('equity')}{\n`);
  const { times, values } = equity;
  function* column(key: string, kind: ColumnKind, col: Float64Array, last: boolean) {
    const pad = indent(2);
    const end = last ? '\n' : ',\n';
    if (col.length === 0) {
      out.text(`${pad}${keyText(key)}[]${end}`);
      return;
    }
    out.text(`${pad}${keyText(key)}[`);
    const state = new ColumnText();
    for (let i = 0; i < col.length; ) {
      i =
        kind === 'time'
          ? out.timeColumn(col, i, 3, state)
          : kind === 'iso'
            ? out.isoColumn(col, i, 3, state)
            : out.valueColumn(col, i, 3, state);
      if (out.full) yield out.take(reuse);
    }
    out.text(`\n${pad}]${end}`);
  }
  yield* column('times', 'time', times, false);
  yield* column('timesIso', 'iso', times, false);
  yield* column('values', 'value', values, true);
  out.text(`${indent(1)}},\n`);
  yield* array('errors', 1, errors, errorToJson, false);
  member('risk', result.risk === null ? null : toJsonValue(riskConfigInput(result.risk)));
  member('riskCounts', toJsonValue(result.riskCounts));
  const riskEvents = result.riskEvents;
  const futures = result.futures;
  yield* array('riskEvents', 1, riskEvents, riskEventToJson, futures === undefined);
  if (futures !== undefined) {
    out.text(`${indent(1)}${keyText('futures')}`);
    writeJson(out, futuresToJson(futures), 1);
    out.text('\n');
  }
  out.text('}\n');
  yield out.take(reuse);
}
