import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { SeededRng, SimulatedClock } from '@keel/core';
import * as ccxt from 'ccxt';
import { afterAll, describe, expect, it } from 'vitest';
import { download, ingest } from '../src/pipeline.ts';
import { seriesKey } from '../src/schema.ts';
import { archivePath, BinanceArchiveSource } from '../src/sources/binance-archive.ts';
import { CcxtSource } from '../src/sources/ccxt.ts';
import { retrySource, SourceError, sourceError } from '../src/sources/retry.ts';
import { DataStore } from '../src/store.ts';
import { BTC_1M, dataFile, firstDiff, HAS_SHARED_DATA, LINK_FUT, noteSkip, real, tempDir } from './helpers.ts';
import { archiveFiles, startArchiveServer, startKlinesServer } from './servers.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const noSleep = async () => {};

describe('retry policy', () => {
  it('retries transient, in-doubt and rate-limited failures with full-jitter exponential backoff, not rejections', async () => {
    const delays: number[] = [];
    let calls = 0;
    const v = await retrySource(
      async () => {
        calls++;
        if (calls < 4) throw new ccxt.RequestTimeout('timeout');
        return 42;
      },
      { maxAttempts: 5, baseMs: 100, maxMs: 10_000 },
      { rng: new SeededRng(1), sleep: async (ms) => void delays.push(ms) },
    );
    expect(v).toBe(42);
    expect(delays).toHaveLength(3);
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(100 * 2 ** i);
    });
    let rejected = 0;
    await expect(
      retrySource(
        async () => {
          rejected++;
          throw new ccxt.BadSymbol('no such market');
        },
        { maxAttempts: 5, baseMs: 1, maxMs: 1 },
        { rng: new SeededRng(1), sleep: noSleep },
      ),
    ).rejects.toMatchObject({ kind: 'not-found', code: 'source-not-found' });
    expect(rejected).toBe(1);
    expect(sourceError(new ccxt.RateLimitExceeded('x')).kind).toBe('rate-limited');
    expect(
      sourceError(new ccxt.ExchangeNotAvailable('binance GET https://x/api/v3/klines 503 Service Unavailable')).kind,
    ).toBe('in-doubt');
    expect(sourceError(new ccxt.AuthenticationError('x')).kind).toBe('auth');
  });
});

describe.skipIf(!HAS_SHARED_DATA)('Binance public archives over real HTTP on loopback', () => {
  if (!HAS_SHARED_DATA) noteSkip('archive source');
  const csv = gunzipSync(readFileSync(dataFile(LINK_FUT))).toString('utf8');
  const market = { exchange: 'binance', marketType: 'usdm' as const, symbol: 'LINKUSDT' };
  const monthly = archivePath('usdm', 'LINKUSDT', '1m', 'monthly', '2023-02').replace(/\.zip$/, '');

  it('downloads the monthly zip, verifies its .CHECKSUM, stores raw bytes and imports every bar', async () => {
    const srv = await startArchiveServer(new Map(archiveFiles(monthly, csv)));
    try {
      const store = new DataStore(path.join(tmp.dir, 'arch1'));
      const key = seriesKey('binance', 'usdm', 'LINKUSDT', '1m');
      const r = await ingest(store, key, new BinanceArchiveSource({ baseUrl: srv.url, sleep: noSleep }), {
        since: Date.UTC(2023, 1, 1),
        until: Date.UTC(2023, 2, 1),
      });
      expect(srv.requests).toEqual([`${monthly}.zip`, `${monthly}.zip.CHECKSUM`]);
      expect(r.report.rowsKept).toBe(40_320);
      expect(r.report.coverage).toBe(1);
      const raw = store.rawRecords()[0];
      expect(raw?.url).toBe(`${srv.url}${monthly}.zip`);
      expect(raw?.source).toBe(`archive:${srv.url}`);
      const s = store.readBars(key);
      const ref = real(LINK_FUT);
      expect(firstDiff(s.close, ref.close)).toBe(-1);
      expect(firstDiff(s.takerBuyVolume, ref.takerBuyVolume as Float64Array)).toBe(-1);
      expect(store.partitions(key)[0]?.inputs).toEqual([raw?.sha256]);
    } finally {
      await srv.close();
    }
  });

  it('falls back to daily zips when the monthly archive is not published (current month)', async () => {
    const lines = csv.split('\n');
    const header = lines[0] as string;
    const files = new Map<string, Uint8Array>();
    for (const day of [1, 2, 3]) {
      const d = `2023-02-0${day}`;
      const start = Date.UTC(2023, 1, day);
      const rows = lines
        .slice(1)
        .filter((l) => l && Number(l.split(',')[0]) >= start && Number(l.split(',')[0]) < start + 86_400_000);
      for (const [p, b] of archiveFiles(
        archivePath('usdm', 'LINKUSDT', '1m', 'daily', d).replace(/\.zip$/, ''),
        `${header}\n${rows.join('\n')}\n`,
      ))
        files.set(p, b);
    }
    const srv = await startArchiveServer(files);
    try {
      const batches = [];
      const notes: string[] = [];
      for await (const b of new BinanceArchiveSource({ baseUrl: srv.url, sleep: noSleep }).fetch(
        { market, timeframe: '1m', since: Date.UTC(2023, 1, 1), until: Date.UTC(2023, 1, 5) },
        { onNote: (m) => notes.push(m) },
      ))
        batches.push(b);
      expect(batches.map((b) => b.series.length)).toEqual([1440, 1440, 1440]);
      expect(srv.requests[0]).toBe(`${monthly}.zip`);
      expect(notes.some((n) => n.includes('2023-02-04'))).toBe(true);
    } finally {
      await srv.close();
    }
  });

  it('refuses an archive whose sha256 does not match its .CHECKSUM', async () => {
    const files = new Map(archiveFiles(monthly, csv));
    files.set(`${monthly}.zip.CHECKSUM`, new TextEncoder().encode(`${'0'.repeat(64)}  LINKUSDT-1m-2023-02.zip\n`));
    const srv = await startArchiveServer(files);
    try {
      const store = new DataStore(path.join(tmp.dir, 'arch2'));
      const key = seriesKey('binance', 'usdm', 'LINKUSDT', '1m');
      await expect(
        ingest(store, key, new BinanceArchiveSource({ baseUrl: srv.url, sleep: noSleep }), {
          since: Date.UTC(2023, 1, 1),
          until: Date.UTC(2023, 2, 1),
        }),
      ).rejects.toThrow(/LINKUSDT-1m-2023-02\.zip: sha256 [0-9a-f]{64} does not match its \.CHECKSUM 0{64}/);
      expect(store.rawRecords()).toHaveLength(0);
    } finally {
      await srv.close();
    }
  });
});

describe.skipIf(!HAS_SHARED_DATA)('ccxt (the real client) against a local Binance-protocol endpoint', () => {
  if (!HAS_SHARED_DATA) noteSkip('ccxt source');
  const key = seriesKey('binance', 'spot', 'BTCUSDT', '1m');
  const ccxtConfig = (url: string) => ({
    urls: { api: { public: `${url}/api/v3`, private: `${url}/api/v3`, v1: `${url}/api/v1` } },
    options: { fetchMarkets: { types: ['spot'] }, fetchCurrencies: false },
    rateLimit: 5,
    timeout: 5_000,
  });
  const clock = new SimulatedClock(Date.UTC(2024, 1, 2));

  it('paginates fetchOHLCV from the start date, then resumes after the last stored bar (incremental)', async () => {
    const bars = real(BTC_1M);
    const srv = await startKlinesServer({ symbol: 'BTCUSDT', base: 'BTC', quote: 'USDT', bars });
    const src = new CcxtSource({ endpoints: [{ id: 'binance', config: ccxtConfig(srv.url) }], clock, sleep: noSleep });
    try {
      const store = new DataStore(path.join(tmp.dir, 'ccxt1'), { clock });
      const first = await download(store, key, src, { since: Date.UTC(2024, 0, 1), until: Date.UTC(2024, 0, 2) });
      expect(first?.report.rowsKept).toBe(1440);
      const klines = () => srv.requests.filter((r) => r.startsWith('/api/v3/klines'));
      expect(klines()).toHaveLength(2);
      expect(store.rawRecords()).toHaveLength(2);
      // The raw zone holds each page's HTTP body exactly as the exchange sent it.
      const body = new TextDecoder().decode(store.readRaw(store.rawRecords()[0]?.sha256 as string));
      expect(body.startsWith('[[1704067200000,"42283.58"')).toBe(true);
      const before = klines().length;
      const second = await download(store, key, src, { since: Date.UTC(2024, 0, 1), until: Date.UTC(2024, 0, 3) });
      expect(second?.report.rowsKept).toBe(1440);
      const resumed = klines()[before] as string;
      expect(new URL(resumed, 'http://x').searchParams.get('startTime')).toBe(String(Date.UTC(2024, 0, 2)));
      const s = store.readBars(key);
      expect(s.length).toBe(2880);
      expect(firstDiff(s.close, bars.close.subarray(0, 2880))).toBe(-1);
      expect(await download(store, key, src, { since: Date.UTC(2024, 0, 1), until: Date.UTC(2024, 0, 3) })).toBeNull();
    } finally {
      await src.close();
      await srv.close();
    }
  });

  it('never stores a bar whose period has not closed by the clock', async () => {
    const srv = await startKlinesServer({ symbol: 'BTCUSDT', base: 'BTC', quote: 'USDT', bars: real(BTC_1M) });
    const now = Date.UTC(2024, 0, 1, 0, 30, 30);
    const src = new CcxtSource({
      endpoints: [{ id: 'binance', config: ccxtConfig(srv.url) }],
      clock: { now: () => now },
      sleep: noSleep,
    });
    try {
      const batches = [];
      for await (const b of src.fetch({
        market: key,
        timeframe: '1m',
        since: Date.UTC(2024, 0, 1),
        until: Date.UTC(2024, 0, 2),
      }))
        batches.push(b);
      expect(batches[0]?.series.length).toBe(30);
    } finally {
      await src.close();
      await srv.close();
    }
  });

  it('retries 429 and 5xx answers with backoff, then succeeds', async () => {
    const srv = await startKlinesServer({
      symbol: 'BTCUSDT',
      base: 'BTC',
      quote: 'USDT',
      bars: real(BTC_1M),
      failKlines: [429, 503, 500],
    });
    const notes: string[] = [];
    const delays: number[] = [];
    const src = new CcxtSource({
      endpoints: [{ id: 'binance', config: ccxtConfig(srv.url) }],
      clock,
      sleep: async (ms) => void delays.push(ms),
      retry: { maxAttempts: 5, baseMs: 200, maxMs: 5000 },
    });
    try {
      const batches = [];
      for await (const b of src.fetch(
        { market: key, timeframe: '1m', since: Date.UTC(2024, 0, 1), until: Date.UTC(2024, 0, 1, 1) },
        { onNote: (m) => notes.push(m) },
      ))
        batches.push(b);
      expect(batches[0]?.series.length).toBe(60);
      expect(delays).toHaveLength(3);
      expect(delays[0]).toBeGreaterThanOrEqual(200); // rate-limited waits twice as long
      expect(notes.filter((n) => n.includes('retry'))).toHaveLength(3);
    } finally {
      await src.close();
      await srv.close();
    }
  });

  it('fails over to the second configured exchange for the same market when the first is down', async () => {
    const down = await startKlinesServer({
      symbol: 'BTCUSDT',
      base: 'BTC',
      quote: 'USDT',
      bars: real(BTC_1M),
      down: 503,
    });
    const up = await startKlinesServer({ symbol: 'BTCUSDT', base: 'BTC', quote: 'USDT', bars: real(BTC_1M) });
    const notes: string[] = [];
    const src = new CcxtSource({
      endpoints: [
        { id: 'binance', label: 'binance-primary', config: ccxtConfig(down.url) },
        { id: 'binance', label: 'binance-backup', config: ccxtConfig(up.url) },
      ],
      clock,
      sleep: noSleep,
      retry: { maxAttempts: 3, baseMs: 1, maxMs: 1 },
    });
    try {
      const store = new DataStore(path.join(tmp.dir, 'ccxt2'), { clock });
      const r = await ingest(
        store,
        key,
        src,
        { since: Date.UTC(2024, 0, 1), until: Date.UTC(2024, 0, 1, 2) },
        { hooks: { onNote: (m) => notes.push(m) } },
      );
      expect(r.servedBy).toEqual(['binance-backup']);
      expect(r.report.rowsKept).toBe(120);
      expect(down.requests.length).toBe(3); // three attempts, then failover
      expect(notes).toContain('failed over to binance-backup');
      expect(store.rawRecords()[0]?.source).toBe('rest:binance-backup');
    } finally {
      await src.close();
      await down.close();
      await up.close();
    }
  });

  it('a rejected request (unknown symbol) fails at once with a clear error, no failover', async () => {
    const srv = await startKlinesServer({ symbol: 'BTCUSDT', base: 'BTC', quote: 'USDT', bars: real(BTC_1M) });
    const src = new CcxtSource({ endpoints: [{ id: 'binance', config: ccxtConfig(srv.url) }], clock, sleep: noSleep });
    try {
      const it = src.fetch({
        market: { ...key, symbol: 'DOGEUSDT' },
        timeframe: '1m',
        since: Date.UTC(2024, 0, 1),
        until: Date.UTC(2024, 0, 2),
      });
      await expect(it[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(SourceError);
    } finally {
      await src.close();
      await srv.close();
    }
  });
});

const SIM_INDEX = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../exchange-sim/src/index.ts');
const HAS_SIM = existsSync(SIM_INDEX);

describe.skipIf(!HAS_SHARED_DATA || !HAS_SIM)('ccxt against @keel/exchange-sim (Binance protocol simulator)', () => {
  if (!HAS_SIM) noteSkip('ccxt vs exchange-sim', `packages/exchange-sim (${SIM_INDEX})`);
  const key = seriesKey('binance', 'spot', 'BTCUSDT', '1m');
  const bars = () => {
    const s = real(BTC_1M);
    return Array.from({ length: 4000 }, (_, i) => ({
      time: s.time[i] as number,
      open: s.open[i] as number,
      high: s.high[i] as number,
      low: s.low[i] as number,
      close: s.close[i] as number,
      volume: s.volume[i] as number,
    }));
  };

  it('incremental paginated download stops before the open bar, then resumes after the last stored one', async () => {
    const { startExchangeSim, ccxtConfigFor } = await import('@keel/exchange-sim');
    const sim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars: bars() }],
      startTime: Date.UTC(2024, 0, 2, 12),
    });
    const src = new CcxtSource({
      endpoints: [{ id: 'binance', config: ccxtConfigFor(sim, undefined, { enableRateLimit: true }) }],
      clock: { now: () => sim.now() },
      sleep: noSleep,
    });
    try {
      const store = new DataStore(path.join(tmp.dir, 'sim1'), { clock: { now: () => sim.now() } });
      const a = await download(store, key, src, { since: Date.UTC(2024, 0, 1), until: Date.UTC(2024, 1, 1) });
      expect(a?.report.rowsKept).toBe(1440 + 720); // the 12:00 bar is still open: not stored
      expect(store.lastBarTime(key)).toBe(Date.UTC(2024, 0, 2, 11, 59));
      sim.step(30);
      const b = await download(store, key, src, { since: Date.UTC(2024, 0, 1), until: Date.UTC(2024, 1, 1) });
      expect(b?.report.rowsKept).toBe(30);
      const s = store.readBars(key);
      const ref = real(BTC_1M);
      expect(s.length).toBe(2190);
      for (const c of ['open', 'high', 'low', 'close'] as const)
        expect(firstDiff(s[c], ref[c].subarray(0, 2190)), c).toBe(-1);
      expect(store.catalog()[0]).toMatchObject({ rows: 2190, coverage: 1, gaps: [] });
    } finally {
      await src.close();
      await sim.close();
    }
  });

  it('rides out a rate-limit storm and a 503 burst, and fails over when a venue stays down', async () => {
    const { startExchangeSim, ccxtConfigFor } = await import('@keel/exchange-sim');
    const a = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars: bars() }],
      startTime: Date.UTC(2024, 0, 1, 3),
    });
    const b = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars: bars() }],
      startTime: Date.UTC(2024, 0, 1, 3),
    });
    const clockA = { now: () => a.now() };
    const retrying = new CcxtSource({
      endpoints: [{ id: 'binance', config: ccxtConfigFor(a) }],
      clock: clockA,
      sleep: noSleep,
    });
    const failover = new CcxtSource({
      endpoints: [
        { id: 'binance', label: 'sim-a', config: ccxtConfigFor(a) },
        { id: 'binance', label: 'sim-b', config: ccxtConfigFor(b) },
      ],
      clock: clockA,
      sleep: noSleep,
      retry: { maxAttempts: 2, baseMs: 1, maxMs: 1 },
    });
    try {
      a.faults.rateLimitStorm({ count: 2 });
      a.faults.httpErrorBurst({ path: '/api/v3/klines', count: 2, status: 503 });
      const notes: string[] = [];
      const store = new DataStore(path.join(tmp.dir, 'sim2'));
      const r = await ingest(
        store,
        key,
        retrying,
        { since: Date.UTC(2024, 0, 1), until: Date.UTC(2024, 0, 1, 1) },
        { hooks: { onNote: (m) => notes.push(m) } },
      );
      expect(r.report.rowsKept).toBe(60);
      expect(notes.filter((n) => n.includes('retry')).length).toBeGreaterThanOrEqual(3);
      a.faults.httpErrorBurst({ count: 1000, status: 503 });
      const store2 = new DataStore(path.join(tmp.dir, 'sim3'));
      const f = await ingest(store2, key, failover, { since: Date.UTC(2024, 0, 1), until: Date.UTC(2024, 0, 1, 2) });
      expect(f.servedBy).toEqual(['sim-b']);
      expect(f.report.rowsKept).toBe(120);
    } finally {
      await retrying.close();
      await failover.close();
      await a.close();
      await b.close();
    }
  });
});
