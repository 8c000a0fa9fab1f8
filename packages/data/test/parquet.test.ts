import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBarsCsv, readBarsFile } from '../src/csv.ts';
import { parquetBytes, readColumn, writeParquet } from '../src/parquet.ts';
import { BTC_1D, BTC_1H, dataFile, firstDiff, HAS_SHARED_DATA, LINK_FUT, noteSkip, tempDir } from './helpers.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('Parquet writer: DuckDB reads back exactly what was written', () => {
  it('int64 and double columns (NaN included), key-value metadata, min/max statistics', async () => {
    const n = 5000;
    const t = Float64Array.from({ length: n }, (_, i) => 1_704_067_200_000 + i * 60_000);
    const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i) * 1e4 + 1 / 3);
    const y = Float64Array.from({ length: n }, (_, i) => (i % 7 === 0 ? Number.NaN : -i * 1e-9));
    const w = writeParquet(
      [
        { name: 'open_time', type: 'int64', values: t },
        { name: 'x', type: 'double', values: x },
        { name: 'y', type: 'double', values: y },
      ],
      { 'keel.test': 'yes' },
    );
    const f = path.join(tmp.dir, 'a.parquet');
    writeFileSync(f, parquetBytes(w));
    const inst = await DuckDBInstance.create(':memory:');
    const con = await inst.connect();
    const r = await con.runAndReadAll(`SELECT open_time::DOUBLE, x, y FROM read_parquet('${f}') ORDER BY open_time`);
    const cols = r.getColumns() as number[][];
    expect(firstDiff(cols[0] as number[], t)).toBe(-1);
    expect(firstDiff(cols[1] as number[], x)).toBe(-1);
    expect(firstDiff(cols[2] as number[], y)).toBe(-1);
    const kv = await con.runAndReadAll(`SELECT decode(key), decode(value) FROM parquet_kv_metadata('${f}')`);
    expect(kv.getRows()).toEqual([['keel.test', 'yes']]);
    const st = await con.runAndReadAll(
      `SELECT stats_min_value, stats_max_value FROM parquet_metadata('${f}') WHERE path_in_schema = 'open_time'`,
    );
    expect(st.getRows()[0]).toEqual([String(t[0]), String(t[n - 1])]);
    con.closeSync();
    inst.closeSync();
    // The direct reader copies the same bytes back.
    const buf = readFileSync(f);
    const back = new Float64Array(n);
    readColumn(buf, w.columns[0] as (typeof w.columns)[number], n, back, 0);
    expect(firstDiff(back, t)).toBe(-1);
    readColumn(buf, w.columns[2] as (typeof w.columns)[number], n, back, 0);
    expect(firstDiff(back, y)).toBe(-1);
  });

  it('an all-NaN double column is stored as NULLs (SQL sees NULL) and read back as NaN', async () => {
    const n = 3000;
    const t = Float64Array.from({ length: n }, (_, i) => i * 60_000);
    const none = new Float64Array(n).fill(Number.NaN);
    const w = writeParquet([
      { name: 'open_time', type: 'int64', values: t },
      { name: 'trades', type: 'double', values: none },
    ]);
    expect(w.columns[1]?.nulls).toBe(true);
    expect(w.size).toBeLessThan(n * 8 + 1000);
    const f = path.join(tmp.dir, 'nulls.parquet');
    writeFileSync(f, parquetBytes(w));
    const inst = await DuckDBInstance.create(':memory:');
    const con = await inst.connect();
    const r = await con.runAndReadAll(
      `SELECT count(*)::INT, count(trades)::INT, max(open_time)::DOUBLE FROM read_parquet('${f}')`,
    );
    expect(r.getRows()[0]).toEqual([n, 0, (n - 1) * 60_000]);
    con.closeSync();
    inst.closeSync();
    const back = new Float64Array(n);
    readColumn(readFileSync(f), w.columns[1] as (typeof w.columns)[number], n, back, 0);
    expect(back.every((x) => Number.isNaN(x))).toBe(true);
  });

  it('an empty file is valid', async () => {
    const w = writeParquet([{ name: 'open_time', type: 'int64', values: new Float64Array(0) }]);
    const f = path.join(tmp.dir, 'empty.parquet');
    writeFileSync(f, parquetBytes(w));
    const inst = await DuckDBInstance.create(':memory:');
    const con = await inst.connect();
    const r = await con.runAndReadAll(`SELECT count(*)::INT FROM read_parquet('${f}')`);
    expect(r.getRows()[0]?.[0]).toBe(0);
    con.closeSync();
    inst.closeSync();
  });
});

/** The CSV parser's fast number path must equal Number(text) bit for bit (golden masters depend on it). */
function referenceParse(text: string): number[][] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(1).map((l) => l.split(',').map((c) => Number(c)));
}

describe.skipIf(!HAS_SHARED_DATA)('CSV reader: fast path equals Number() on real files', () => {
  if (!HAS_SHARED_DATA) noteSkip('csv fast path');
  it('futures 12-column klines, 1d (ms timestamps), 1h (text timestamps)', () => {
    for (const name of [LINK_FUT, BTC_1D, BTC_1H]) {
      const text = gunzipSync(readFileSync(dataFile(name))).toString('utf8');
      const p = parseBarsCsv(text, name);
      const ref = referenceParse(text);
      expect(p.series.length).toBe(ref.length);
      const header = text.slice(0, text.indexOf('\n')).split(',');
      const col = (n: string) => header.indexOf(n);
      const bad: string[] = [];
      for (let i = 0; i < ref.length; i += 1) {
        const r = ref[i] as number[];
        for (const c of ['open', 'high', 'low', 'close', 'volume'] as const) {
          if (!Object.is(p.series[c][i], r[col(c)]))
            bad.push(`${name} row ${i} ${c}: ${p.series[c][i]} vs ${r[col(c)]}`);
        }
      }
      expect(bad).toEqual([]);
      expect(p.lines?.[0]).toBe(2);
      expect(p.lines?.[p.series.length - 1]).toBe(ref.length + 1);
      if (name === LINK_FUT) {
        expect(p.series.quoteVolume?.[5]).toBe((ref[5] as number[])[7]);
        expect(p.series.trades?.[5]).toBe((ref[5] as number[])[8]);
        expect(p.series.takerBuyVolume?.[5]).toBe((ref[5] as number[])[9]);
        expect(p.series.time[0]).toBe(Date.UTC(2023, 1, 1));
      }
    }
    expect(readBarsFile(dataFile(BTC_1H)).series.time[0]).toBe(Date.UTC(2022, 0, 1));
  });

  it('keeps the old behaviour for odd numbers: exponents, spaces, microsecond timestamps; an empty volume is no zero', () => {
    const p = parseBarsCsv('1704067200000000,1e2, 101 ,99,100,5\n', 'x.csv');
    expect(p.series.time[0]).toBe(1_704_067_200_000);
    expect(p.series.open[0]).toBe(100);
    expect(p.series.high[0]).toBe(101);
    expect(p.series.volume[0]).toBe(5);
    // An unknown volume is not a zero volume: the row is quarantined (docs/data.md).
    const empty = parseBarsCsv('1704067200000000,1e2, 101 ,99,100,\n', 'x.csv');
    expect(empty.series.length).toBe(0);
    expect(empty.quarantined.map((q) => q.rule)).toEqual(['empty-cell']);
  });
});
