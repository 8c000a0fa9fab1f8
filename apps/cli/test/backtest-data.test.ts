import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readBarsFile } from '@keel/data/csv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { keelIn } from './in-process.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'keel-btdata-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const BTC_1M = dataFile('binance_BTCUSDT_1m_2024-01.csv.gz');
const BTC_1M_FEB_MAR = dataFile('binance_BTCUSDT_1m_2024-02-12_2024-03-17.csv.gz');
const BTC_1H = dataFile('binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz');
const ETH_1M = dataFile('binance_ETHUSDT_1m_2024-01.csv.gz');
const ETH_1H = dataFile('binance_ETHUSDT_1h_2022-01-01_2025-12-02.csv.gz');

/** A hand-made 1m candle file: `rows` as [minute, open, high, low, close]; volume 10. */
function candles(name: string, rows: readonly (readonly [number, number, number, number, number])[]): string {
  const t0 = Date.UTC(2024, 0, 1);
  let text = 'timestamp,open,high,low,close,volume\n';
  for (const [m, o, h, l, c] of rows) text += `${t0 + m * 60_000},${o},${h},${l},${c},10\n`;
  const f = path.join(tmp, name);
  writeFileSync(f, text);
  return f;
}

/** A hand-made 1h candle file: n bars from `t0`, volume 10. */
function hourly(name: string, t0: number, n: number): string {
  let text = 'timestamp,open,high,low,close,volume\n';
  for (let i = 0; i < n; i++) text += `${t0 + i * 3_600_000},100,101,99,100.5,10\n`;
  const f = path.join(tmp, name);
  writeFileSync(f, text);
  return f;
}

/** n flat-ish 1m bars from minute 0 (a slow zig-zag, every price > 0). */
function rowsOf(n: number, skip: readonly number[] = []): [number, number, number, number, number][] {
  const out: [number, number, number, number, number][] = [];
  for (let m = 0; m < n; m++) {
    if (skip.includes(m)) continue;
    const p = 100 + 5 * Math.sin(m / 7);
    out.push([m, p, p + 1, p - 1, p + 0.5]);
  }
  return out;
}

describe.skipIf(!HAS_SHARED_DATA)('keel backtest from the data store', () => {
  const dir = path.join(tmp, 'store');
  beforeAll(async () => {
    for (const f of [BTC_1M, ETH_1M]) {
      const r = await keelIn(['data', 'import', f, '--data-dir', dir]);
      expect(r.code, r.err).toBe(0);
    }
  }, 120_000);

  it("1h from stored 1m bars (resampled on the fly) equals the backtest of Binance's own 1h candles of the month", async () => {
    const span = ['--from', '2024-01-01', '--to', '2024-02-01'];
    const stored = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--exchange',
      'binance',
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1h',
      '--data-dir',
      dir,
      ...span,
      '--json',
    ]);
    expect(stored.code, stored.err).toBe(0);
    expect(stored.err).toMatch(/1m bars resampled to 1h on the fly/);
    const file = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1H, ...span, '--json']);
    expect(file.code, file.err).toBe(0);
    const a = JSON.parse(stored.out);
    const b = JSON.parse(file.out);
    expect(a.trades.length).toBeGreaterThan(5);
    expect(a.trades).toEqual(b.trades);
    expect(a.fills).toEqual(b.fills);
    expect(a.finalValue).toBe(b.finalValue);
  });

  it("several markets from the store equal the same markets from Binance's 1h files", async () => {
    const span = ['--from', '2024-01-01', '--to', '2024-02-01', '--no-save', '--json'];
    const stored = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BTC/USDT,ETH/USDT',
      '--timeframe',
      '1h',
      '--data-dir',
      dir,
      ...span,
    ]);
    expect(stored.code, stored.err).toBe(0);
    const files = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1H, '--data', ETH_1H, ...span]);
    const a = JSON.parse(stored.out);
    const b = JSON.parse(files.out);
    expect(a.pairs.map((p: { symbol: string }) => p.symbol)).toEqual(['BTC/USDT', 'ETH/USDT']);
    expect(a.trades.filter((t: { symbol: string }) => t.symbol === 'ETH/USDT').length).toBeGreaterThan(3);
    expect(a.trades).toEqual(b.trades);
    expect(a.finalValue).toBe(b.finalValue);
  });

  it('1m from the store is the backtest of the imported file, byte for byte', async () => {
    const stored = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1m',
      '--data-dir',
      dir,
      '--json',
    ]);
    const file = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1M, '--json']);
    expect(stored.code, stored.err).toBe(0);
    expect(stored.out === file.out, 'same bytes').toBe(true);
  });

  it("a coarser timeframe over --from/--to is made from the bars in the range only: the file gives the store's bars, none holding data after --to", async () => {
    const span = ['--timeframe', '4h', '--from', '2024-01-01T00:30', '--to', '2024-01-20T10:30', '--json', '--no-save'];
    const stored = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BTC/USDT',
      '--data-dir',
      dir,
      ...span,
    ]);
    const file = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1M, ...span]);
    expect(stored.code, stored.err).toBe(0);
    expect(file.code, file.err).toBe(0);
    const a = JSON.parse(stored.out);
    const b = JSON.parse(file.out);
    // The 08:00 bar of the 20th would close at 12:00, after --to: it is partial and left out.
    expect(b.feeds[0].lastIso).toBe('2024-01-20T04:00:00Z');
    expect(b.feeds).toEqual(a.feeds);
    expect(b.equity).toEqual(a.equity);
    expect(b.fills).toEqual(a.fills);
    expect(b.finalValue).toBe(a.finalValue);
  });

  it('a market or a range the store does not hold is an error naming the store and what it holds', async () => {
    const bnb = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BNB/USDT',
      '--timeframe',
      '1h',
      '--data-dir',
      dir,
    ]);
    expect(bnb.code).toBe(1);
    expect(bnb.err).toMatch(/has no binance spot BNB\/USDT bars: keel data download or keel data import/);
    const finer = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1s',
      '--data-dir',
      dir,
    ]);
    expect(finer.code).toBe(1);
    expect(finer.err).toMatch(
      /has BTC\/USDT only as 1m 2024-01-01T00:00:00Z \.\. 2024-02-01T00:00:00Z: none is 1s or finer/,
    );
    const late = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1h',
      '--data-dir',
      dir,
      '--from',
      '2025-01-01',
    ]);
    expect(late.code).toBe(1);
    expect(late.err).toMatch(/no BTC\/USDT bars in 2025-01-01T00:00:00Z \.\. the end; stored: 1m 2024-01-01T00:00:00Z/);
  });
});

describe('the data-quality gate before every backtest', () => {
  it('a non-positive price is refused with file, row, field and rule; --allow-bad-data drops it and the summary counts it', async () => {
    const rows = rowsOf(120);
    rows[40] = [40, 100, 101, 99, 0];
    const f = candles('zero-close.csv', rows);
    const r = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', f, '--symbol', 'BTC/USDT']);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`non-positive-price: 1 row, first at ${f} row 41 (line 42), field close`);
    expect(r.err).toMatch(/--allow-bad-data drops those rows/);
    const d = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      f,
      '--symbol',
      'BTC/USDT',
      '--allow-bad-data',
    ]);
    expect(d.code, d.err).toBe(0);
    expect(d.out).toMatch(/1 bad rows dropped \(non-positive-price 1\)/);
    expect(d.out).toMatch(/119 bars in/);
  });

  it('gaps are shown in the summary with their count and the longest', async () => {
    const f = candles('gappy.csv', rowsOf(120, [50, 51, 52, 90]));
    const r = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', f, '--symbol', 'BTC/USDT']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/gaps \(whole file\) 2 \(4 1m bars missing\), longest 3 1m bars from 2024-01-01T00:50:00Z/);
    const clean = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      candles('clean.csv', rowsOf(60)),
      '--symbol',
      'BTC/USDT',
    ]);
    expect(clean.out).toMatch(/BTC\/USDT: .*clean\.csv, no gaps \(whole file\)/);
  });
});

describe.skipIf(!HAS_SHARED_DATA)('a timeframe is read from every stored series that covers the range', () => {
  it("a stored 1h resample does not hide 1m bars imported after it: backtest and export equal Binance's own 1h candles", async () => {
    const dir = path.join(tmp, 'stale');
    for (const args of [
      ['data', 'import', BTC_1M],
      ['data', 'resample', '--symbol', 'BTC/USDT', '--to', '1h'],
      ['data', 'import', BTC_1M_FEB_MAR],
    ]) {
      const r = await keelIn([...args, '--data-dir', dir]);
      expect(r.code, r.err).toBe(0);
    }
    const span = ['--from', '2024-02-15', '--to', '2024-03-01'];
    const bt = ['backtest', '--strategy', 'sma-cross', '--no-save', '--json', ...span];
    const stored = await keelIn([...bt, '--symbol', 'BTC/USDT', '--timeframe', '1h', '--data-dir', dir]);
    expect(stored.code, stored.err).toBe(0);
    const file = await keelIn([...bt, '--data', BTC_1H]);
    const a = JSON.parse(stored.out);
    const b = JSON.parse(file.out);
    expect(a.trades.length).toBeGreaterThan(3);
    expect(a.trades).toEqual(b.trades);
    expect(a.finalValue).toBe(b.finalValue);

    const csv = await keelIn([
      'data',
      'export',
      '--symbol',
      'BTCUSDT',
      '--timeframe',
      '1h',
      ...span,
      '--data-dir',
      dir,
    ]);
    expect(csv.code, csv.err).toBe(0);
    const rows = csv.out.trim().split('\n').slice(1);
    const own = readBarsFile(BTC_1H).series;
    const expected: string[] = [];
    for (let i = 0; i < own.length; i++) {
      const t = own.time[i] as number;
      if (t >= Date.UTC(2024, 1, 15) && t < Date.UTC(2024, 2, 1))
        expected.push(`${t},${own.open[i]},${own.high[i]},${own.low[i]},${own.close[i]}`);
    }
    expect(expected).toHaveLength(15 * 24); // 2024 is a leap year
    expect(rows.map((r) => r.split(',').slice(0, 5).join(','))).toEqual(expected);
  });

  it('a backtest --from after --to is refused the same from the store as from a file, before any read', async () => {
    const span = ['--from', '2024-03-01', '--to', '2024-02-01'];
    const store = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1h',
      '--data-dir',
      path.join(tmp, 'stale'),
      ...span,
    ]);
    const file = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1H, ...span]);
    expect(store.code).toBe(1);
    expect(store.err).toContain('--from 2024-03-01T00:00:00Z is not before --to 2024-02-01T00:00:00Z');
    expect({ code: store.code, err: store.err }).toEqual({ code: file.code, err: file.err });
  });
});

describe('what the store holds besides market data is shown wherever its bars are used', () => {
  const bt = ['backtest', '--strategy', 'sma-cross', '--symbol', 'BTC/USDT', '--no-save'];
  /** `keel data <args> --data-dir <dir>`. */
  const data = (dir: string, ...args: string[]) => keelIn(['data', ...args, '--data-dir', dir]);

  it('gap-filled bars are counted by data list and in the backtest summary', async () => {
    const dir = path.join(tmp, 'filled');
    const f = candles(
      'gap30.csv',
      rowsOf(
        240,
        Array.from({ length: 30 }, (_, i) => 100 + i),
      ),
    );
    const imp = await data(dir, 'import', f, '--symbol', 'BTCUSDT', '--fill', 'flat-previous-close');
    expect(imp.code, imp.err).toBe(0);
    expect(imp.out).toContain('FILLED 30 missing bars with synthetic ones (flat-previous-close)');
    // 240 bars stored, 30 of them synthetic: 210 / 240 = 87.5 % covered by market data.
    const list = await data(dir, 'list');
    expect(list.out).toMatch(/BTCUSDT\/1m .* 240\s+1\s+30\s+0 87\.500%/);
    expect(list.out).toContain('gap 2024-01-01T01:40:00Z .. 2024-01-01T02:10:00Z 30 bar(s) missing (filled');
    const r = await keelIn([...bt, '--timeframe', '1m', '--data-dir', dir]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('; 30 1m bars gap-filled at import (synthetic');
    const h = await keelIn([...bt, '--timeframe', '5m', '--data-dir', dir]);
    expect(h.out).toContain('; 6 5m bars gap-filled at import (synthetic');
  });

  it('import refuses conflicting duplicates as backtest --data does; --allow-bad-data stores the rest and the quarantine stays visible', async () => {
    const dir = path.join(tmp, 'dups');
    const rows = rowsOf(120);
    rows.splice(51, 0, [50, 100, 120, 90, 101]);
    const f = candles('dup.csv', rows);
    const rule = `duplicate-conflicting: 1 row, first at ${f} row 52 (line 53), field time`;
    const file = await keelIn([...bt, '--data', f]);
    expect(file.code).toBe(1);
    expect(file.err).toContain(rule);
    const refused = await data(dir, 'import', f, '--symbol', 'BTCUSDT');
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(rule);
    expect((await data(dir, 'list')).out).toContain('no data in');

    const kept = await data(dir, 'import', f, '--symbol', 'BTCUSDT', '--allow-bad-data');
    expect(kept.code, kept.err).toBe(0);
    expect(kept.out).toContain('QUARANTINED 1 of 121 rows');
    const list = await data(dir, 'list');
    expect(list.out).toMatch(/BTCUSDT\/1m .* 120\s+0\s+0\s+1 100\.000%/);
    expect(list.out).toContain('quarantined at import: duplicate-conflicting 1');
    const r = await keelIn([...bt, '--timeframe', '1m', '--data-dir', dir]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('1 rows quarantined at import (duplicate-conflicting 1');
  });

  it('a timeframe finer than every series holding the range is named as such', async () => {
    const dir = path.join(tmp, 'finer');
    const m = await data(dir, 'import', candles('m.csv', rowsOf(120)), '--symbol', 'BTCUSDT');
    const h = hourly('h.csv', Date.UTC(2023, 11, 1), 48);
    const hi = await data(dir, 'import', h, '--symbol', 'BTCUSDT', '--timeframe', '1h');
    expect([m.code, hi.code], m.err + hi.err).toEqual([0, 0]);
    const r = await keelIn([
      ...bt,
      '--timeframe',
      '15m',
      '--from',
      '2023-12-01',
      '--to',
      '2023-12-02',
      '--data-dir',
      dir,
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'holds BTC/USDT in 2023-12-01T00:00:00Z .. 2023-12-02T00:00:00Z only as 1h bars, coarser than the 15m asked: bars cannot be split',
    );
  });
});

describe('what the file, its name and the flags say about the data', () => {
  const bt = (...args: string[]) => keelIn(['backtest', '--strategy', 'sma-cross', '--no-save', ...args]);

  it('a futures file runs as a perpetual (with a note) as with --market futures; --market, --symbol and a file name that disagree are refused, naming them', async () => {
    const fut = candles('binance-futures-um_BTCUSDT_1m_t.csv', rowsOf(120));
    const spot = candles('binance_BTCUSDT_1m_t.csv', rowsOf(120));
    const named = await bt('--data', fut, '--json');
    const flagged = await bt('--data', fut, '--market', 'futures', '--json');
    expect(named.code, named.err).toBe(0);
    expect(named.err).toContain(`note: the file name ${fut} says USD-M futures: run as a perpetual`);
    expect(named.out).toBe(flagged.out);
    expect(JSON.parse(named.out).feeds[0].symbol).toBe('BTC/USDT:USDT');
    for (const [args, says] of [
      [['--data', spot, '--market', 'futures'], `--market futures, but the file name ${spot} says spot`],
      [['--data', fut, '--market', 'spot'], `--market spot, but the file name ${fut} says USD-M futures`],
      [
        ['--data', spot, '--symbol', 'BTC/USDT:USDT'],
        `--symbol BTC/USDT:USDT says USD-M futures but the file name ${spot} says spot`,
      ],
    ] as const) {
      const r = await bt(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toContain(says);
    }
  });

  it('a timeframe read from the spacing of the times is said: a 1m file with two rows in three missing runs as 3m bars, never unseen', async () => {
    const rows = rowsOf(360).filter(([m]) => m % 3 === 0);
    const named = candles('binance_BTCUSDT_1m_sparse.csv', rows);
    const r = await bt('--data', named);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`note: ${named}: the name says 1m but the bars are 3m apart; read as 3m`);
    const nameless = await bt('--data', candles('sparse.csv', rows), '--symbol', 'BTC/USDT');
    expect(nameless.code, nameless.err).toBe(0);
    expect(nameless.err).toMatch(/sparse\.csv: timeframe 3m read from the spacing of the times/);
  });

  it('rows that cannot be read are the error, before the timeframe they hide; an empty price names file, row and field', async () => {
    const f = path.join(tmp, 'day-first.csv');
    writeFileSync(
      f,
      'datetime,open,high,low,close,volume\n01/02/2024 00:00,1,2,0.5,1.5,10\n01/02/2024 00:01,1,2,0.5,1.5,10\n',
    );
    const r = await bt('--data', f, '--symbol', 'BTC/USDT');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`2 of 2 rows cannot be read (bad-timestamp 2); first at ${f} row 1 (line 2), field time`);
    expect(r.err).not.toContain('cannot tell the bar timeframe');
    const e = path.join(tmp, 'empty-close.csv');
    // Row 59 (line 60) with its close cell left empty, as pandas writes a NaN.
    const lines = readFileSync(candles('full.csv', rowsOf(60)), 'utf8').split('\n');
    const cells = (lines[59] as string).split(',');
    cells[4] = '';
    lines[59] = cells.join(',');
    writeFileSync(e, lines.join('\n'));
    const empty = await bt('--data', e, '--symbol', 'BTC/USDT');
    expect(empty.code).toBe(1);
    expect(empty.err).toContain(`empty-cell: 1 row, first at ${e} row 59 (line 60), field close: close is empty`);
  });

  it('a 100x print is run but shown as an outlier warning (the rule of keel data validate)', async () => {
    const rows = rowsOf(300);
    const [m, o, h, l, c] = rows[150] as [number, number, number, number, number];
    rows[150] = [m, o, h * 100, l, c * 100];
    const r = await bt('--data', candles('spike.csv', rows), '--symbol', 'BTC/USDT');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(
      /warning: BTC\/USDT: 2 return and 1 high-low range outliers \(robust z > 12, as keel data validate flags them; whole file\); the largest close-to-close move is down x100\.6 at 2024-01-01T02:31:00Z/,
    );
    const clean = await bt('--data', candles('calm.csv', rowsOf(300)), '--symbol', 'BTC/USDT');
    expect(clean.out).not.toContain('outliers');
  });

  it('--report names a folder (a .html path is refused), a --param given twice is refused, BTCUSDT is BTC/USDT', async () => {
    const f = candles('small.csv', rowsOf(120));
    const html = path.join(tmp, 'out', 'report.html');
    const r = await bt('--data', f, '--symbol', 'BTC/USDT', '--report', html);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`--report takes a folder`);
    expect(existsSync(html)).toBe(false);
    const twice = await bt('--data', f, '--symbol', 'BTC/USDT', '--param', 'fast=5', '--param', 'fast=7');
    expect(twice.code).not.toBe(0);
    expect(twice.err).toContain('--param fast is given twice (fast=5 and fast=7)');
    const binance = await bt('--data', f, '--symbol', 'BTCUSDT', '--json');
    const keel = await bt('--data', f, '--symbol', 'BTC/USDT', '--json');
    expect(binance.code, binance.err).toBe(0);
    expect(binance.out).toBe(keel.out);
  });
});
