import {
  ccxtConfigFor,
  type ExchangeSim,
  type ExchangeSimOptions,
  type SimBar,
  startExchangeSim,
} from '@keel/exchange-sim';
import { afterEach } from 'vitest';
import { type CcxtClient, createCcxtClient, ExchangeGateway, type GatewayOptions } from '../src/index.ts';
import { testOrderId } from './helpers.ts';

export const T0 = Date.UTC(2024, 0, 1);
export const MIN = 60_000;
export const KEY = { apiKey: 'keel-int-key', secret: 'keel-int-secret' };

/** Bar i opens at 100 + i, dips 2, peaks 2, closes 1 up: every price is known in advance. */
export function stairBars(n = 60, volume = 100): SimBar[] {
  return Array.from({ length: n }, (_, i) => {
    const o = 100 + i;
    return { time: T0 + i * MIN, open: o, high: o + 2, low: o - 2, close: o + 1, volume };
  });
}

export interface SimHarness {
  readonly sim: ExchangeSim;
  /** The real ccxt.pro binance client (REST + WS), pointed at the sim. */
  client(extra?: Record<string, unknown>): CcxtClient;
  gateway(opts?: GatewayOptions & { ccxt?: Record<string, unknown> }): ExchangeGateway;
  /**
   * Moves the sim's wall clock forward to 1 s before a minute boundary, so that a 429's
   * Retry-After (the rest of the weight window) is 1 s instead of up to 60 s. The sim's timestamp
   * check is skewed back by the same amount, so signatures still see real time.
   */
  nearMinuteEnd(): void;
  /** faults.reset() that keeps the clock compensation of nearMinuteEnd. */
  resetFaults(): void;
  close(): Promise<void>;
}

/** Fast retry settings for loopback: same logic as production, shorter waits. */
export const FAST: GatewayOptions = {
  seed: 9,
  lookupDelayMs: 50,
  retry: { maxAttempts: 5, baseMs: 20, maxMs: 300 },
  breaker: { failureThreshold: 50, openMs: 1_000 },
};

export async function simHarness(opts: Partial<ExchangeSimOptions> = {}): Promise<SimHarness> {
  const wall = { offset: 0 };
  const sim = await startExchangeSim({
    wallClock: () => Date.now() + wall.offset,
    markets: [{ symbol: 'BTC/USDT', bars: stairBars(), stepSize: 0.001, minNotional: 1 }],
    accounts: [{ ...KEY, balances: { USDT: 100_000, BTC: 10 } }],
    startTime: T0 + 10 * MIN,
    ...opts,
  });
  const clients: CcxtClient[] = [];
  const client = (extra: Record<string, unknown> = {}) => {
    const c = createCcxtClient('binance', ccxtConfigFor(sim, KEY, { timeout: 1_000, ...extra }));
    clients.push(c);
    return c;
  };
  return {
    sim,
    client,
    gateway: (o = {}) => new ExchangeGateway(client(o.ccxt), { ...FAST, ...o }),
    nearMinuteEnd() {
      const w = Date.now() + wall.offset;
      wall.offset += (((59_000 - (w % 60_000)) % 60_000) + 60_000) % 60_000;
      // The signature's timestamp check still sees real time: only the weight window moved.
      sim.faults.skewServerClock(-wall.offset);
    },
    resetFaults() {
      sim.faults.reset();
      sim.faults.skewServerClock(-wall.offset);
    },
    async close() {
      for (const c of clients) await c.close().catch(() => undefined);
      await sim.close();
    },
  };
}

/** Polls `cond` on the wall clock (integration tests run in real time). */
export async function eventually(cond: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A GTC limit buy on BTC/USDT with a deterministic client id from (bot, key). */
export function limitBuy(bot: string, key: string, price: number, amount = 0.05) {
  return {
    id: testOrderId(bot, key),
    symbol: 'BTC/USDT',
    side: 'buy',
    type: 'limit',
    price,
    amount,
    timeInForce: 'GTC',
  } as const;
}

/**
 * What a test opened (simulators, clients), closed after each test, last first: `push` a closer.
 * Call once at the top of a test file.
 */
export function closeAfterEach(): Array<() => Promise<unknown>> {
  const closers: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  });
  return closers;
}
