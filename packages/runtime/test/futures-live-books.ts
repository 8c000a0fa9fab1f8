// The live USDⓈ-M tests' oracle of record: the simulator's own view of the account, and the bot's
// books held to it (shared by futures-live-adl and futures-live-delist).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FuturesBook } from '@keel/core';
import type { ExchangeSim } from '@keel/exchange-sim';
import { openStore, type Store } from '@keel/store';
import { afterAll, afterEach, expect } from 'vitest';
import { KEY, type LiveRun, PERP } from './live-harness.ts';

/**
 * Called at a test file's top level: SQLite stores in a temporary folder (`dir`, removed after the
 * file), and `open`, what a test opens (stores, simulators), closed after each test.
 */
export function testStores(name: string): {
  readonly dir: string;
  readonly open: Array<{ close(): Promise<unknown> }>;
  newStore(): Promise<Store>;
} {
  const dir = mkdtempSync(path.join(tmpdir(), `keel-${name}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const open: Array<{ close(): Promise<unknown> }> = [];
  afterEach(async () => {
    for (const x of open.splice(0).reverse()) await x.close().catch(() => undefined);
  });
  let n = 0;
  return {
    dir,
    open,
    async newStore() {
      const s = await openStore({ url: `sqlite:${path.join(dir, `s${++n}.db`)}`, synchronous: 'NORMAL' });
      open.push(s);
      return s;
    },
  };
}

/** The simulator's view of KEY's account: wallet, the LINKUSDT position (0 flat), its entry and isolated wallet. */
export function exchangeBooks(sim: ExchangeSim) {
  const a = sim.futuresAccount(KEY.apiKey);
  const p = a.positions.find((x) => x.position.symbol === 'LINKUSDT');
  return {
    wallet: a.assets.find((x) => x.asset === 'USDT')?.walletBalance ?? Number.NaN,
    size: p?.position.size ?? 0,
    entry: p?.position.size ? p.position.entryPrice : 0,
    isolatedWallet: p?.position.isolatedWallet ?? 0,
  };
}

/** The bot's position, wallet and isolated wallet equal the exchange's. */
export function expectBooksEqual(run: LiveRun, what: string): void {
  const ex = exchangeBooks(run.sim);
  const book = (run.bot as unknown as { futuresBook: FuturesBook }).futuresBook;
  expect(run.bot.account.find(PERP.symbol)?.size ?? 0, `${what}: position`).toBeCloseTo(ex.size, 9);
  expect(run.bot.account.cash, `${what}: wallet`).toBeCloseTo(ex.wallet, 8);
  expect(book.isolatedWallet(PERP.symbol), `${what}: isolated wallet`).toBeCloseTo(ex.isolatedWallet, 8);
}

/** Steps the simulator bar by bar, each bar handled by the bot, up to `t`. */
export async function stepTo(run: LiveRun, t: number): Promise<void> {
  while (run.sim.now() < t) await run.step();
}

/**
 * What the store holds for a bot after its sessions: `events` events of `type` (each forced close
 * applied once), its position `size`, its wallet the exchange's.
 */
export async function expectStored(
  storeUrl: string,
  botId: string,
  sim: ExchangeSim,
  o: { type: string; events: number; size: number },
): Promise<void> {
  const store = await openStore({ url: storeUrl });
  try {
    expect((await store.events.list(botId)).filter((e) => e.type === o.type)).toHaveLength(o.events);
    expect((await store.positions.load(botId)).find((p) => p.symbol === PERP.symbol)?.size).toBe(o.size);
    const cash = (await store.balances.load(botId)).find((b) => b.asset === 'USDT')!.total;
    expect(cash).toBeCloseTo(exchangeBooks(sim).wallet, 8);
  } finally {
    await store.close();
  }
}
