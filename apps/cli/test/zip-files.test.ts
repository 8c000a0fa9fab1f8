// Binance's own archive (data.binance.vision) serves candles as .zip files holding one headerless
// klines CSV: `keel backtest --data` and `keel data import` read them as they are. Oracle: the same
// real candles written as a plain CSV give the same run and the same stored rows.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { keelIn } from './in-process.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'keel-zip-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The first 600 real BTCUSDT 1m candles as Binance's archive lays them out: 12 columns, no header, ms times. */
function klines(): string {
  const rows = gunzipSync(readFileSync(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')))
    .toString('utf8')
    .split('\n')
    .slice(1, 601);
  return rows
    .map((r) => {
      const [t, o, h, l, c, v] = r.split(',');
      const open = Date.parse(`${t}Z`);
      return [open, o, h, l, c, v, open + 59_999, 0, 0, 0, 0, 0].join(',');
    })
    .join('\n');
}

describe.skipIf(!HAS_SHARED_DATA)('a .zip from data.binance.vision', () => {
  it('backtests and imports as the same candles in a plain CSV', async () => {
    const text = klines();
    const csv = path.join(tmp, 'BTCUSDT-1m-2024-01.csv');
    writeFileSync(csv, `${text}\n`);
    const zip = path.join(tmp, 'BTCUSDT-1m-2024-01.zip');
    writeFileSync(zip, zipSync({ 'BTCUSDT-1m-2024-01.csv': new TextEncoder().encode(`${text}\n`) }));
    const run = (file: string) =>
      keelIn(['backtest', '--strategy', 'sma-cross', '--data', file, '--symbol', 'BTC/USDT', '--json', '--no-save']);
    const fromZip = await run(zip);
    const fromCsv = await run(csv);
    expect(fromZip.code, fromZip.err).toBe(0);
    expect(fromCsv.code, fromCsv.err).toBe(0);
    const a = JSON.parse(fromZip.out) as { metrics: unknown; trades: unknown[]; feeds: { bars: number }[] };
    expect(a.feeds[0]?.bars).toBe(600);
    expect(a.trades.length).toBeGreaterThan(3);
    expect(fromZip.out).toBe(fromCsv.out);

    const dir = path.join(tmp, 'store');
    const imported = await keelIn(['data', 'import', zip, '--symbol', 'BTCUSDT', '--data-dir', dir]);
    expect(imported.code, imported.err).toBe(0);
    const list = await keelIn(['data', 'list', '--data-dir', dir, '--json']);
    expect(JSON.stringify(JSON.parse(list.out))).toContain('"rows":600');
  });

  it('an archive without one CSV is refused naming the file and what it holds', async () => {
    const none = path.join(tmp, 'notes.zip');
    writeFileSync(none, zipSync({ 'readme.txt': new TextEncoder().encode('no candles') }));
    const r = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', none, '--symbol', 'BTC/USDT']);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${none}: the zip archive holds no .csv file (it holds: readme.txt)`);
    const torn = path.join(tmp, 'torn.zip');
    writeFileSync(torn, readFileSync(path.join(tmp, 'BTCUSDT-1m-2024-01.zip')).subarray(0, 200));
    const t = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', torn, '--symbol', 'BTC/USDT']);
    expect(t.code).toBe(1);
    expect(t.err).toContain(`${torn}: looks like a zip archive but could not be read`);
  });
});
