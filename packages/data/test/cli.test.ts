import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { fileNameFacts, fileSymbolConflict } from '@keel/candles';
import * as ccxt from 'ccxt';
import { afterAll, describe, expect, it } from 'vitest';
import { inferFromFileName, runDataCli } from '../src/cli.ts';
import { archivePath } from '../src/sources/binance-archive.ts';
import { BTC_1M, dataFile, ETH_1M, FIXTURES, HAS_SHARED_DATA, LINK_FUT, noteSkip, real, tempDir } from './helpers.ts';
import { archiveFiles, startArchiveServer, startKlinesServer } from './servers.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new Sink();
  const stderr = new Sink();
  const code = await runDataCli(argv, { stdout, stderr });
  return { code, out: stdout.text, err: stderr.text };
}

describe('keel data / keel features CLI', () => {
  it('prints help for every subcommand', async () => {
    for (const cmd of ['download', 'import', 'validate', 'list', 'resample', 'export']) {
      const r = await run('data', cmd, '--help');
      expect(r.code, cmd).toBe(0);
      expect(r.out).toContain(`keel data ${cmd}`);
      expect(r.out).toContain('--data-dir');
      expect(r.out).toContain('--json');
    }
    expect((await run('data', '--help')).out).toContain('Commands:');
    expect((await run('features', 'build', '--help')).out).toContain('keel features build');
    const bad = await run('data', 'frobnicate');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown command "data frobnicate"');
  });

  it('infers symbol, timeframe and market from Binance-style file names', () => {
    expect(inferFromFileName('binance_BTCUSDT_1m_2024-01.csv.gz')).toEqual({
      symbol: 'BTCUSDT',
      timeframe: '1m',
      market: 'spot',
    });
    expect(inferFromFileName('LINKUSDT-1m-2023-02.zip')).toEqual({ symbol: 'LINKUSDT', timeframe: '1m' });
    expect(inferFromFileName('binance-futures-um_LINKUSDT_1m_2023-02.csv.gz')).toEqual({
      symbol: 'LINKUSDT',
      timeframe: '1m',
      market: 'usdm',
    });
  });

  it('one reading of file names for every command: the pair, BASE/QUOTE, the timeframe, the market', () => {
    expect(fileNameFacts('/x/binance_ETHBTC_1h_2024.csv')).toEqual({
      pair: 'ETHBTC',
      symbol: 'ETH/BTC',
      timeframe: '1h',
      market: 'spot',
    });
    expect(fileNameFacts('btcusdt.csv.gz')).toEqual({ pair: 'BTCUSDT', symbol: 'BTC/USDT' });
    expect(fileNameFacts('my-candles_4h.csv')).toEqual({ timeframe: '4h' });
    expect(fileNameFacts('BTCUSDT-1M-2024.csv')).toEqual({ pair: 'BTCUSDT', symbol: 'BTC/USDT', timeframe: '1M' });
    expect(fileSymbolConflict('binance_ETHUSDT_1m_2024-01.csv.gz', 'BTC/USDT')).toBe(
      "binance_ETHUSDT_1m_2024-01.csv.gz: the file's name says ETH/USDT, not BTC/USDT: give the file's own market (or rename the file if its name is wrong)",
    );
    for (const ok of ['ETH/USDT', 'ethusdt', 'ETH/USDT:USDT'])
      expect(fileSymbolConflict('binance_ETHUSDT_1m_2024-01.csv.gz', ok), ok).toBeUndefined();
    expect(fileSymbolConflict('candles.csv', 'BTC/USDT')).toBeUndefined();
  });

  it('validate names the file, line and rule of bad rows and applies the coverage gate', async () => {
    const f = path.join(FIXTURES, 'qc-bad-rows.csv');
    const r = await run(
      'data',
      'validate',
      f,
      '--symbol',
      'TESTUSDT',
      '--timeframe',
      '1m',
      '--min-coverage',
      '0.9',
      '--data-dir',
      path.join(tmp.dir, 'v'),
    );
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${f}:4 rule ohlc-inconsistent`);
    expect(r.out).toContain('REFUSED');
    const j = await run('data', 'validate', f, '--symbol', 'TESTUSDT', '--json', '--data-dir', path.join(tmp.dir, 'v'));
    const parsed = JSON.parse(j.out) as {
      ok: boolean;
      files: { report: { quarantined: Record<string, number>; rowsIn: number } }[];
    };
    expect(parsed.files[0]?.report.rowsIn).toBe(14);
    expect(parsed.files[0]?.report.quarantined['duplicate-conflicting']).toBe(1);
  });

  it('validate is not ok (exit 1) when a file keeps no row or a row breaks a data rule, and says why per rule', async () => {
    const dir = path.join(tmp.dir, 'validate');
    const none = path.join(tmp.dir, 'XUSDT-1m-none.csv');
    writeFileSync(
      none,
      'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,0,1,0,1,1\n2024-01-01 00:01:00,2,1,1,1,1\n',
    );
    const j = await run('data', 'validate', none, '--json', '--data-dir', dir);
    expect(j.code).toBe(1);
    const parsed = JSON.parse(j.out) as {
      ok: boolean;
      files: { ok: boolean; reasons: string[]; problems: unknown[] }[];
    };
    expect(parsed.ok).toBe(false);
    expect(parsed.files[0]?.ok).toBe(false);
    expect(parsed.files[0]?.reasons).toContain('no row is left: all 2 rows break a data rule');
    expect(parsed.files[0]?.problems).toHaveLength(2);
    const h = await run('data', 'validate', none, '--data-dir', dir);
    expect(h.code).toBe(1);
    expect(h.out).toContain(`  non-positive-price: 1 row, first at ${none} row 1 (line 2), field open:`);
    expect(h.out).toContain(`  ohlc-inconsistent: 1 row, first at ${none} row 2 (line 3), field high: high 1 < open 2`);
    expect(h.out).toContain(`NOT OK: ${none}: 2 of 2 rows break a data rule`);

    // One bad row of fourteen fails the gate too (no --min-coverage needed); a clean file is OK.
    const bad = await run(
      'data',
      'validate',
      path.join(FIXTURES, 'qc-bad-rows.csv'),
      '--symbol',
      'TESTUSDT',
      '--data-dir',
      dir,
    );
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/data-quality gate FAILED: .*qc-bad-rows\.csv: 9 of 14 rows break a data rule/);
    const clean = path.join(tmp.dir, 'XUSDT-1m-clean.csv');
    writeFileSync(
      clean,
      'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 00:01:00,1.5,2,1,1.2,11\n',
    );
    const ok = await run('data', 'validate', clean, '--data-dir', dir);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain(`OK: ${clean}`);
  });

  it('validate reads close times as close times (with a note), refuses them under --time-is open, and infers the timeframe', async () => {
    const dir = path.join(tmp.dir, 'close');
    const f = path.join(tmp.dir, 'foreign.csv');
    writeFileSync(
      f,
      'close_datetime,open,high,low,close,volume\n2024-12-01 00:59:59.999000+01:00,1,2,0.5,1.5,10\n2024-12-01 01:59:59.999000+01:00,1.5,2,1,1.2,11\n',
    );
    const r = await run('data', 'validate', f, '--symbol', 'XUSDT', '--json', '--data-dir', dir);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { files: { series: string; notes: string[]; report: { first: number } }[] };
    expect(j.files[0]?.series).toBe('binance/spot/XUSDT/1h');
    expect(j.files[0]?.notes.join('\n')).toMatch(/timeframe 1h read from the spacing of the times/);
    expect(j.files[0]?.report.first).toBe(Date.UTC(2024, 10, 30, 23));
    const g = path.join(tmp.dir, 'named-datetime.csv');
    writeFileSync(g, readFileSync(f, 'utf8').replace('close_datetime', 'datetime'));
    const noted = await run('data', 'validate', g, '--symbol', 'XUSDT', '--timeframe', '1h', '--data-dir', dir);
    expect(noted.code).toBe(0);
    expect(noted.out).toMatch(/note: .*column "datetime" holds bar close times/);
    const refused = await run('data', 'validate', g, '--symbol', 'XUSDT', '--time-is', 'open', '--data-dir', dir);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(
      /error \[csv-format\]: .*"datetime" was given as bar open times, but 2 of 2 times sit just before the 1h grid/,
    );
    expect((await run('data', 'validate', g, '--time-is', 'later', '--data-dir', dir)).code).toBe(2);
  });

  it('import refuses a --timeframe the bars are not (nothing stored); a name the spacing contradicts reads as the spacing, with a note', async () => {
    const dir = path.join(tmp.dir, 'tf');
    let text = 'timestamp,open,high,low,close,volume\n';
    for (let m = 0; m < 120; m++) text += `${Date.UTC(2024, 0, 1) + m * 60_000},1,2,0.5,1.5,10\n`;
    const f = path.join(tmp.dir, 'binance_XUSDT_1m_2024-01.csv');
    writeFileSync(f, text);
    const r = await run('data', 'import', f, '--timeframe', '1h', '--data-dir', dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      `error [timeframe-mismatch]: ${f}: the bars are 1m apart (the name says 1m), not the --timeframe 1h given`,
    );
    expect((await run('data', 'list', '--data-dir', dir)).out).toContain('no data in');
    const named = path.join(tmp.dir, 'XUSDT_1h.csv');
    writeFileSync(named, text);
    const n = await run('data', 'import', named, '--data-dir', dir, '--json');
    expect(n.code).toBe(0);
    const j = JSON.parse(n.out) as { imports: { series: string; notes: string[]; report: { rowsKept: number } }[] };
    expect(j.imports[0]).toMatchObject({ series: 'binance/spot/XUSDT/1m', report: { rowsKept: 120 } });
    expect(j.imports[0]?.notes).toContain(`${named}: the name says 1h but the bars are 1m apart; read as 1m`);
  });

  it('download and export refuse a reversed range as a usage error naming both flags', async () => {
    const r = await run('data', 'download', '--symbol', 'BTCUSDT', '--since', '2024-02-01', '--until', '2024-01-01');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--since 2024-02-01T00:00:00Z is not before --until 2024-01-01T00:00:00Z');
    const e = await run('data', 'export', '--symbol', 'BTCUSDT', '--from', '2024-02-01', '--to', '2024-01-01');
    expect(e.code).toBe(2);
    expect(e.err).toContain('--from 2024-02-01T00:00:00Z is not before --to 2024-01-01T00:00:00Z');
  });

  it('a malformed file is a clear error naming the file', async () => {
    const f = path.join(tmp.dir, 'bad.csv');
    writeFileSync(f, 'when,price\n2024-01-01,1\n');
    const r = await run('data', 'import', f, '--symbol', 'XUSDT', '--data-dir', path.join(tmp.dir, 'bad'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /error \[csv-format\]: .*bad\.csv: header has no time, open, high, low, close, volume column/,
    );
    const u = await run('data', 'import', '--data-dir', path.join(tmp.dir, 'bad'));
    expect(u.code).toBe(2);
    expect(u.err).toContain('no files given');
  });
});

describe.skipIf(!HAS_SHARED_DATA)('CLI end to end on real files', () => {
  if (!HAS_SHARED_DATA) noteSkip('cli e2e');
  const dir = path.join(tmp.dir, 'e2e');

  it('import and validate refuse a --symbol the file name contradicts, and store nothing', async () => {
    const d = path.join(tmp.dir, 'mismatch');
    for (const cmd of ['import', 'validate']) {
      const r = await run('data', cmd, dataFile(ETH_1M), '--symbol', 'BTCUSDT', '--data-dir', d, '--json');
      expect(r.code, cmd).toBe(1);
      expect(r.err).toContain(
        `error [symbol-mismatch]: ${dataFile(ETH_1M)}: the file's name says ETH/USDT, not BTCUSDT`,
      );
      expect(JSON.parse(r.out).ok).toBe(false);
    }
    expect((await run('data', 'list', '--data-dir', d)).out).not.toMatch(/BTCUSDT|ETHUSDT/);
  });

  it('import --json, list, resample, export (any timeframe), features build, validate --stored', async () => {
    const imp = await run('data', 'import', dataFile(BTC_1M), dataFile(ETH_1M), '--data-dir', dir, '--json');
    expect(imp.code).toBe(0);
    const ij = JSON.parse(imp.out) as { imports: { series: string; report: { rowsKept: number; coverage: number } }[] };
    expect(ij.imports.map((i) => [i.series, i.report.rowsKept, i.report.coverage])).toEqual([
      ['binance/spot/BTCUSDT/1m', 44_641, 1],
      ['binance/spot/ETHUSDT/1m', 44_641, 1],
    ]);
    const again = JSON.parse((await run('data', 'import', dataFile(BTC_1M), '--data-dir', dir, '--json')).out) as {
      imports: { partitionsWritten: string[] }[];
    };
    expect(again.imports[0]?.partitionsWritten).toEqual([]);

    const list = await run('data', 'list', '--data-dir', dir);
    expect(list.out).toMatch(
      /binance\/spot\/BTCUSDT\/1m\s+2024-01-01T00:00:00Z 2024-02-01T00:00:00Z\s+44641\s+0\s+0\s+0 100.000%/,
    );

    const rs = JSON.parse(
      (await run('data', 'resample', '--symbol', 'BTCUSDT', '--to', '1h,1d', '--data-dir', dir, '--json')).out,
    ) as { results: { timeframe: string; bars: number }[] };
    expect(rs.results).toEqual([
      { timeframe: '1h', bars: 744, partialSkipped: 1, partitionsWritten: 1 },
      { timeframe: '1d', bars: 31, partialSkipped: 1, partitionsWritten: 1 },
    ]);

    const csv = await run(
      'data',
      'export',
      '--symbol',
      'BTCUSDT',
      '--timeframe',
      '4h',
      '--from',
      '2024-01-01',
      '--to',
      '2024-01-02',
      '--data-dir',
      dir,
    );
    const lines = csv.out.trim().split('\n');
    expect(lines[0]).toBe('open_time,open,high,low,close,volume,quote_volume,trades,taker_buy_volume,partial');
    expect(lines).toHaveLength(7);
    expect(lines[1]).toMatch(/^1704067200000,42283.58,/);
    const out = path.join(tmp.dir, 'eth-1d.json');
    const ex = await run(
      'data',
      'export',
      '--symbol',
      'ETHUSDT',
      '--timeframe',
      '1d',
      '--format',
      'json',
      '--out',
      out,
      '--data-dir',
      dir,
      '--json',
    );
    expect(JSON.parse(ex.out)).toMatchObject({ ok: true, rows: 32, resampledFrom: '1m' });
    const bars = (JSON.parse(readFileSync(out, 'utf8')) as { bars: { partial: boolean }[] }).bars;
    expect(bars.filter((b) => b.partial)).toHaveLength(1);

    const fb = await run('features', 'build', '--symbol', 'ETHUSDT', '--data-dir', dir, '--json');
    expect(fb.code).toBe(0);
    const fj = JSON.parse(fb.out) as {
      reference: string;
      rows: number;
      features: unknown[];
      qc: { constantColumns: string[] };
    };
    expect(fj.reference).toBe('binance/spot/BTCUSDT/1m');
    expect(fj.rows).toBe(44_641);
    expect(fj.features.length).toBeGreaterThanOrEqual(42);
    expect(existsSync(path.join(dir, 'features'))).toBe(true);
    const txt = await run(
      'features',
      'build',
      '--symbol',
      'ETHUSDT',
      '--data-dir',
      dir,
      '--set',
      'norm',
      '--normalize',
      '500',
    );
    expect(txt.out).toMatch(/features binance\/spot\/ETHUSDT\/1m\/norm: \d+ features x 44641 rows/);

    const v = await run('data', 'validate', '--stored', '--data-dir', dir);
    expect(v.code).toBe(0);
    expect(v.out).toContain('stored zone OK (checked by DuckDB)');
  });

  it('progress bars go to stderr only when asked (or on a TTY), never to stdout', async () => {
    const quiet = await run('data', 'import', dataFile(BTC_1M), '--data-dir', path.join(tmp.dir, 'p1'), '--json');
    expect(quiet.err).toBe('');
    const loud = await run(
      'data',
      'import',
      dataFile(BTC_1M),
      '--data-dir',
      path.join(tmp.dir, 'p2'),
      '--json',
      '--progress',
    );
    expect(loud.err).toContain('import [');
    expect(() => JSON.parse(loud.out)).not.toThrow();
  });
});

describe.skipIf(!HAS_SHARED_DATA)('keel data download over loopback HTTP', () => {
  if (!HAS_SHARED_DATA) noteSkip('cli download');

  it('--source ccxt with --ccxt-config, incremental on the second run', async () => {
    const srv = await startKlinesServer({ symbol: 'BTCUSDT', base: 'BTC', quote: 'USDT', bars: real(BTC_1M) });
    // No ccxt options: a spot download loads the spot markets only, so it works where Binance's
    // derivatives APIs answer 451 (a restricted location; every fapi/dapi/eapi URL points there).
    const derivatives = Object.fromEntries(
      Object.keys(new ccxt.binance().urls.api as object)
        .filter((k) => /^(fapi|dapi|eapi)/.test(k))
        .map((k) => [k, `${srv.url}/${k}`]),
    );
    const cfg = JSON.stringify({
      urls: { api: { ...derivatives, public: `${srv.url}/api/v3`, private: `${srv.url}/api/v3` } },
      rateLimit: 5,
    });
    const dir = path.join(tmp.dir, 'dl');
    try {
      const a = await run(
        'data',
        'download',
        '--symbol',
        'BTC/USDT',
        '--since',
        '2024-01-01',
        '--until',
        '2024-01-01T12:00',
        '--ccxt-config',
        cfg,
        '--data-dir',
        dir,
        '--json',
      );
      expect(a.code, a.err).toBe(0);
      expect(JSON.parse(a.out)).toMatchObject({
        ok: true,
        series: 'binance/spot/BTCUSDT/1m',
        report: { rowsKept: 720 },
      });
      const b = await run(
        'data',
        'download',
        '--symbol',
        'BTCUSDT',
        '--since',
        '2024-01-01',
        '--until',
        '2024-01-01T12:00',
        '--ccxt-config',
        cfg,
        '--data-dir',
        dir,
      );
      expect(b.out).toContain('is up to date');
      expect(srv.requests.filter((r) => /^\/(fapi|dapi|eapi)/.test(r))).toEqual([]);
    } finally {
      await srv.close();
    }
  });

  it('--symbol A,B downloads each market in turn (its own bars, its own series); a list is never one market', async () => {
    const srv = await startKlinesServer({
      symbol: 'BTCUSDT',
      base: 'BTC',
      quote: 'USDT',
      bars: real(BTC_1M),
      more: [{ symbol: 'ETHUSDT', base: 'ETH', quote: 'USDT', bars: real(ETH_1M) }],
    });
    const cfg = JSON.stringify({
      urls: { api: { public: `${srv.url}/api/v3`, private: `${srv.url}/api/v3` } },
      rateLimit: 5,
    });
    const dir = path.join(tmp.dir, 'dl-two');
    try {
      const span = ['--since', '2024-01-01', '--until', '2024-01-01T06:00', '--ccxt-config', cfg, '--data-dir', dir];
      const r = await run('data', 'download', '--symbol', 'BTC/USDT,ETH/USDT', ...span, '--json');
      expect(r.code, r.err).toBe(0);
      const j = JSON.parse(r.out) as { ok: boolean; downloads: { series: string; report: { rowsKept: number } }[] };
      expect(j.ok).toBe(true);
      expect(j.downloads.map((d) => [d.series, d.report.rowsKept])).toEqual([
        ['binance/spot/BTCUSDT/1m', 360],
        ['binance/spot/ETHUSDT/1m', 360],
      ]);
      // Each series holds its own market's bars: the first close of each file.
      const first = async (sym: string) =>
        JSON.parse(
          (
            await run(
              'data',
              'export',
              '--symbol',
              sym,
              '--format',
              'json',
              '--to',
              '2024-01-01T00:01',
              '--data-dir',
              dir,
            )
          ).out,
        );
      expect(JSON.stringify(await first('BTCUSDT'))).toContain(String(real(BTC_1M).close[0]));
      expect(JSON.stringify(await first('ETHUSDT'))).toContain(String(real(ETH_1M).close[0]));
      const resample = await run('data', 'resample', '--symbol', 'BTCUSDT,ETHUSDT', '--to', '1h', '--data-dir', dir);
      expect(resample.code).toBe(2);
      expect(resample.err).toContain('lists several markets where one is meant');
    } finally {
      await srv.close();
    }
  });

  it('--source archive with --base-url', async () => {
    const csv = gunzipSync(readFileSync(dataFile(LINK_FUT))).toString('utf8');
    const srv = await startArchiveServer(
      new Map(archiveFiles(archivePath('usdm', 'LINKUSDT', '1m', 'monthly', '2023-02').replace(/\.zip$/, ''), csv)),
    );
    try {
      const r = await run(
        'data',
        'download',
        '--source',
        'archive',
        '--base-url',
        srv.url,
        '--market',
        'usdm',
        '--symbol',
        'LINKUSDT',
        '--since',
        '2023-02-01',
        '--until',
        '2023-03-01',
        '--data-dir',
        path.join(tmp.dir, 'dla'),
      );
      expect(r.code, r.err).toBe(0);
      expect(r.out).toContain('rows in 40,320, kept 40,320');
    } finally {
      await srv.close();
    }
  });
});
