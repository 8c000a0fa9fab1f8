import type { BacktestResult } from '@keel/core';
import {
  errorToJson,
  feedsToJson,
  fillToJson,
  finiteOrNull,
  IsoUtcFormatter,
  metricsToJson,
  openTradeToJson,
  orderToJson,
  RESULT_JSON_FORMAT,
  RESULT_JSON_VERSION,
  toJsonValue,
  tradeToJson,
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

  private encode(s: string): void {
    this.room(s.length * 3);
    this.pos += encoder.encodeInto(s, this.buf.subarray(this.pos)).written;
  }

  /** A whole number 0 <= d < 10^width as exactly `width` digits, leading zeros included. */
  digits(d: number, width: number): void {
    this.room(width);
    const buf = this.buf;
    for (let k = this.pos + width - 1; k >= this.pos; k--) {
      const q = Math.floor(d / 10);
      buf[k] = 48 + (d - q * 10);
      d = q;
    }
    this.pos += width;
  }

  /** One byte (an ASCII character code). */
  byte(c: number): void {
    this.room(1);
    this.buf[this.pos++] = c;
  }

  /** A newline and `depth` spaces, after a comma when `comma`. */
  newline(depth: number, comma: boolean): void {
    this.room(depth + 2);
    const buf = this.buf;
    let p = this.pos;
    if (comma) buf[p++] = 44;
    buf[p++] = 10;
    for (let k = 0; k < depth; k++) buf[p++] = 32;
    this.pos = p;
  }

  /** A time as a quoted ISO-8601 UTC string, as isoUtc writes it. */
  isoQuoted(t: number, f: IsoUtcFormatter): void {
    if (!Number.isFinite(t)) {
      this.text(`"${f.format(t)}"`);
      return;
    }
    this.byte(34);
    this.text(f.split(t));
    this.digits(f.hh, 2);
    this.byte(58);
    this.digits(f.mm, 2);
    this.byte(58);
    this.digits(f.ss, 2);
    const ms = f.ms;
    if (ms) {
      if (Number.isInteger(ms)) {
        this.byte(46);
        this.digits(ms, 3);
      } else this.text(`.${String(ms).padStart(3, '0')}`);
    }
    this.byte(90);
    this.byte(34);
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

const INDENT: string[] = [];
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

/**
 * Number text for a column read in order, as JSON.stringify writes it, cheaper on an equity
 * curve's common cases: a value equal to the previous one (flat equity while out of the market)
 * reuses its text, and a whole-ms time reuses the text of its leading digits, which change only
 * every 1,000 s.
 */
class ColumnWriter {
  private last = Number.NaN;
  private lastText = 'null';
  private hi = Number.NaN;
  private hiText = '';

  constructor(private readonly out: ByteChunks) {}

  value(x: number): void {
    if (x !== this.last) {
      this.last = x;
      this.lastText = Number.isFinite(x) ? String(x) : 'null';
    }
    this.out.text(this.lastText);
  }

  time(t: number): void {
    if (!(t >= 1e6 && t < 9e15 && Number.isInteger(t))) {
      this.value(t);
      return;
    }
    const hi = Math.floor(t / 1e6);
    if (hi !== this.hi) {
      this.hi = hi;
      this.hiText = String(hi);
    }
    this.out.text(this.hiText);
    this.out.digits(t - hi * 1e6, 6);
  }
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
  // An array-valued member `depth` levels deep whose n items are written one at a time by item(i).
  function* array(key: string, depth: number, n: number, item: (i: number) => void, last: boolean) {
    const pad = indent(depth);
    const end = last ? '\n' : ',\n';
    if (n === 0) {
      out.text(`${pad}${keyText(key)}[]${end}`);
      return;
    }
    out.text(`${pad}${keyText(key)}[`);
    for (let i = 0; i < n; i++) {
      out.newline(depth + 1, i > 0);
      item(i);
      if (out.full) yield out.take(reuse);
    }
    out.text(`\n${pad}]${end}`);
  }
  const { trades, openTrades, fills, orders, errors, equity } = result;
  yield* array('trades', 1, trades.length, (i) => writeJson(out, tradeToJson(trades[i]!), 2), false);
  yield* array('openTrades', 1, openTrades.length, (i) => writeJson(out, openTradeToJson(openTrades[i]!), 2), false);
  yield* array('fills', 1, fills.length, (i) => writeJson(out, fillToJson(fills[i]!), 2), false);
  yield* array('orders', 1, orders.length, (i) => writeJson(out, orderToJson(orders[i]!), 2), false);
  out.text(`${indent(1)}${keyText('equity')}{\n`);
  const { times, values } = equity;
  const t = new ColumnWriter(out);
  const v = new ColumnWriter(out);
  const iso = new IsoUtcFormatter();
  yield* array('times', 2, times.length, (i) => t.time(times[i]!), false);
  yield* array('timesIso', 2, times.length, (i) => out.isoQuoted(times[i]!, iso), false);
  yield* array('values', 2, values.length, (i) => v.value(values[i]!), true);
  out.text(`${indent(1)}},\n`);
  yield* array('errors', 1, errors.length, (i) => writeJson(out, errorToJson(errors[i]!), 2), true);
  out.text('}\n');
  yield out.take(reuse);
}
