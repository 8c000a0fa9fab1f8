import { afterEach, describe, expect, it } from 'vitest';
import { type FuturesHarness, futuresHarness, HAS_SHARED_DATA, KEY, LINK, noteSkip } from './futures-helpers.ts';
import { faultCli as fault } from './helpers.ts';

// The exchange's own closes on command over the admin endpoint (`keel exchange-sim fault adl |
// delist | settle`), as a running simulator is driven from another terminal, observed through the
// real ccxt binanceusdm client. LINKUSDT 2023-02, Binance's default USD-M fees.

const T = (h: number, m = 0): number => Date.UTC(2023, 1, 1, h, m);
type Raw = Record<string, unknown>;

describe.skipIf(!HAS_SHARED_DATA)('futures simulator: ADL, delisting and settlement over the admin endpoint', () => {
  if (!HAS_SHARED_DATA) noteSkip('futures admin');
  let h: FuturesHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('adl, delist --later, settle: each as the in-process hook does it, said in one line; refusals exit 1 with the reason', async () => {
    h = await futuresHarness({ startTime: T(6), admin: true });
    const { sim, ex } = h;
    const port = sim.port;
    await ex.createOrder(LINK, 'market', 'buy', 100); // at 6.908
    // ADL of 40 at 7.2: an adl_autoclose order, no fee.
    const adl = await fault(port, ['adl', '--api-key', KEY.apiKey, '--symbol', LINK, '--qty', '40', '--price', '7.2']);
    expect(adl).toMatchObject({ code: 0, err: '' });
    expect(adl.out).toMatch(
      /^fault adl on 127\.0\.0\.1:\d+: auto-deleveraged 1 position: 40 SELL at 7\.2 \(adl_autoclose, order \d+, account futkey1\)\n$/,
    );
    expect((await ex.fetchPositions([LINK]))[0]?.contracts).toBe(60);
    // Delisted, settled later: SETTLING, orders refused.
    const delist = await fault(port, ['delist', '--symbol', 'LINKUSDT', '--later']);
    expect(delist.code).toBe(0);
    expect(delist.out).toContain('LINKUSDT delisted (status SETTLING, new orders refused, open orders cancelled)');
    const info = (await ex.fapiPublicGetExchangeInfo()) as { symbols: Raw[] };
    expect(info.symbols.find((x) => x.symbol === 'LINKUSDT')?.status).toBe('SETTLING');
    await expect(ex.createOrder(LINK, 'market', 'sell', 10)).rejects.toThrow(/-4141/);
    const settle = await fault(port, ['settle', '--symbol', LINK, '--price', '6.9']);
    expect(settle.code).toBe(0);
    expect(settle.out).toMatch(/settled 1 position: 60 SELL at 6\.9 \(settlement_autoclose-\d{19}, order \d+/);
    expect(await ex.fetchPositions([LINK])).toEqual([]);
    expect(sim.liquidations(KEY.apiKey).map((l) => [l.autoCloseType, l.order.executedQty, l.price])).toEqual([
      ['ADL', 40, 7.2],
      ['SETTLEMENT', 60, 6.9],
    ]);
    // What the exchange cannot do is the command's error, with its reason.
    const again = await fault(port, ['delist', '--symbol', LINK]);
    expect(again.code).toBe(1);
    expect(again.err).toContain('delisted already');
    const none = await fault(port, ['adl', '--api-key', KEY.apiKey, '--symbol', LINK]);
    expect(none.code).toBe(1);
    expect(none.err).toContain('holds no position');
    const usage = await fault(port, ['adl', '--symbol', LINK]);
    expect(usage).toMatchObject({ code: 2 });
    expect(usage.err).toContain('fault adl needs --api-key');
  });
});
