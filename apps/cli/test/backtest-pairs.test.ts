import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { keelIn } from './in-process.ts';

const BTC = dataFile('binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz');
const ETH = dataFile('binance_ETHUSDT_1h_2022-01-01_2025-12-02.csv.gz');
const SPAN = ['--from', '2024-01-01', '--to', '2024-07-01'];

describe.skipIf(!HAS_SHARED_DATA)('keel backtest over several markets (real BTC and ETH 1h)', () => {
  it('one portfolio: --json has a pairs member whose per-market numbers add up to the run', async () => {
    const r = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC, '--data', ETH, ...SPAN, '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.feeds.map((f: { symbol: string }) => f.symbol)).toEqual(['BTC/USDT', 'ETH/USDT']);
    expect(j.pairs.map((p: { symbol: string }) => p.symbol)).toEqual(['BTC/USDT', 'ETH/USDT']);
    const trades = j.trades as { symbol: string; pnlNet: number }[];
    for (const p of j.pairs) {
      const own = trades.filter((t) => t.symbol === p.symbol);
      expect(own.length, p.symbol).toBeGreaterThan(5);
      expect(p.tradeCount).toBe(own.length);
      expect(p.pnlNet).toBeCloseTo(
        own.reduce((a, t) => a + t.pnlNet, 0),
        6,
      );
    }
    expect(j.pairs[0].tradeCount + j.pairs[1].tradeCount).toBe(j.metrics.tradeCount);
  });

  it('the table has a row per market and a total; --max-open-trades 1 denies and the table counts it', async () => {
    const r = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      BTC,
      '--data',
      ETH,
      '--symbol',
      'BTC/USDT,ETH/USDT',
      ...SPAN,
      '--max-open-trades',
      '1',
    ]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/sma-cross on 2 pairs 1h/);
    expect(r.out).toMatch(/^ {2}BTC\/USDT +4,368 /m);
    expect(r.out).toMatch(/^ {2}ETH\/USDT +4,368 /m);
    expect(r.out).toMatch(/^ {2}total +8,736 /m);
    expect(r.out).toMatch(/max-open-trades=1/);
    const denied = /^ {2}total .* (\d+)$/m.exec(r.out);
    expect(Number(denied?.[1])).toBeGreaterThan(0);
  });

  it('a --symbol list that does not match the --data files is a usage error', async () => {
    const r = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      BTC,
      '--data',
      ETH,
      '--symbol',
      'BTC/USDT',
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--symbol lists 1 market for 2 --data files/);
    const same = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC, '--data', BTC]);
    expect(same.code).toBe(1);
    expect(same.err).toMatch(/two --data files are both BTC\/USDT/);
  });

  it('a --symbol the file name contradicts is refused, naming the file and both markets (ETH bars never run as BTC)', async () => {
    const swapped = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      BTC,
      '--data',
      ETH,
      '--symbol',
      'ETH/USDT,BTC/USDT',
      ...SPAN,
    ]);
    expect(swapped.code).toBe(1);
    expect(swapped.err).toContain(`${BTC}: the file's name says BTC/USDT, not ETH/USDT`);
    expect(swapped.out).toBe('');
    const one = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', ETH, '--symbol', 'BTC/USDT', ...SPAN]);
    expect(one.code).toBe(1);
    expect(one.err).toMatch(/the file's name says ETH\/USDT, not BTC\/USDT/);
    // The name's own market, however written, is accepted.
    const same = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', ETH, '--symbol', 'eth/usdt', ...SPAN]);
    expect(same.code, same.err).toBe(0);
  });
});
