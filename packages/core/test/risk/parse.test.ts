import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRiskConfig, type RiskConfig, riskConfigInput, riskConfigText } from '../../src/index.ts';

function ok(input: Parameters<typeof parseRiskConfig>[0]): RiskConfig {
  const p = parseRiskConfig(input);
  if (!p.ok) throw new Error(p.error.message);
  return p.config;
}

function issue(input: Parameters<typeof parseRiskConfig>[0]) {
  const p = parseRiskConfig(input);
  if (p.ok) throw new Error(`expected an error, got ${JSON.stringify(p.config)}`);
  return p.error;
}

describe('risk settings parser', () => {
  it('reads every example of the interface as written', () => {
    const c = ok({
      risk: [
        'max-drawdown=0.2',
        'daily-loss=0.03',
        'max-position=0.5',
        'max-open-orders=4',
        'order-rate=10/1m',
        'cooldown=30m',
        'stoploss-guard=3/6h:12h',
      ],
      sizing: ['risk=0.01'],
      exits: { 'stop-loss': '2%', 'take-profit': '3atr', trailing: '1%', roi: '0=0.05,60=0.02,180=0' },
    });
    // In the table's fixed order, each with its defaults spelled out.
    expect(c.rules).toEqual([
      { rule: 'max-position', limit: 0.5 },
      { rule: 'max-open-orders', limit: 4 },
      { rule: 'order-rate', limit: 10, windowMs: 60_000 },
      { rule: 'daily-loss', limit: 0.03, dayStartMs: 0, action: 'freeze', until: { kind: 'next-day' } },
      { rule: 'max-drawdown', limit: 0.2, action: 'flatten', until: { kind: 'resume' } },
      { rule: 'stoploss-guard', count: 3, windowMs: 6 * 3_600_000, lockMs: 12 * 3_600_000 },
      { rule: 'cooldown', lockMs: 30 * 60_000 },
    ]);
    expect(c.sizing).toEqual({ model: 'risk', fraction: 0.01 });
    expect(c.exits).toEqual({
      atrPeriod: 14,
      stopLoss: { kind: 'percent', value: 0.02 },
      takeProfit: { kind: 'atr', multiple: 3 },
      trailing: { kind: 'percent', value: 0.01 },
      roi: [
        { ageMs: 0, profit: 0.05 },
        { ageMs: 3_600_000, profit: 0.02 },
        { ageMs: 10_800_000, profit: 0 },
      ],
    });
    for (const s of [['percent=0.5'], ['notional=1000']]) expect(ok({ sizing: s }).sizing).toBeDefined();
  });

  it('a config file map gives the same configuration as the flags', () => {
    const flags = ok({
      risk: ['max-drawdown=20%:freeze:12h', 'symbols=ETH/USDT,BTC/USDT', 'low-profit=3/1d:12h:min=0.01'],
      sizing: ['kelly=0.5', 'cap=0.2'],
      exits: { 'time-exit': '4h', roi: '0=0.05,60=0.02' },
    });
    const file = ok({
      risk: { 'max-drawdown': '20%:freeze:12h', symbols: ['btc/usdt', 'ETH/USDT'], 'low-profit': '3/1d:12h:min=0.01' },
      sizing: { kelly: 0.5, cap: 0.2 },
      exits: { 'time-exit': '4h', roi: { 0: 0.05, 60: 0.02 } },
    });
    expect(file).toEqual(flags);
    expect(flags.rules[0]).toEqual({ rule: 'symbols', allowed: ['BTC/USDT', 'ETH/USDT'] });
    expect(flags.sizing).toEqual({ model: 'kelly', multiplier: 0.5, cap: 0.2, minTrades: 20, fallback: 0.05 });
  });

  it('an error names the key, the value and the form the key takes', () => {
    expect(issue({ risk: ['max-drawdown=1.2'] })).toMatchObject({
      key: 'max-drawdown',
      value: '1.2',
      rule: expect.stringContaining('<fraction> (0.2 or 20%) in (0, 1)'),
      message: expect.stringMatching(/^max-drawdown=1\.2: the drawdown must be in \(0, 1\), got 1\.2 \(expected/),
    });
    expect(issue({ risk: ['max-draw=0.2'] })).toMatchObject({
      key: 'max-draw',
      message: /unknown risk rule "max-draw"/,
    });
    expect(issue({ risk: ['order-rate=10'] }).message).toMatch(/order-rate=10: "10" is not <count>\/<duration>/);
    expect(issue({ risk: ['cooldown=30'] }).message).toMatch(/cooldown=30: the duration "30" is not a duration/);
    expect(issue({ risk: ['stoploss-guard=3/6h'] }).message).toMatch(/is not <count>\/<window>:<lock>/);
    expect(issue({ risk: ['max-drawdown=0.2:flatten:freeze'] }).message).toMatch(/the action is given twice/);
    expect(issue({ risk: ['max-drawdown=0.2:next-day'] }).message).toMatch(/neither freeze, flatten, resume nor/);
    expect(issue({ risk: ['max-open-orders=2.5'] }).message).toMatch(/integer >= 1/);
    expect(issue({ risk: ['max-position=0.5', 'max-position=0.4'] }).message).toMatch(/given twice/);
    expect(issue({ risk: ['max-drawdown'] }).message).toMatch(/expected key=value/);
    expect(issue({ risk: ['symbols=BTCUSDT'] }).message).toMatch(/"BTCUSDT" is not a market like BTC\/USDT/);
    expect(issue({ sizing: ['percent=0.5', 'notional=100'] })).toMatchObject({ message: /one model only/ });
    expect(issue({ sizing: ['percent=0.5', 'cap=0.2'] })).toMatchObject({
      key: 'cap',
      message: /"cap" does not apply to percent/,
    });
    expect(issue({ sizing: ['risk=0.01'] })).toMatchObject({ key: 'risk', message: /give a stop-loss/ });
    expect(issue({ exits: { 'stop-loss': '150' } })).toMatchObject({
      key: 'stop-loss',
      message: /the distance must be in \(0, 1\), got 150/,
    });
    expect(issue({ exits: { trailing: '@100' } }).message).toMatch(/a price level is not allowed here/);
    expect(issue({ exits: { roi: '0=0.05,0=0.02' } }).message).toMatch(/given twice/);
    expect(issue({ exits: { 'stop-los': '2%' } })).toMatchObject({ key: 'stop-los', message: /unknown exit/ });
  });

  it('sides=both and an empty input are no rule at all', () => {
    expect(ok({ risk: ['sides=both'] })).toEqual({ rules: [] });
    expect(ok({})).toEqual({ rules: [] });
  });

  it('a configuration written back in the grammar parses to itself', () => {
    const rule = fc.constantFrom(
      'max-position=0.5',
      'max-position-size=2.5',
      'max-notional=5000',
      'max-gross=20000',
      'max-net=10000',
      'max-leverage=3',
      'max-open-orders=4',
      'max-open-trades=2',
      'order-rate=10/1m',
      'cash-reserve=10%',
      'min-cash=500',
      'symbols=BTC/USDT,ETH/USDT',
      'sides=long',
      'daily-loss=0.03:start=8h:flatten:next-day',
      'max-drawdown=0.2:freeze:36h',
      'stoploss-guard=3/6h:12h',
      'cooldown=90s',
      'low-profit=3/1d:12h:min=-0.5%',
      'max-losses=5:flatten',
    );
    const sizing = fc.constantFrom(
      [],
      ['quantity=0.01'],
      ['notional=1000'],
      ['percent=50%'],
      ['volatility=0.4', 'lookback=20'],
      ['kelly=0.5', 'fallback=0'],
    );
    const exits = fc.record(
      {
        'stop-loss': fc.constantFrom('2%', '1.5atr', '@41000'),
        'take-profit': fc.constantFrom('0.05', '3atr', '@52000'),
        trailing: fc.constantFrom('1%', '2atr'),
        'break-even': fc.constantFrom('1%', '2%:0.1%'),
        'time-exit': fc.constantFrom('4h', '90m'),
        roi: fc.constantFrom('0=0.05,60=0.02,180=0', '30=0.01'),
        'atr-period': fc.constantFrom('14', '20'),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.uniqueArray(rule, { selector: (r) => r.split('=')[0] }), sizing, exits, (risk, z, x) => {
        const c = ok({ risk, sizing: z, exits: x });
        expect(ok(riskConfigInput(c))).toEqual(c);
        expect(riskConfigText(c).length).toBeGreaterThanOrEqual(c.rules.length);
      }),
    );
  });
});
