import ccxt from 'ccxt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Harness, harness, KEY, rejectionOf } from './helpers.ts';

// Binance's OCO order lists (POST /api/v3/orderList/oco) through the real ccxt client's implicit
// API method. Stair bars: the clock starts at bar 10's open (110); bar 10 goes 110 -> 108 -> 112
// -> 111, bar 11 goes 111 -> 109 -> 113 -> 112.
const sellOco = (id: string, qty: string, tp: string, sl: string) => ({
  symbol: 'BTCUSDT',
  side: 'SELL',
  quantity: qty,
  listClientOrderId: `${id}-list`,
  aboveType: 'LIMIT_MAKER',
  abovePrice: tp,
  aboveClientOrderId: `${id}-tp`,
  belowType: 'STOP_LOSS',
  belowStopPrice: sl,
  belowClientOrderId: `${id}-sl`,
});

describe('OCO order lists through ccxt', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('locks the quantity once for both legs; the take-profit fills and the stop leg expires', async () => {
    const r = (await h.ex.privatePostOrderListOco(sellOco('a', '0.6', '112.5', '105'))) as {
      contingencyType: string;
      listOrderStatus: string;
      orders: Array<{ clientOrderId: string }>;
      orderReports: Array<{ type: string; status: string; orderListId: number }>;
    };
    expect(r.contingencyType).toBe('OCO');
    expect(r.listOrderStatus).toBe('EXECUTING');
    expect(r.orders.map((o) => o.clientOrderId)).toEqual(['a-sl', 'a-tp']); // Binance books the stop leg first
    expect(r.orderReports.map((o) => o.type)).toEqual(['STOP_LOSS', 'LIMIT_MAKER']);
    const bal = await h.ex.fetchBalance();
    expect(bal['BTC']).toMatchObject({ free: 0.4, used: 0.6 }); // once, not 1.2 (which 1 BTC could not cover)
    h.sim.step(); // bar 10 peaks at 112
    expect((await h.ex.fetchOrder('', 'BTC/USDT', { clientOrderId: 'a-tp' })).status).toBe('open');
    h.sim.step(); // bar 11 reaches 113: the take-profit fills
    const tp = await h.ex.fetchOrder('', 'BTC/USDT', { clientOrderId: 'a-tp' });
    const sl = await h.ex.fetchOrder('', 'BTC/USDT', { clientOrderId: 'a-sl' });
    expect(tp).toMatchObject({ status: 'closed', filled: 0.6, price: 112.5 });
    expect(sl).toMatchObject({ status: 'expired', filled: 0 });
    const after = await h.ex.fetchBalance();
    expect(after['BTC']).toMatchObject({ free: 0.4, used: 0 });
    const list = (await h.ex.privateGetOrderList({ origClientOrderId: 'a-list' })) as { listOrderStatus: string };
    expect(list.listOrderStatus).toBe('ALL_DONE');
  });

  it('the stop leg triggers: it fills at the market and the limit leg expires', async () => {
    await h.ex.privatePostOrderListOco(sellOco('b', '0.5', '120', '109'));
    h.sim.step(); // bar 10 dips to 108 through the 109 stop
    const sl = await h.ex.fetchOrder('', 'BTC/USDT', { clientOrderId: 'b-sl' });
    const tp = await h.ex.fetchOrder('', 'BTC/USDT', { clientOrderId: 'b-tp' });
    expect(sl).toMatchObject({ status: 'closed', filled: 0.5 });
    expect(sl.average).toBeLessThanOrEqual(109);
    expect(tp).toMatchObject({ status: 'expired', filled: 0 });
    expect((await h.ex.fetchBalance())['BTC']).toMatchObject({ free: 0.5, used: 0 });
  });

  it('cancelling one leg cancels the list; bad price order and duplicate ids are refused, nothing booked', async () => {
    await h.ex.privatePostOrderListOco(sellOco('c', '0.2', '120', '100'));
    await h.ex.cancelOrder('', 'BTC/USDT', { clientOrderId: 'c-tp' });
    expect((await h.ex.fetchOrder('', 'BTC/USDT', { clientOrderId: 'c-sl' })).status).toBe('canceled');
    expect((await h.ex.fetchBalance())['BTC']).toMatchObject({ free: 1, used: 0 });

    const wrong = await rejectionOf(h.ex.privatePostOrderListOco(sellOco('d', '0.2', '105', '100')));
    expect(wrong).toBeInstanceOf(ccxt.InvalidOrder);
    expect(wrong.message).toContain('The relationship of the prices for the orders is not correct.');
    await h.ex.createOrder('BTC/USDT', 'limit', 'sell', 0.1, 130, { clientOrderId: 'e-tp' });
    const dup = await rejectionOf(h.ex.privatePostOrderListOco(sellOco('e', '0.2', '120', '100')));
    expect(dup.message).toContain('Duplicate order sent.');
    expect((await h.ex.fetchOpenOrders('BTC/USDT')).map((o) => o.clientOrderId)).toEqual(['e-tp']);
  });

  it('legs sent without client ids each get their own (as on Binance), the list too; both stay addressable', async () => {
    const lists = [];
    for (const [side, above, below] of [
      ['SELL', { aboveType: 'LIMIT_MAKER', abovePrice: '120' }, { belowType: 'STOP_LOSS', belowStopPrice: '100' }],
      ['BUY', { aboveType: 'STOP_LOSS', aboveStopPrice: '120' }, { belowType: 'LIMIT_MAKER', belowPrice: '100' }],
    ] as const) {
      lists.push(
        (await h.ex.privatePostOrderListOco({ symbol: 'BTCUSDT', side, quantity: '0.2', ...above, ...below })) as {
          listClientOrderId: string;
          orders: Array<{ orderId: number; clientOrderId: string }>;
        },
      );
    }
    const legIds = lists.flatMap((l) => l.orders.map((o) => o.clientOrderId));
    expect(new Set(legIds).size).toBe(4);
    const listIds = lists.map((l) => l.listClientOrderId);
    expect(new Set([...listIds, ...legIds]).size).toBe(6);
    for (const o of lists.flatMap((l) => l.orders)) {
      const fetched = await h.ex.fetchOrder('', 'BTC/USDT', { clientOrderId: o.clientOrderId });
      expect([fetched.id, fetched.clientOrderId, fetched.status]).toEqual([String(o.orderId), o.clientOrderId, 'open']);
    }
    expect(await h.ex.fetchOpenOrders('BTC/USDT')).toHaveLength(4);
  });

  it('DELETE order on one leg cancels the whole list, as Binance does: both legs CANCELED, then listStatus ALL_DONE', async () => {
    // Oracle: Binance's spot API docs (DELETE /api/v3/order: "Canceling an individual order from an
    // order list will cancel the entire order list"; the user stream's executionReport and listStatus).
    const res = await fetch(`${h.sim.httpUrl}/api/v3/userDataStream`, {
      method: 'POST',
      headers: { 'X-MBX-APIKEY': KEY.apiKey },
    });
    const { listenKey } = (await res.json()) as { listenKey: string };
    const user = new WebSocket(`${h.sim.wsUrl}/ws/${listenKey}`);
    const events: Array<Record<string, unknown>> = [];
    user.on('message', (d) => events.push(JSON.parse(d.toString()) as Record<string, unknown>));
    try {
      await new Promise((r) => user.once('open', r));
      const placed = (await h.ex.privatePostOrderListOco(sellOco('f', '0.3', '120', '100'))) as { orderListId: number };
      const cancelled = await h.ex.cancelOrder('', 'BTC/USDT', { clientOrderId: 'f-sl' });
      expect(cancelled.status).toBe('canceled');
      const done = () => events.some((e) => e['e'] === 'listStatus' && e['L'] === 'ALL_DONE');
      for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
      const kinds = events.filter((e) => e['e'] !== 'outboundAccountPosition');
      expect(kinds.map((e) => [e['e'], e['C'] || e['c'], e['x'] ?? e['L']])).toEqual([
        ['executionReport', 'f-sl', 'NEW'],
        ['executionReport', 'f-tp', 'NEW'],
        ['listStatus', 'f-list', 'EXECUTING'],
        ['executionReport', 'f-sl', 'CANCELED'],
        ['executionReport', 'f-tp', 'CANCELED'],
        ['listStatus', 'f-list', 'ALL_DONE'],
      ]);
      expect(kinds.at(-1)).toMatchObject({ g: placed.orderListId, c: 'OCO', l: 'ALL_DONE', s: 'BTCUSDT' });
      expect((kinds.at(-1)?.['O'] as Array<{ c: string }>).map((o) => o.c)).toEqual(['f-sl', 'f-tp']);
      for (const id of ['f-sl', 'f-tp'])
        expect((await h.ex.fetchOrder('', 'BTC/USDT', { clientOrderId: id })).status).toBe('canceled');
      const list = (await h.ex.privateGetOrderList({ origClientOrderId: 'f-list' })) as Record<string, unknown>;
      expect(list).toMatchObject({ listStatusType: 'ALL_DONE', listOrderStatus: 'ALL_DONE' });
      expect((await h.ex.fetchBalance())['BTC']).toMatchObject({ free: 1, used: 0 });
    } finally {
      user.terminate();
    }
  });
});
