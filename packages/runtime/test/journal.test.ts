import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Account, ClientOrderId, newOrderState, type OrderState } from '@keel/core';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { BotJournal } from '../src/journal.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-journal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('BotJournal', () => {
  it('saves an order event as the order was at the event, not as it is when the queued write runs', async () => {
    // A kill -9 between an `accepted` row that already says `filled` and the fill's own row left a
    // finished order with no fill, which recovery (it revisits open orders only) never repaired.
    const store = await openStore({ url: `sqlite:${path.join(dir, 'j.db')}` });
    await store.bots.create({
      id: 'jb',
      strategy: 's',
      params: {},
      mode: 'live',
      exchange: 'x',
      symbols: ['BTC/USDT'],
    });
    const journal = new BotJournal(store, 'jb', new Account('USDT', 1000), (e) => {
      throw e;
    });
    const order: OrderState = newOrderState(
      { type: 'market', id: ClientOrderId('kjb-1-1'), symbol: 'BTC/USDT', side: 'buy', amount: 1, timeInForce: 'IOC' },
      1,
      100,
    );
    order.status = 'accepted';
    journal.onEvent({ type: 'order.accepted', time: 1, order });
    // The engine moves the same object on before the queued write has run.
    order.status = 'filled';
    order.filled = 1;
    await journal.flush();
    const row = await store.orders.get('kjb-1-1');
    expect(row?.status).toBe('accepted');
    expect(row?.filled).toBe(0);
    await store.close();
  });
});
