// The gateway's default request budget follows the market its ccxt client trades: for Binance
// USDⓈ-M (`binanceusdm`) 2,400 request weight a minute, not spot's 6,000. Real ccxt binanceusdm
// against the futures simulator over loopback; the simulator enforces Binance's USD-M limit per
// minute of its wall clock (429 over it), which is the gateway's clock here. Oracle: the limit the
// simulator publishes in its exchangeInfo, as Binance does.
import { ccxtConfigFor, startExchangeSim } from '@keel/exchange-sim';
import { describe, expect, it } from 'vitest';
import {
  BINANCE_USDM_WEIGHTS,
  binanceUsdmLimits,
  createCcxtClient,
  ExchangeGateway,
  type GatewayEvent,
  KeelExchangeError,
  ManualTimer,
} from '../src/index.ts';
import { closeAfterEach, eventually, KEY, stairBars, T0 } from './sim-harness.ts';

const closers = closeAfterEach();

describe('gateway budget on Binance USDⓈ-M (binanceusdm against the futures simulator)', () => {
  it('a minute of weighted reads stays within the 2,400 weight the exchange publishes: no 429', async () => {
    const timer = new ManualTimer(T0 + 3_600_000);
    const sim = await startExchangeSim({
      market: 'futures',
      wallClock: () => timer.now(),
      markets: [{ symbol: 'BTC/USDT', bars: stairBars(), stepSize: 0.001, minNotional: 1 }],
      accounts: [{ ...KEY, balances: { USDT: 10_000 } }],
      startTime: T0 + 10 * 60_000,
    });
    closers.push(() => sim.close());
    const client = createCcxtClient('binanceusdm', ccxtConfigFor(sim, undefined, { timeout: 2_000 }));
    closers.push(() => client.close());
    const events: GatewayEvent[] = [];
    // Default limits and weights: the point of the test.
    const gw = new ExchangeGateway(client, {
      timer,
      retry: { maxAttempts: 1 },
      onEvent: (e) => events.push(e),
    });
    const raw = client as unknown as Record<string, (p: object) => Promise<unknown>>;
    const info = (await raw.fapiPublicGetExchangeInfo!({})) as {
      rateLimits: { rateLimitType: string; interval: string; limit: number }[];
    };
    const published = info.rateLimits.find((r) => r.rateLimitType === 'REQUEST_WEIGHT' && r.interval === 'MINUTE');
    expect(published?.limit).toBe(2400);
    await gw.loadMarkets();
    // aggTrades weighs 20 on Binance USD-M (and on the simulator): more than a minute's budget asked at once.
    let sent = 0;
    let answered = 0;
    const failures: unknown[] = [];
    const calls = Array.from({ length: 150 }, () =>
      gw
        .call(
          'market-data',
          'fapiPublicGetAggTrades',
          () => {
            sent++;
            return raw.fapiPublicGetAggTrades!({ symbol: 'BTCUSDT', limit: 1 });
          },
          { weight: 20 },
        )
        .then(
          () => answered++,
          (e: unknown) => {
            answered++;
            failures.push(e);
          },
        ),
    );
    // The simulator's weight window is the wall-clock minute the test started in (+1 weight of exchangeInfo
    // and the loadMarkets read).
    const windowEnd = Math.floor(timer.now() / 60_000) * 60_000 + 60_000;
    while (timer.now() + 1_000 < windowEnd) {
      await eventually(() => answered === sent, 5_000, 'the requests let through to be answered');
      await timer.advance(1_000);
    }
    await eventually(() => answered === sent, 5_000, 'the requests let through to be answered');
    expect(failures.map((e) => (e instanceof KeelExchangeError ? `${e.kind}: ${e.message}` : String(e)))).toEqual([]);
    expect(events.filter((e) => e.type === 'retry')).toEqual([]);
    // Within the minute: the gateway let through what its USD-M budget holds, well under 2,400.
    expect(sent * 20).toBeLessThanOrEqual(2400);
    const b = binanceUsdmLimits()['market-data'];
    expect(sent).toBeGreaterThan(b.capacity / 20);
    expect(BINANCE_USDM_WEIGHTS.loadMarkets).toBe(1);
    // The rest are answered in the next minutes, still without a 429.
    while (answered < calls.length) {
      await timer.advance(1_000);
      await eventually(() => answered === sent, 5_000, 'the requests let through to be answered');
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it('the budget follows the client: binanceusdm gets USD-M’s, binance spot’s', () => {
    const usdm = new ExchangeGateway(createCcxtClient('binanceusdm'), { timer: new ManualTimer(0) });
    const spot = new ExchangeGateway(createCcxtClient('binance'), { timer: new ManualTimer(0) });
    // Burst capacity of each class: USD-M 2,400 / 60 x 0.8 x 5 = 160, spot 6,000 / 60 x 0.8 x 5 = 400.
    expect(usdm.limiter.available('queries')).toBe(160);
    expect(usdm.limiter.available('market-data')).toBe(160);
    expect(usdm.limiter.available('orders')).toBe(120);
    expect(spot.limiter.available('queries')).toBe(400);
    expect(spot.limiter.available('orders')).toBe(80);
  });
});
