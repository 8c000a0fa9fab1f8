import { PassThrough } from 'node:stream';
import ccxt from 'ccxt';
import {
  type CcxtExtraConfig,
  ccxtConfigFor,
  type ExchangeSim,
  type ExchangeSimOptions,
  runExchangeSimCli,
  type SimBar,
  startExchangeSim,
} from '../src/index.ts';

export const T0 = Date.UTC(2024, 0, 1);
export const MIN = 60_000;
export const KEY = { apiKey: 'testkey1', secret: 'testsecret1' };

/**
 * A hand-made staircase: bar i opens at 100 + i, dips 2 below, peaks 2 above and closes 1 up, so
 * every bar's path is open -> low -> high -> close and crosses known prices.
 */
export function stairBars(n = 60, volume = 100): SimBar[] {
  return Array.from({ length: n }, (_, i) => {
    const o = 100 + i;
    return { time: T0 + i * MIN, open: o, high: o + 2, low: o - 2, close: o + 1, volume };
  });
}

export interface Harness {
  sim: ExchangeSim;
  /** A REST client with KEY. */
  ex: InstanceType<typeof ccxt.binance>;
  /** Makes more clients; all are closed by `close()`. */
  rest(key?: { apiKey: string; secret: string }, extra?: CcxtExtraConfig): InstanceType<typeof ccxt.binance>;
  pro(key?: { apiKey: string; secret: string }, extra?: CcxtExtraConfig): InstanceType<typeof ccxt.pro.binance>;
  close(): Promise<void>;
}

export async function harness(opts: Partial<ExchangeSimOptions> = {}): Promise<Harness> {
  const sim = await startExchangeSim({
    markets: [{ symbol: 'BTC/USDT', bars: stairBars(), stepSize: 0.001, minNotional: 1 }],
    accounts: [{ ...KEY, balances: { USDT: 10_000, BTC: 1 } }],
    startTime: T0 + 10 * MIN,
    ...opts,
  });
  const clients: Array<{ close(): Promise<unknown> }> = [];
  const rest = (key: { apiKey: string; secret: string } | undefined = KEY, extra: CcxtExtraConfig = {}) => {
    const c = new ccxt.binance(ccxtConfigFor(sim, key, extra));
    clients.push(c);
    return c;
  };
  const pro = (key: { apiKey: string; secret: string } | undefined = KEY, extra: CcxtExtraConfig = {}) => {
    const c = new ccxt.pro.binance(ccxtConfigFor(sim, key, extra));
    clients.push(c);
    return c;
  };
  return {
    sim,
    ex: rest(),
    rest,
    pro,
    async close() {
      for (const c of clients) await c.close().catch(() => undefined);
      await sim.close();
    },
  };
}

/** Resolves with the promise's value, or with `timeout` if it takes longer than ms. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<'timeout'>((r) => (t = setTimeout(() => r('timeout'), ms)))]).finally(() =>
    clearTimeout(t),
  );
}

export async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the call to fail, it succeeded');
}

/**
 * Calls `watch` repeatedly (ccxt.pro style) until `done` holds for what came back, or fails
 * after ms. `kick` runs once after the first call is issued (e.g. to step the sim).
 */
export async function watchUntil<T>(
  watch: () => Promise<T>,
  done: (v: T) => boolean,
  opts: { ms?: number; kick?: () => void | Promise<void> } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.ms ?? 5000);
  let first = true;
  let last: T | undefined;
  while (Date.now() < deadline) {
    const p = watch();
    if (first) {
      first = false;
      await opts.kick?.();
    }
    const v = await within(p, deadline - Date.now());
    if (v === 'timeout') break;
    last = v;
    if (done(v)) return v;
  }
  throw new Error(`watch condition not met in time; last value: ${JSON.stringify(last)?.slice(0, 500)}`);
}

/** `keel exchange-sim fault --port <port> ...args` as the CLI runs it: its exit code and output. */
export async function faultCli(port: number, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = new PassThrough().on('data', (d: Buffer) => (out += d.toString()));
  const e = new PassThrough().on('data', (d: Buffer) => (err += d.toString()));
  const code = await runExchangeSimCli(['fault', '--port', String(port), ...args], { out: o, err: e });
  return { code, out, err };
}
