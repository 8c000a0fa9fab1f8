import { describe, expect, it } from 'vitest';
import { defineInstrument, parseSymbol, parseSymbolList, symbolProblem } from '../src/index.ts';

// Invariants of the one rule for what a market symbol is (backtest, paper, live, keel.yaml).
describe('a market symbol is one market', () => {
  it('a list with a comma is never one instrument (it once became BTC/"USDT,ETH")', () => {
    expect(() => defineInstrument({ symbol: 'BTC/USDT,ETH/USDT' })).toThrow(
      'Invalid symbol: "BTC/USDT,ETH/USDT" is a list of markets, not one market',
    );
    for (const bad of ['BTC/USDT,', 'BTC', 'BTC/', '/USDT', 'BTC/USDT/X', 'BTC USDT', 'BTC/USDT:', ' BTC/USDT'])
      expect(() => defineInstrument({ symbol: bad }), bad).toThrow(/Invalid symbol/);
    expect(defineInstrument({ symbol: 'LINK/USDT:USDT' })).toMatchObject({
      base: 'LINK',
      quote: 'USDT',
      kind: 'perpetual',
    });
    expect(symbolProblem('1000SHIB/USDT')).toBeUndefined();
  });

  it('a list is read entry by entry, each named when it is not a market', () => {
    expect(parseSymbolList(' btc/usdt , ETH/USDT')).toEqual(['BTC/USDT', 'ETH/USDT']);
    expect(() => parseSymbolList('')).toThrow('no market given');
    expect(() => parseSymbolList('BTC/USDT,,ETH/USDT')).toThrow('entry 2 is empty');
    expect(() => parseSymbolList('BTC/USDT,ETHXYZ')).toThrow('"ETHXYZ" is not a market');
    expect(() => parseSymbolList('BTC/USDT,btc/usdt')).toThrow('BTC/USDT is listed twice');
  });

  it("Binance's BTCUSDT is BTC/USDT when a known quote asset ends it (as keel data import reads it), else refused", () => {
    expect(parseSymbolList('BTCUSDT,ethbtc,BTCFDUSD,BTCTUSD')).toEqual([
      'BTC/USDT',
      'ETH/BTC',
      'BTC/FDUSD',
      'BTC/TUSD',
    ]);
    expect(parseSymbol('1000SHIBUSDT')).toBe('1000SHIB/USDT');
    expect(() => parseSymbolList('BTCUSDT,BTC/USDT')).toThrow('BTC/USDT is listed twice');
    for (const bad of ['USDT', 'BTCXYZ', 'BTC-USDT'])
      expect(() => parseSymbol(bad), bad).toThrow(`"${bad}" is not a market`);
    // Keel's own form stays the only one an instrument takes.
    expect(() => defineInstrument({ symbol: 'BTCUSDT' })).toThrow(/Invalid symbol/);
  });
});
