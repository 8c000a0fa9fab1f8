import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { keelIn } from './in-process.ts';

/** Inputs that once gave a wrong result without a word: each is now an error or a visible line. */

const tmp = mkdtempSync(path.join(tmpdir(), 'keel-btguard-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const BTC_1H = dataFile('binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz');
const BTC_1D = dataFile('binance_BTCUSDT_1d_2017-08-17_2026-01-05.csv.gz');
const SPAN = ['--from', '2024-01-01', '--to', '2024-04-01'];
const SMA_CROSS_1H = ['backtest', '--strategy', 'sma-cross', '--data', BTC_1H];

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** 1m bars from 2024-11-30 23:00 UTC, their time column written as `time(openMs)`. */
function file(name: string, header: string, time: (openMs: number, i: number) => string, n = 120): string {
  const t0 = Date.UTC(2024, 10, 30, 23);
  let text = `${header}\n`;
  for (let i = 0; i < n; i++) {
    const p = 100 + 5 * Math.sin(i / 7);
    text += `${time(t0 + i * 60_000, i)},${p},${p + 1},${p - 1},${p + 0.5},10\n`;
  }
  const f = path.join(tmp, name);
  writeFileSync(f, text);
  return f;
}

/** A bar's close time as a foreign exchange writes it: open + 59.999 s, in UTC+01:00, microseconds. */
function closePlusOne(openMs: number): string {
  const d = new Date(openMs + 59_999 + 3_600_000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}000+01:00`;
}

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

describe('keel backtest: no silent wrong results', () => {
  it.skipIf(!HAS_SHARED_DATA)(
    "--timeframe finer than the data is an error; coarser resamples, says so, and equals Binance's own 1d candles",
    async () => {
      const finer = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1H, '--timeframe', '1m']);
      expect(finer.code).toBe(1);
      expect(finer.err).toMatch(/the data is 1h bars, --timeframe 1m is finer: bars cannot be split/);
      const span = ['--from', '2023-01-01', '--to', '2025-01-01'];
      const daily = await keelIn([
        'backtest',
        '--strategy',
        'sma-cross',
        '--data',
        BTC_1H,
        '--timeframe',
        '1d',
        ...span,
        '--json',
      ]);
      expect(daily.code, daily.err).toBe(0);
      expect(daily.err).toMatch(/1h bars resampled to 1d/);
      const table = await keelIn([
        'backtest',
        '--strategy',
        'sma-cross',
        '--data',
        BTC_1H,
        '--timeframe',
        '1d',
        ...span,
      ]);
      expect(table.out, 'the summary says so too').toMatch(/BTC\/USDT: .*, 1h bars resampled to 1d, /);
      const own = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1D, ...span, '--json']);
      const a = JSON.parse(daily.out);
      const b = JSON.parse(own.out);
      expect(a.feeds[0].timeframe).toBe('1d');
      expect(a.feeds[0].bars).toBe(b.feeds[0].bars);
      expect(a.trades.length).toBeGreaterThan(3);
      expect(a.trades).toEqual(b.trades);
    },
  );

  it('a fee rate outside [0, 1), a participation of 0 and a cash of 0 are usage errors', async () => {
    const f = file('plain.csv', 'timestamp,open,high,low,close,volume', (t) => String(t));
    const base = ['backtest', '--strategy', 'sma-cross', '--data', f, '--symbol', 'BTC/USDT'];
    for (const [flag, v] of [
      ['--fee', '2'],
      ['--fee', '1'],
      ['--fee', '-0.001'],
      ['--maker-fee', '1.5'],
    ] as const) {
      const r = await keelIn([...base, `${flag}=${v}`]);
      expect(r.code, `${flag} ${v}`).toBe(2);
      expect(r.err).toMatch(new RegExp(`${flag} is a rate per side in \\[0, 1\\)`));
    }
    const part = await keelIn([...base, '--participation=0']);
    expect(part.code, 'a participation of 0 would let no order fill').toBe(2);
    expect(part.err).toMatch(/--participation is a fraction in \(0, 1\]/);
    const cash = await keelIn([...base, '--cash', '0']);
    expect(cash.code).toBe(2);
    expect(cash.err).toMatch(/--cash must be a number > 0, got "0"/);
    expect((await keelIn([...base, '--fee', '0.5'])).code, 'a fee of 50 % is odd but possible').toBe(0);
  });

  it('a slippage of 100 % or more, and a direction that sells short on spot, are usage errors', async () => {
    const f = file('plain.csv', 'timestamp,open,high,low,close,volume', (t) => String(t));
    const base = ['backtest', '--strategy', 'sma-cross', '--data', f, '--symbol', 'BTC/USDT', '--no-save'];
    for (const v of ['20000', '10000']) {
      const r = await keelIn([...base, '--slippage-bps', v]);
      expect(r.code, `--slippage-bps ${v}: a sell at a price of 0 or below`).toBe(2);
      expect(r.err).toMatch(/--slippage-bps is in basis points, from 0 to below 10000/);
    }
    expect((await keelIn([...base, '--slippage-bps', '9999'])).code).toBe(0);
    for (const d of ['both', 'short']) {
      const r = await keelIn([...base, '--param', `direction=${d}`]);
      expect(r.code, `direction=${d} on spot: every short entry would be rejected`).toBe(2);
      expect(r.err).toContain(
        `direction=${d} sells short, which a spot market cannot: short selling needs a perpetual (--market futures)`,
      );
    }
  });

  it.skipIf(!HAS_SHARED_DATA)('orders the venue refused are shown in the summary, counted by reason', async () => {
    // 5 BTC an entry (~200,000 USDT) on 10,000 cash: the venue rejects every one.
    const r = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      BTC_1H,
      ...SPAN,
      '--sizing',
      'quantity=5',
    ]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/Trades +0/);
    const m =
      /refused orders: (\d+) \(denied 0, rejected by the venue (\d+), cancelled by the venue at the fill 0\)\n {2}(\d+) x insufficient USDT\n/.exec(
        r.out,
      );
    expect(m, r.out).not.toBeNull();
    expect(Number(m?.[1])).toBeGreaterThan(5);
    expect(m?.[2]).toBe(m?.[1]);
    expect(m?.[3]).toBe(m?.[1]);
    expect(r.out).toMatch(/ {6}first: insufficient USDT: the order needs/);
  });

  it.skipIf(!HAS_SHARED_DATA)(
    'orders the venue cancels at the fill (no cash at the slipped price) are shown too, and no win rate',
    async () => {
      // 99.8 % of the cash, 30 bps of slippage and a 0.1 % fee cost more than the cash at the fill:
      // every entry passes on arrival (at the decision price) and is cancelled at the fill.
      const args = [...SMA_CROSS_1H, ...SPAN, '--param', 'allocation=0.998'];
      const r = await keelIn([...args, '--slippage-bps', '30', '--no-save']);
      expect(r.code, r.err).toBe(0);
      // Oracle: the run's own order list (--json): every order cancelled, with the venue's reason.
      const j = JSON.parse((await keelIn([...args, '--slippage-bps', '30', '--no-save', '--json'])).out);
      const n = j.orders.length;
      expect(n).toBeGreaterThan(5);
      expect(
        j.orders.every(
          (o: { status: string; reason: string }) =>
            o.status === 'cancelled' && /^insufficient USDT at fill: /.test(o.reason),
        ),
      ).toBe(true);
      expect(r.out).toContain(
        `refused orders: ${n} (denied 0, rejected by the venue 0, cancelled by the venue at the fill ${n})\n  ${n} x insufficient USDT at fill\n      first: insufficient USDT at fill: `,
      );
      // No trade: nothing to take a rate or a ratio of.
      expect(r.out).toMatch(/Win rate +n\/a/);
      expect(r.out).toMatch(/Profit factor +n\/a/);
      expect(j.metrics.tradeCount).toBe(0);
      expect(j.metrics.winRate).toBeNull();
      expect(j.metrics.profitFactor).toBeNull();
    },
  );

  it.skipIf(!HAS_SHARED_DATA)(
    'a warm-up longer than the data: a note says onBar never ran, with both lengths',
    async () => {
      const r = await keelIn([...SMA_CROSS_1H, ...SPAN, '--param', 'slow=3000', '--no-save']);
      expect(r.code, r.err).toBe(0);
      // Oracle: SMA(3000) is defined from its 3,000th bar (TA-Lib's lookback 2,999); the span holds
      // 91 days of 1h bars less the one missing: 2,184 (as the header says).
      expect(r.out).toMatch(/\(91d, 2,184 bars\)/);
      expect(r.out).toContain(
        "note: onBar never ran on BTC/USDT 1h: the strategy's warm-up needs 3,000 bars (its indicators' longest lookback + 1), the data has 2,184",
      );
    },
  );

  it.skipIf(!HAS_SHARED_DATA)(
    'a --from after the data ends, a --to before it starts: errors naming the span',
    async () => {
      const late = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1H, '--from', '2026-06-01']);
      expect(late.code).toBe(1);
      expect(late.err).toMatch(
        /--from 2026-06-01T00:00:00Z is after the data ends: BTC\/USDT bars run from 2022-01-01T00:00:00Z to 2025-12-02T06:00:00Z/,
      );
      const early = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1H, '--to', '2020-01-01']);
      expect(early.code).toBe(1);
      expect(early.err).toMatch(/--to 2020-01-01T00:00:00Z is before the data starts/);
    },
  );

  it.skipIf(!HAS_SHARED_DATA)(
    'a range the data covers only in part runs on what there is and says which part has no bars',
    async () => {
      const r = await keelIn([
        'backtest',
        '--strategy',
        'sma-cross',
        '--data',
        BTC_1H,
        '--from',
        '2021-12-31',
        '--to',
        '2025-12-03T06:00:00Z',
        '--no-save',
      ]);
      expect(r.code, r.err).toBe(0);
      // 2021-12-31 00:00 to the first bar at 2022-01-01 00:00: 24 hourly bars; the last bar closes 2025-12-02 06:00.
      expect(r.err).toContain(
        'note: BTC/USDT: --from 2021-12-31T00:00:00Z is before the data starts (2022-01-01T00:00:00Z): the run starts there, 24 1h bars short of the range asked',
      );
      expect(r.err).toContain(
        'note: BTC/USDT: --to 2025-12-03T06:00:00Z is after the data ends (2025-12-02T06:00:00Z): the run ends there, 24 1h bars short of the range asked',
      );
      // Less than a bar short is no shortfall.
      const inside = await keelIn([
        'backtest',
        '--strategy',
        'sma-cross',
        '--data',
        BTC_1H,
        '--from',
        '2021-12-31T23:30:00Z',
        '--no-save',
      ]);
      expect(inside.code, inside.err).toBe(0);
      expect(inside.err).not.toContain('short of the range asked');
    },
  );

  it('a time column of close times (59.999 s after the grid, in another zone) is read as close times, or refused; never as open times', async () => {
    const f = file('close-times.csv', 'datetime,open,high,low,close,volume', closePlusOne);
    const auto = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', f, '--symbol', 'BTC/USDT', '--json']);
    expect(auto.code, auto.err).toBe(0);
    expect(auto.err).toMatch(/column "datetime" holds bar close times .* converted to bar open times/);
    expect(JSON.parse(auto.out).feeds[0].firstIso).toBe(iso(Date.UTC(2024, 10, 30, 23)));
    const said = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      f,
      '--symbol',
      'BTC/USDT',
      '--time-is',
      'close',
      '--json',
    ]);
    expect(said.code, said.err).toBe(0);
    expect(said.out).toBe(auto.out);
    const wrong = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      f,
      '--symbol',
      'BTC/USDT',
      '--time-is',
      'open',
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/was given as bar open times, but 120 of 120 times sit just before the 1m grid/);
    // A few close times among open times: refused by the gate, the row named.
    const mixed = file('mixed.csv', 'timestamp,open,high,low,close,volume', (t, i) =>
      i === 7 ? String(t + 59_999) : String(t),
    );
    const m = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', mixed, '--symbol', 'BTC/USDT']);
    expect(m.code).toBe(1);
    expect(m.err).toMatch(
      /misaligned-timestamp: 1 row, first at .*mixed\.csv row 8 \(line 9\), field time: .* as a bar's close time does/,
    );
  });

  it('--map names the columns of a file in an odd layout, as for keel data validate', async () => {
    const f = file('odd.csv', 'close_datetime,o,h,l,c,v', closePlusOne);
    const mapped = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      f,
      '--symbol',
      'BTC/USDT',
      '--map',
      'time=close_datetime,open=o,high=h,low=l,close=c,volume=v',
      '--time-is',
      'close',
      '--json',
    ]);
    expect(mapped.code, mapped.err).toBe(0);
    const j = JSON.parse(mapped.out);
    expect(j.feeds[0].firstIso).toBe(iso(Date.UTC(2024, 10, 30, 23)));
    expect(j.feeds[0].bars).toBe(120);
    const bad = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      f,
      '--symbol',
      'BTC/USDT',
      '--map',
      'when=x',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--map: unknown field "when"/);
  });
});
