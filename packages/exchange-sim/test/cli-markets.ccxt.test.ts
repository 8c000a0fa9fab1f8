import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import * as ccxt from 'ccxt';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test-support/shared.ts';
import { ccxtConfigFor, type ExchangeSim, runExchangeSimCli } from '../src/index.ts';

const KEY = { apiKey: 'k-markets', secret: 's-markets' };
const STAIRS = path.join(REPO_ROOT, 'fixtures/exchange-sim/stairs_1m.csv');

// `keel exchange-sim` serves one market per --data file, in --symbol's order, so a multi-market
// bot (`keel live --symbol BTC/USDT,ETH/USDT`) can be pointed at it from the command line.
describe('keel exchange-sim with several --data files (real ccxt)', () => {
  it("serves each market from its own file: each one's candles are its file's", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keel-sim-markets-'));
    const eth = path.join(dir, 'eth.csv');
    // Three hand-made ETH bars, unlike the stairs' BTC ones.
    writeFileSync(
      eth,
      'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,2000,2010,1990,2005,5\n2024-01-01 00:01:00,2005,2020,2000,2015,6\n2024-01-01 00:02:00,2015,2016,1999,2001,7\n',
    );
    const stop = new AbortController();
    let started: (s: ExchangeSim) => void = () => {};
    const listening = new Promise<ExchangeSim>((resolve) => (started = resolve));
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => void (text += d.toString()));
    const running = runExchangeSimCli(
      [
        ...['--data', STAIRS, '--data', eth, '--symbol', 'BTC/USDT,ETH/USDT', '--port', '0', '--speed', '0'],
        ...['--start', '2024-01-01T00:03:00Z', '--api-key', KEY.apiKey, '--secret', KEY.secret],
      ],
      { out, signal: stop.signal, onStarted: (s) => started(s) },
    );
    const sim = await listening;
    const ex = new ccxt.binance(ccxtConfigFor(sim, KEY));
    try {
      expect(text).toContain(`market BTC/USDT from ${STAIRS}`);
      expect(text).toContain(`market ETH/USDT from ${eth}`);
      const markets = await ex.loadMarkets();
      expect(Object.keys(markets).sort()).toEqual(['BTC/USDT', 'ETH/USDT']);
      const ethBars = await ex.fetchOHLCV('ETH/USDT', '1m', Date.UTC(2024, 0, 1), 3);
      expect(ethBars.map((b) => b[4])).toEqual([2005, 2015, 2001]);
      const btcBars = await ex.fetchOHLCV('BTC/USDT', '1m', Date.UTC(2024, 0, 1), 2);
      expect(btcBars.map((b) => b[4])).toEqual([98.5, 99.5]);
    } finally {
      await ex.close();
      stop.abort();
      await running;
    }
  });

  it('a --symbol list that does not match the --data files is refused, naming both counts', async () => {
    await expect(runExchangeSimCli(['--data', STAIRS, '--data', STAIRS, '--port', '0'])).rejects.toThrow(
      '--symbol lists 1 market for 2 --data files: give one market per file, in the same order',
    );
    await expect(runExchangeSimCli(['--data', STAIRS, '--symbol', 'BTC/USDT,BTCUSDT', '--port', '0'])).rejects.toThrow(
      /--symbol: /,
    );
  });

  it("a --data file whose name says another market is refused; without --symbol the name's market is served", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keel-sim-names-'));
    const eth = path.join(dir, 'binance_ETHUSDT_1m_2024-01.csv');
    writeFileSync(eth, 'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,2000,2010,1990,2005,5\n');
    await expect(runExchangeSimCli(['--data', eth, '--symbol', 'BTC/USDT', '--port', '0'])).rejects.toThrow(
      `--data ${eth}: the file's name says ETH/USDT, not BTC/USDT`,
    );
    const btc = path.join(dir, 'BTCUSDT-1m-2024-01.csv');
    writeFileSync(btc, 'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,42000,42010,41990,42005,5\n');
    await expect(runExchangeSimCli(['--data', eth, '--port', '0', '--bnb-fees', '--bnb-data', btc])).rejects.toThrow(
      `--bnb-data ${btc}: the file's name says BTC/USDT, not BNB/USDT`,
    );
    const stop = new AbortController();
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => void (text += d.toString()));
    let started: () => void = () => {};
    const listening = new Promise<void>((resolve) => (started = resolve));
    const running = runExchangeSimCli(['--data', eth, '--port', '0', '--speed', '0'], {
      out,
      signal: stop.signal,
      onStarted: () => started(),
    });
    await listening;
    stop.abort();
    await running;
    expect(text).toContain(`market ETH/USDT from ${eth}`);
  });
});
