import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SimulatedClock } from '@keel/core';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFeatures, ingest, resampleStored } from '../src/pipeline.ts';
import { allocSeries, SOURCE_RANK, seriesKey, sliceFull } from '../src/schema.ts';
import { FileSource } from '../src/sources/files.ts';
import { DataStore } from '../src/store.ts';
import {
  BTC_1H,
  BTC_1M,
  dataFile,
  ETH_1M,
  firstDiff,
  HAS_SHARED_DATA,
  LINK_FUT,
  noteSkip,
  real,
  tempDir,
} from './helpers.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

const snapshot = (dir: string) =>
  listFiles(dir)
    .filter((f) => !f.startsWith('reports/'))
    .map((f) => `${f}:${statSync(path.join(dir, f)).size}:${statSync(path.join(dir, f)).mtimeMs}`);

describe.skipIf(!HAS_SHARED_DATA)('store: zones, idempotency, precedence, lineage, catalog', () => {
  if (!HAS_SHARED_DATA) noteSkip('store');
  const dir = path.join(tmp.dir, 'store');
  const clock = new SimulatedClock(Date.UTC(2026, 0, 1));
  const store = new DataStore(dir, { clock });
  const btc = seriesKey('binance', 'spot', 'BTCUSDT', '1m');
  afterAll(() => store.close());

  it('imports a real file: raw bytes kept unmodified with a manifest, processed Parquet partitioned by month', async () => {
    const r = await ingest(store, btc, new FileSource([dataFile(BTC_1M)]), {
      since: 0,
      until: Number.MAX_SAFE_INTEGER,
    });
    expect(r.report.rowsKept).toBe(44_641);
    expect(r.partitionsWritten).toEqual(['2024-01', '2024-02']);
    const raw = store.rawRecords();
    expect(raw).toHaveLength(1);
    expect(readFileSync(path.join(dir, raw[0]?.path as string)).equals(readFileSync(dataFile(BTC_1M)))).toBe(true);
    expect(raw[0]).toMatchObject({ source: 'file:file', rows: 44_641, fetchedAt: '2026-01-01T00:00:00.000Z' });
    expect(listFiles(dir).filter((f) => f.startsWith('processed/exchange'))).toEqual([
      'processed/exchange=binance/market=spot/symbol=BTCUSDT/timeframe=1m/month=2024-01/part-v0001.parquet',
      'processed/exchange=binance/market=spot/symbol=BTCUSDT/timeframe=1m/month=2024-02/part-v0001.parquet',
    ]);
    const back = store.readBars(btc);
    const src = real(BTC_1M);
    expect(firstDiff(back.time, src.time)).toBe(-1);
    expect(firstDiff(back.close, src.close)).toBe(-1);
    expect(firstDiff(back.volume, src.volume)).toBe(-1);
    expect(Number.isNaN(back.trades[0])).toBe(true);
  });

  it('reads a time range as typed-array columns', () => {
    const from = Date.UTC(2024, 0, 10);
    const to = Date.UTC(2024, 0, 11);
    const s = store.readBars(btc, { from, to });
    expect(s.length).toBe(1440);
    expect(s.time[0]).toBe(from);
    expect(s.time[1439]).toBe(to - 60_000);
    expect(s.close).toBeInstanceOf(Float64Array);
  });

  it('importing the same data twice changes nothing (no new version, no file touched)', async () => {
    const before = snapshot(dir);
    const r = await ingest(store, btc, new FileSource([dataFile(BTC_1M)]), {
      since: 0,
      until: Number.MAX_SAFE_INTEGER,
    });
    expect(r.partitionsWritten).toEqual([]);
    expect(r.partitionsUnchanged).toEqual(['2024-01', '2024-02']);
    expect(r.barsAdded + r.barsReplaced).toBe(0);
    const after = snapshot(dir).filter((f) => !f.startsWith('processed/_catalog.json'));
    expect(after).toEqual(before.filter((f) => !f.startsWith('processed/_catalog.json')));
    expect(store.rawRecords()).toHaveLength(1);
  });

  it('overlaps keep one bar per timestamp: higher source rank wins, equal rank newer wins, lower rank never overwrites', () => {
    const key = seriesKey('binance', 'spot', 'TESTUSDT', '1m');
    const mk = (from: number, n: number, price: number) => {
      const s = allocSeries(n);
      for (let i = 0; i < n; i++) {
        s.time[i] = Date.UTC(2024, 0, 1) + (from + i) * 60_000;
        s.open[i] = s.high[i] = s.low[i] = s.close[i] = price;
        s.volume[i] = 1;
        s.quoteVolume[i] = s.trades[i] = s.takerBuyVolume[i] = Number.NaN;
      }
      return s;
    };
    store.importBars(key, mk(0, 10, 100), { sourceKind: 'rest', saveReport: false });
    const lower = store.importBars(key, mk(5, 10, 200), { sourceKind: 'file', saveReport: false });
    expect(lower.barsKeptExisting).toBe(5);
    expect(lower.barsAdded).toBe(5);
    let s = store.readBars(key);
    expect(Array.from(s.close)).toEqual([...Array(10).fill(100), ...Array(5).fill(200)]);
    const higher = store.importBars(key, mk(8, 4, 300), { sourceKind: 'archive', saveReport: false });
    expect(higher.barsReplaced).toBe(4);
    s = store.readBars(key);
    expect(Array.from(s.close)).toEqual([...Array(8).fill(100), ...Array(4).fill(300), ...Array(3).fill(200)]);
    const same = store.importBars(key, mk(0, 2, 150), { sourceKind: 'rest', saveReport: false });
    expect(same.barsReplaced).toBe(2);
    expect(store.readBars(key).close[0]).toBe(150);
    expect(SOURCE_RANK.archive).toBeGreaterThan(SOURCE_RANK.rest);
    // Every rewrite is a new version; the superseded ones move to history/.
    const p = store.partitions(key)[0];
    expect(p?.version).toBe(4);
    expect(listFiles(path.join(dir, 'history')).filter((f) => f.includes('TESTUSDT'))).toHaveLength(3);
  });

  it('each processed partition traces back to its raw inputs (sha256 in the raw manifest)', async () => {
    const eth = seriesKey('binance', 'spot', 'ETHUSDT', '1m');
    await ingest(store, eth, new FileSource([dataFile(ETH_1M)]), { since: 0, until: Number.MAX_SAFE_INTEGER });
    const shas = new Set(store.rawRecords().map((r) => r.sha256));
    for (const k of [btc, eth]) {
      for (const p of store.partitions(k)) {
        expect(p.inputs.length).toBeGreaterThan(0);
        for (const i of p.inputs) expect(shas.has(i), `${p.file} input ${i}`).toBe(true);
      }
    }
    expect(store.partitions(eth)[0]?.inputs).not.toEqual(store.partitions(btc)[0]?.inputs);
  });

  it('the catalog lists first/last bar, rows, gaps (maintenance labelled) and coverage per market and timeframe', async () => {
    const h = seriesKey('binance', 'spot', 'BTCUSDT', '1h');
    await ingest(store, h, new FileSource([dataFile(BTC_1H)]), { since: 0, until: Number.MAX_SAFE_INTEGER });
    const e = store.catalog({ symbol: 'BTCUSDT', timeframe: '1h' })[0];
    expect(e).toMatchObject({
      id: 'binance/spot/BTCUSDT/1h',
      first: Date.UTC(2022, 0, 1),
      last: Date.UTC(2025, 11, 2, 5),
      rows: 34_349,
      coverage: 1,
    });
    expect(e?.gaps).toEqual([
      {
        from: Date.UTC(2023, 2, 24, 13),
        to: Date.UTC(2023, 2, 24, 14),
        missingBars: 1,
        kind: 'maintenance',
        note: expect.stringContaining('2023-03-24'),
      },
    ]);
    expect(store.lastBarTime(h)).toBe(Date.UTC(2025, 11, 2, 5));
    const cov = store.coverage(h, Date.UTC(2023, 2, 24), Date.UTC(2023, 2, 25));
    expect(cov).toEqual({ coverage: 1, rows: 23, expectedBars: 23 });
  });

  it('DuckDB queries the processed zone and agrees with the catalog', async () => {
    const v = await store.verify();
    for (const r of v) {
      expect(r.rows, r.id).toBe(r.catalogRows);
      expect(r.duplicates, r.id).toBe(0);
      expect(r.badOhlc, r.id).toBe(0);
    }
    const con = await store.duckdb();
    const q = await con.runAndReadAll(
      `SELECT exchange, market, symbol, timeframe, count(*)::INT FROM read_parquet('${path.join(dir, 'processed')}/**/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL`,
    );
    expect(q.getRows()).toContainEqual(['binance', 'spot', 'BTCUSDT', '1m', 44_641]);
    const p = store.partitions(btc)[0];
    const kv = await con.runAndReadAll(
      `SELECT decode(key), decode(value) FROM parquet_kv_metadata('${path.join(dir, p?.file as string)}') ORDER BY 1`,
    );
    expect(kv.getRows()).toEqual([
      ['keel.inputs', (p?.inputs ?? []).join(',')],
      ['keel.schema_version', '1'],
      ['keel.zone', 'processed'],
    ]);
  });

  it('a file changed outside Keel is detected, not read', () => {
    const key = seriesKey('binance', 'spot', 'TESTUSDT', '1m');
    const p = store.partitions(key)[0];
    const f = path.join(dir, p?.file as string);
    const orig = readFileSync(f);
    writeFileSync(f, Buffer.concat([orig, Buffer.from('x')]));
    expect(() => store.readBars(key)).toThrow(/changed outside Keel/);
    writeFileSync(f, orig);
  });

  it('resamples a stored series into the store; any timeframe can be read (resampled on the fly)', () => {
    const r = resampleStored(store, btc, '1d');
    expect(r.bars).toBe(31);
    expect(r.partialSkipped).toBe(1);
    const d = seriesKey('binance', 'spot', 'BTCUSDT', '1d');
    expect(store.partitions(d)[0]?.inputs[0]).toMatch(/^processed:processed\/exchange=binance/);
    // Weeks from every stored series that divides them (1m January 2024, 1h 2022-2025, 1d derived
    // from the 1m): the 1d bars are derived, so finer series give the weeks, the finest where it
    // covers a whole week (four weeks of January), 1h elsewhere; a week no series covers whole is partial.
    const w = store.readBarsAt(seriesKey('binance', 'spot', 'BTCUSDT', '1w'));
    expect(w.sources).toEqual([
      { timeframe: '1h', bars: 202 },
      { timeframe: '1m', bars: 4 },
    ]);
    expect(w.series.time[0]).toBe(Date.UTC(2021, 11, 27));
    expect(w.partial[0]).toBe(1);
    expect(w.partial[1]).toBe(0);
  });

  it('features are written to the features zone and read back', () => {
    const eth = seriesKey('binance', 'spot', 'ETHUSDT', '1m');
    const r = buildFeatures(store, eth, { reference: btc });
    expect(r.months).toEqual(['2024-01', '2024-02']);
    const back = store.readFeatures(eth, 'default');
    expect(firstDiff(back.time, r.frame.time)).toBe(-1);
    expect(
      firstDiff(
        back.columns.beta_ref_60 as Float64Array,
        r.frame.columns[r.frame.defs.findIndex((d) => d.name === 'beta_ref_60')] as Float64Array,
      ),
    ).toBe(-1);
    expect(store.featureSets()[0]?.inputs.every((i) => i.startsWith('processed:'))).toBe(true);
  });

  it('imports a Parquet file through DuckDB with a column mapping', async () => {
    const con = await store.duckdb();
    const f = path.join(tmp.dir, 'ext.parquet');
    await con.run(
      `COPY (SELECT open_time AS ts, open AS o, high AS h, low AS l, close AS c, volume AS v FROM ${store.processedFilesSql(btc)} WHERE open_time < 1704070800000) TO '${f}' (FORMAT parquet)`,
    );
    const key = seriesKey('binance', 'spot', 'PQUSDT', '1m');
    const r = await ingest(
      store,
      key,
      new FileSource([f], {
        mapping: { time: 'ts', open: 'o', high: 'h', low: 'l', close: 'c', volume: 'v' },
        readParquet: (x, m) => store.readParquetFile(x, m),
      }),
      { since: 0, until: Number.MAX_SAFE_INTEGER },
    );
    expect(r.report.rowsKept).toBe(60);
    expect(firstDiff(store.readBars(key).close, sliceFull(store.readBars(btc), 0, 60).close)).toBe(-1);
  });

  it('futures klines keep quote volume, trades and taker-buy volume', async () => {
    const key = seriesKey('binance', 'usdm', 'LINKUSDT', '1m');
    await ingest(store, key, new FileSource([dataFile(LINK_FUT)]), { since: 0, until: Number.MAX_SAFE_INTEGER });
    const s = store.readBars(key);
    expect(s.length).toBe(40_320);
    expect(s.trades.every((x) => x > 0)).toBe(true);
    expect(s.takerBuyVolume.every((x, i) => x <= (s.volume[i] as number))).toBe(true);
  });
});
