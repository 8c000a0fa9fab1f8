import ccxt from 'ccxt';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import {
  type CcxtExtraConfig,
  ccxtConfigFor,
  type ExchangeSim,
  type ExchangeSimOptions,
  readBarsFile,
  type SimBar,
  type SimMarketOptions,
  startExchangeSim,
} from '../src/index.ts';

export { HAS_SHARED_DATA, noteSkip };

/** Binance's LINKUSDT USD-M 1m candles of 2023-02 and the same month's funding archive (../shared/data). */
export const LINK_FILE = dataFile('binance-futures-um_LINKUSDT_1m_2023-02.csv.gz');
export const LINK_FUNDING = dataFile('binance-futures-um_LINKUSDT_fundingRate_2023-02.csv.gz');
export const LINK = 'LINK/USDT:USDT';
export const MIN = 60_000;
export const TICK = 0.001;
export const KEY = { apiKey: 'futkey1', secret: 'futsecret1' };
export const KEY2 = { apiKey: 'futkey2', secret: 'futsecret2' };

let cached: SimBar[] | undefined;
/** The LINKUSDT candles, read once per test file. */
export function linkBars(): SimBar[] {
  cached ??= readBarsFile(LINK_FILE);
  return cached;
}

/** The candle that opens at t. */
export function bar(t: number): SimBar {
  const b = linkBars().find((x) => x.time === t);
  if (!b) throw new Error(`no LINKUSDT candle at ${new Date(t).toISOString()}`);
  return b;
}

/** The first candle at or after `from` whose range reaches `price` going down (low <= price). */
export function firstBarDownTo(from: number, price: number): SimBar {
  const b = linkBars().find((x) => x.time >= from && x.low <= price);
  if (!b) throw new Error(`LINKUSDT never trades at or below ${price} after ${new Date(from).toISOString()}`);
  return b;
}

/** The first candle at or after `from` whose range reaches `price` going up (high >= price). */
export function firstBarUpTo(from: number, price: number): SimBar {
  const b = linkBars().find((x) => x.time >= from && x.high >= price);
  if (!b) throw new Error(`LINKUSDT never trades at or above ${price} after ${new Date(from).toISOString()}`);
  return b;
}

/** Rounds to the 0.001 tick (prices in these tests are decimals of three places). */
export function tick(x: number): number {
  return Math.round(x / TICK) * TICK;
}

export interface FuturesHarness {
  sim: ExchangeSim;
  ex: InstanceType<typeof ccxt.binanceusdm>;
  rest(key?: { apiKey: string; secret: string }, extra?: CcxtExtraConfig): InstanceType<typeof ccxt.binanceusdm>;
  pro(key?: { apiKey: string; secret: string }, extra?: CcxtExtraConfig): InstanceType<typeof ccxt.pro.binanceusdm>;
  close(): Promise<void>;
}

/**
 * A futures sim replaying LINKUSDT from `startTime`, with a one-level book holding the whole bar
 * volume at one tick of spread (so a market buy fills at the price + 0.001 and a market sell at
 * the price: fills the tests can compute by hand), and the real funding archive unless given.
 */
export async function futuresHarness(
  opts: Partial<ExchangeSimOptions> & { startTime: number; contract?: Partial<SimMarketOptions> },
): Promise<FuturesHarness> {
  const { contract, ...rest } = opts;
  const sim = await startExchangeSim({
    market: 'futures',
    markets: [
      {
        symbol: 'LINK/USDT',
        bars: linkBars(),
        tickSize: TICK,
        stepSize: 0.01,
        minNotional: 5,
        funding: LINK_FUNDING,
        ...contract,
      },
    ],
    accounts: [{ ...KEY, balances: { USDT: 10_000 } }],
    liquidity: { participation: 1, bookLevels: 1, spreadTicks: 1 },
    ...rest,
  });
  const clients: Array<{ close(): Promise<unknown> }> = [];
  const restClient = (key: { apiKey: string; secret: string } = KEY, extra: CcxtExtraConfig = {}) => {
    const c = new ccxt.binanceusdm(ccxtConfigFor(sim, key, extra));
    clients.push(c);
    return c;
  };
  const pro = (key: { apiKey: string; secret: string } = KEY, extra: CcxtExtraConfig = {}) => {
    const c = new ccxt.pro.binanceusdm(ccxtConfigFor(sim, key, extra));
    clients.push(c);
    return c;
  };
  return {
    sim,
    ex: restClient(),
    rest: restClient,
    pro,
    async close() {
      for (const c of clients) await c.close().catch(() => undefined);
      await sim.close();
    },
  };
}
