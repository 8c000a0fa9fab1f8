import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExchangeSim } from '../src/index.ts';
import { checkTimestamp, signatureMatches } from '../src/rest/signing.ts';
import { type Harness, harness, KEY } from './helpers.ts';

describe('HMAC signature (oracle: the worked example in Binance spot API docs)', () => {
  it('accepts the documented signature for the documented payload and secret', () => {
    const secret = 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j';
    const payload =
      'symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559';
    expect(signatureMatches(payload, secret, 'c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71')).toBe(
      true,
    );
    expect(signatureMatches(payload, secret, 'c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b72')).toBe(
      false,
    );
    expect(signatureMatches(payload, secret, 'not-hex')).toBe(false);
  });

  it('applies Binance timing rules: 1000 ms ahead is too early, older than recvWindow is too late', () => {
    expect(() => checkTimestamp('10000', '5000', 10_999)).not.toThrow();
    expect(() => checkTimestamp('10000', '5000', 9_000)).toThrow(/ahead/);
    expect(() => checkTimestamp('10000', '5000', 15_001)).toThrow(/recvWindow/);
    expect(() => checkTimestamp('10000', '70000', 10_000)).toThrow(/less than 60000/);
  });
});

// Plain HTTP, no ccxt: status codes and bodies exactly as Binance documents them.
describe('raw REST requests', () => {
  let h: Harness;
  let sim: ExchangeSim;
  beforeAll(async () => {
    h = await harness();
    sim = h.sim;
  });
  afterAll(async () => {
    await h.close();
  });

  const sign = (q: string) => createHmac('sha256', KEY.secret).update(q).digest('hex');

  async function call(method: string, path: string, opts: { query?: string; body?: string; key?: string | null } = {}) {
    const headers: Record<string, string> = {};
    if (opts.key !== null) headers['X-MBX-APIKEY'] = opts.key ?? KEY.apiKey;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(`${sim.httpUrl}${path}${opts.query ? `?${opts.query}` : ''}`, {
      method,
      headers,
      body: opts.body,
    });
    return {
      status: res.status,
      body: (await res.json()) as { code?: number; msg?: string } & Record<string, unknown>,
    };
  }

  it('signs totalParams = query string + body, as Binance does for mixed requests', async () => {
    const query = `symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC`;
    const body = `quantity=0.1&price=100&timestamp=${Date.now()}`;
    const r = await call('POST', '/api/v3/order', { query, body: `${body}&signature=${sign(query + body)}` });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      symbol: 'BTCUSDT',
      status: 'NEW',
      type: 'LIMIT',
      side: 'BUY',
      price: '100.00000000',
    });
  });

  it('answers auth and parameter errors with Binance status, code and msg', async () => {
    const q = `timestamp=${Date.now()}`;
    expect(await call('GET', '/api/v3/account', { query: `${q}&signature=${sign(q)}`, key: null })).toEqual({
      status: 401,
      body: { code: -2014, msg: 'API-key format invalid.' },
    });
    expect(await call('GET', '/api/v3/account', { query: `${q}&signature=${sign(q)}`, key: 'unknownKey' })).toEqual({
      status: 401,
      body: { code: -2015, msg: 'Invalid API-key, IP, or permissions for action.' },
    });
    expect(await call('GET', '/api/v3/account', { query: q })).toEqual({
      status: 400,
      body: { code: -1102, msg: "Mandatory parameter 'signature' was not sent, was empty/null, or malformed." },
    });
    expect(await call('GET', '/api/v3/account', { query: `${q}&signature=${'0'.repeat(64)}` })).toEqual({
      status: 400,
      body: { code: -1022, msg: 'Signature for this request is not valid.' },
    });
    const old = `timestamp=${Date.now() - 60_000}`;
    expect(await call('GET', '/api/v3/account', { query: `${old}&signature=${sign(old)}` })).toEqual({
      status: 400,
      body: { code: -1021, msg: 'Timestamp for this request is outside of the recvWindow.' },
    });
    expect(await call('GET', '/api/v3/klines', { query: 'symbol=NOPE&interval=1m' })).toEqual({
      status: 400,
      body: { code: -1121, msg: 'Invalid symbol.' },
    });
    expect(await call('GET', '/api/v3/klines', { query: 'symbol=BTCUSDT&interval=7m' })).toEqual({
      status: 400,
      body: { code: -1120, msg: 'Invalid interval.' },
    });
  });

  it('returns the order with fills for newOrderRespType=FULL and only ids for ACK', async () => {
    const q1 = `symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.2&newOrderRespType=FULL&timestamp=${Date.now()}`;
    const full = await call('POST', '/api/v3/order', { body: `${q1}&signature=${sign(q1)}` });
    expect(full.body).toMatchObject({
      status: 'FILLED',
      executedQty: '0.20000000',
      fills: [{ price: '110.01000000', qty: '0.20000000', commission: '0.00020000', commissionAsset: 'BTC' }],
    });
    const q2 = `symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.2&price=130&newOrderRespType=ACK&timestamp=${Date.now()}`;
    const ack = await call('POST', '/api/v3/order', { body: `${q2}&signature=${sign(q2)}` });
    expect(Object.keys(ack.body).sort()).toEqual(['clientOrderId', 'orderId', 'orderListId', 'symbol', 'transactTime']);
  });
});
