import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { REPO_ROOT } from '../../../test-support/shared.ts';
import { type ExchangeSim, runExchangeSimCli } from '../src/index.ts';
import {
  bar,
  type FuturesHarness,
  futuresHarness,
  HAS_SHARED_DATA,
  KEY,
  LINK_FILE,
  LINK_FUNDING,
  noteSkip,
} from './futures-helpers.ts';

// Plain HTTP and WebSocket, no ccxt: the USD-M shapes and codes as Binance documents them.

const T = (h: number, m = 0): number => Date.UTC(2023, 1, 1, h, m);

// biome-ignore lint/suspicious/noExplicitAny: Binance's JSON, inspected field by field below
type Json = any;

async function call(
  sim: ExchangeSim,
  method: string,
  route: string,
  params: Record<string, string> = {},
  signed = false,
): Promise<{ status: number; body: Json }> {
  const q = new URLSearchParams(params);
  const headers: Record<string, string> = {};
  if (signed) {
    q.set('timestamp', String(Date.now()));
    q.set('signature', createHmac('sha256', KEY.secret).update(q.toString()).digest('hex'));
  }
  if (signed || route.endsWith('listenKey')) headers['X-MBX-APIKEY'] = KEY.apiKey;
  const res = await fetch(`${sim.httpUrl}${route}?${q}`, { method, headers });
  return { status: res.status, body: await res.json() };
}

/** Collects the JSON messages of a WebSocket until `done` holds for one of them. */
function collect(url: string, done: (msg: Json) => boolean, ms = 5000): { ws: WebSocket; found: Promise<Json[]> } {
  const ws = new WebSocket(url);
  const seen: Json[] = [];
  const found = new Promise<Json[]>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not seen in ${ms} ms: ${JSON.stringify(seen).slice(0, 400)}`)), ms);
    ws.on('message', (d) => {
      const msg = JSON.parse(d.toString());
      seen.push(msg);
      if (done(msg)) {
        clearTimeout(t);
        resolve(seen);
      }
    });
  });
  return { ws, found };
}

describe.skipIf(!HAS_SHARED_DATA)('USD-M protocol, raw', () => {
  if (!HAS_SHARED_DATA) noteSkip('futures raw');
  let h: FuturesHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('exchangeInfo lists the contract as Binance does: PERPETUAL, its filters, the clearance rate, every order type', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const { body } = await call(h.sim, 'GET', '/fapi/v1/exchangeInfo');
    expect(body.futuresType).toBe('U_MARGINED');
    const s = body.symbols[0];
    expect(s).toMatchObject({
      symbol: 'LINKUSDT',
      contractType: 'PERPETUAL',
      marginAsset: 'USDT',
      pricePrecision: 3,
      quantityPrecision: 2,
      liquidationFee: '0.012500',
      maintMarginPercent: '0.6500',
      requiredMarginPercent: '1.3333',
    });
    expect(s.filters).toContainEqual({
      filterType: 'PRICE_FILTER',
      minPrice: '0.001',
      maxPrice: '1000000',
      tickSize: '0.001',
    });
    expect(s.filters).toContainEqual({ filterType: 'MIN_NOTIONAL', notional: '5' });
    expect(s.orderTypes).toEqual([
      'LIMIT',
      'MARKET',
      'STOP',
      'STOP_MARKET',
      'TAKE_PROFIT',
      'TAKE_PROFIT_MARKET',
      'TRAILING_STOP_MARKET',
    ]);
  });

  it('leverageBracket, premiumIndex and fundingRate: brackets as numbers, the mark at the last price, the coming funding', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const one = await call(h.sim, 'GET', '/fapi/v1/leverageBracket', { symbol: 'LINKUSDT' }, true);
    expect(one.body.brackets[1]).toEqual({
      bracket: 2,
      initialLeverage: 50,
      notionalCap: 50_000,
      notionalFloor: 10_000,
      maintMarginRatio: 0.01,
      cum: 35,
    });
    expect((await call(h.sim, 'GET', '/fapi/v1/leverageBracket', {}, true)).body).toHaveLength(1);
    const pi = (await call(h.sim, 'GET', '/fapi/v1/premiumIndex', { symbol: 'LINKUSDT' })).body;
    expect(pi).toMatchObject({
      symbol: 'LINKUSDT',
      markPrice: '6.90700000',
      indexPrice: '6.90700000',
      lastFundingRate: '0.00010000',
      nextFundingTime: T(8),
      time: T(6),
    });
    const rates = (await call(h.sim, 'GET', '/fapi/v1/fundingRate', { symbol: 'LINKUSDT' })).body;
    // Only what has happened by 06:00: the 00:00:00.013 funding, charged at the 00:00 open.
    expect(rates).toEqual([
      {
        symbol: 'LINKUSDT',
        fundingRate: '0.00010000',
        fundingTime: 1_675_209_600_013,
        markPrice: String(bar(T(0)).open),
      },
    ]);
  });

  it('refuses a conditional type on /fapi/v1/order (-4120: the Algo Order API takes them) and bad order input with its code', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const order = (extra: Record<string, string>) =>
      call(h!.sim, 'POST', '/fapi/v1/order', { symbol: 'LINKUSDT', side: 'BUY', quantity: '10', ...extra }, true);
    expect((await order({ type: 'STOP_MARKET', stopPrice: '7' })).body.code).toBe(-4120);
    expect((await order({ type: 'LIMIT', timeInForce: 'GTC', price: '6.9005' })).body).toEqual({
      code: -4014,
      msg: 'Price not increased by tick size.',
    });
    expect((await order({ type: 'MARKET', quantity: '10.001' })).body.code).toBe(-1111);
    expect((await order({ type: 'MARKET', quantity: '0.5' })).body).toEqual({
      code: -4164,
      msg: "Order's notional must be no smaller than 5 (unless you choose reduce only).",
    });
    // 30,000 x 6.907 = 207,210: within 20x's 250,000 cap, but 10,360.5 of margin on a 10,000 wallet.
    expect((await order({ type: 'MARKET', quantity: '30000' })).body).toEqual({
      code: -2019,
      msg: 'Margin is insufficient.',
    });
    expect((await order({ type: 'MARKET', quantity: '40000' })).body.code).toBe(-2027); // 276,280 > 250,000
    const algo = await call(
      h.sim,
      'POST',
      '/fapi/v1/algoOrder',
      { symbol: 'LINKUSDT', side: 'SELL', type: 'TAKE_PROFIT_MARKET', triggerPrice: '7.5', closePosition: 'true' },
      true,
    );
    expect(algo.body).toEqual({
      code: -1102,
      msg: "Mandatory parameter 'algoType' was not sent, was empty/null, or malformed.",
    });
  });

  it('market and user streams: markPriceUpdate on /market/ws, ORDER_TRADE_UPDATE and ACCOUNT_UPDATE on /private/ws?listenKey=', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const { sim } = h;
    const { listenKey } = (await call(sim, 'POST', '/fapi/v1/listenKey')).body;
    expect(typeof listenKey).toBe('string');
    const user = collect(`${sim.wsUrl}/private/ws?listenKey=${listenKey}`, (m) => m.e === 'ACCOUNT_UPDATE');
    const market = collect(`${sim.wsUrl}/market/ws/linkusdt@markPrice@1s/!markPrice@arr`, (m) => Array.isArray(m));
    await sim.waitForSubscription(`user:${KEY.apiKey}`);
    await sim.waitForSubscription('linkusdt@markPrice@1s');
    await call(
      sim,
      'POST',
      '/fapi/v1/order',
      { symbol: 'LINKUSDT', side: 'BUY', type: 'MARKET', quantity: '100' },
      true,
    );
    const events = await user.found;
    const fill = events.find((e) => e.e === 'ORDER_TRADE_UPDATE' && e.o.x === 'TRADE');
    expect(fill.o).toMatchObject({
      s: 'LINKUSDT',
      S: 'BUY',
      o: 'MARKET',
      X: 'FILLED',
      l: '100',
      L: '6.908',
      N: 'USDT',
      n: '0.3454',
      ps: 'BOTH',
      rp: '0',
    });
    const acct = events.find((e) => e.e === 'ACCOUNT_UPDATE');
    expect(acct.a).toMatchObject({
      m: 'ORDER',
      B: [{ a: 'USDT', wb: '9999.6546', cw: '9999.6546', bc: '0' }],
      P: [{ s: 'LINKUSDT', pa: '100', ep: '6.908', cr: '0', up: '-0.1', mt: 'cross', iw: '0', ps: 'BOTH', ma: 'USDT' }],
    });
    sim.tick(); // 06:00:15, the 06:00 candle's high (6.908)
    const marks = await market.found;
    const mark = marks.find((m) => !Array.isArray(m));
    expect(mark).toMatchObject({
      e: 'markPriceUpdate',
      s: 'LINKUSDT',
      p: '6.90800000',
      r: '0.00010000',
      T: T(8),
      E: T(6) + 15_000,
    });
    user.ws.close();
    market.ws.close();
  });

  it('keel exchange-sim --market futures: prints the fapi endpoints and the funding source; futures options need it', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const ac = new AbortController();
    const running = runExchangeSimCli(
      [
        '--market',
        'futures',
        '--data',
        LINK_FILE,
        '--symbol',
        'LINK/USDT',
        '--tick-size',
        '0.001',
        '--step-size',
        '0.01',
        '--funding',
        LINK_FUNDING,
        '--port',
        '0',
        '--speed',
        '0',
        '--start',
        '2023-02-28T20:00',
      ],
      { out, signal: ac.signal, onStarted: () => ac.abort() },
    );
    await running;
    expect(text).toContain('Binance USD-M futures on http://127.0.0.1:');
    expect(text).toContain(`funding: from ${LINK_FUNDING}`);
    // The data runs to 2023-03-01 00:00; the archive has no row after 2023-02-28 16:00: no gap
    // inside the replay, so no warning.
    expect(text).not.toContain('warning');
    await expect(runExchangeSimCli(['--data', LINK_FILE, '--funding-rate', '0.0001'])).rejects.toThrow(
      '--funding-rate applies to --market futures only',
    );
    await expect(
      runExchangeSimCli(['--market', 'futures', '--data', LINK_FILE, '--funding', LINK_FUNDING, '--funding-rate', '0']),
    ).rejects.toThrow('not both');
  });

  it('a funding series that stops short is a warning naming the missing times, never a silent zero', async () => {
    h = await futuresHarness({
      startTime: T(6),
      contract: {
        funding: {
          symbol: undefined,
          length: 1,
          time: new Float64Array([T(8)]),
          rate: new Float64Array([0.0001]),
          intervalHours: new Float64Array([8]),
        },
      },
    });
    expect(h.sim.warnings).toHaveLength(1);
    expect(h.sim.warnings[0]).toMatch(
      // February has 84 funding times; 00:00 on the 1st is before the replay and 08:00 is given.
      /^market LINK\/USDT: no funding data for 82 funding time\(s\) between 2023-02-01T08:00:00Z and 2023-02-28T23:59:59\.999Z/,
    );
  });
});

describe('the simulator stays light', () => {
  it('imports no DuckDB and no ccxt: its module graph reaches only node:, ws, @keel/core and @keel/candles', () => {
    const external = new Set<string>();
    const seen = new Set<string>();
    const resolveWorkspace = (spec: string): string | undefined => {
      if (spec === '@keel/core') return path.join(REPO_ROOT, 'packages/core/src/index.ts');
      if (spec === '@keel/candles') return path.join(REPO_ROOT, 'packages/candles/src/index.ts');
      return undefined;
    };
    const walk = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'|import\('([^']+)'\)/g)) {
        const spec = (m[1] ?? m[2]) as string;
        if (spec.startsWith('.')) walk(path.resolve(path.dirname(file), spec));
        else {
          external.add(spec);
          const ws = resolveWorkspace(spec);
          if (ws && spec !== '@keel/core') walk(ws);
        }
      }
    };
    walk(path.join(REPO_ROOT, 'packages/exchange-sim/src/index.ts'));
    const allowed = (s: string): boolean =>
      s.startsWith('node:') || s === 'ws' || s === '@keel/core' || s === '@keel/candles';
    expect([...external].filter((s) => !allowed(s))).toEqual([]);
    expect(external.has('@keel/candles')).toBe(true);
  });
});
