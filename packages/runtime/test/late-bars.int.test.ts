// A bar the bot reaches after newer bars of its market have closed (a gap filled from REST after
// the candle stream dropped, or a bot that fell behind the stream) carries a late signal: the
// strategy runs on it, as on a missed bar, but nothing it asks for is sent. Real ccxt against the
// simulator over loopback; the strategy buys on every bar. Oracle: the simulator's own records of
// which orders arrived, and each order's decision bar.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { sessionSummary } from '../src/cli.ts';
import { buyEachBar } from './fixtures/strategies.ts';
import { KEY, MIN, quietBars, startLiveBot, T0, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-late-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bars reached after newer ones closed (real ccxt, loopback)', () => {
  it('the candle stream drops while three bars close: the two the gap fill hands over late send nothing; said, counted, in the summary', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'late.db')}`, synchronous: 'NORMAL' });
    const logged: string[] = [];
    const run = await startLiveBot({
      strategy: buyEachBar,
      store,
      bars: quietBars(20),
      botId: 'late',
      log: (level, m) => logged.push(`${level} ${m}`),
    });
    let report: ReturnType<typeof run.bot.report>;
    try {
      for (let k = 0; k < 2; k++) await run.step();
      run.sim.faults.dropWebSockets({ kind: 'market' });
      run.sim.step(3); // bars 2, 3 and 4 close while the stream is down
      await run.timer.advance(run.sim.now() - run.timer.now());
      await until(() => run.bot.barsHandled >= 5, 15_000, 'the gap fill');
      await run.bot.settled();
      await run.step(); // bar 5, on time again
      report = run.bot.report();
    } finally {
      await run.close();
    }
    const orders = await store.orders.list('late');
    const decided = (o: { createdAt: number }) => (o.createdAt - MIN - T0) / MIN;
    expect(orders.filter((o) => o.status === 'denied').map(decided)).toEqual([2, 3]);
    for (const o of orders.filter((x) => x.status === 'denied'))
      expect(o.reason).toMatch(
        /^late: the bar of .* came after [12] newer bar\(s\) had closed \(a gap filled after the candle stream dropped, or the bot fell behind\)/,
      );
    const sent = run.sim.getOrders(KEY.apiKey).map((o) => o.clientOrderId);
    expect(orders.filter((o) => sent.includes(o.request.id)).map(decided)).toEqual([0, 1, 4, 5]);
    expect(
      logged.some((l) =>
        /^warn late bars: 2 bar\(s\) \(.*\) came after newer ones had closed \(up to 2 bar\(s\) late: .*\): the strategy ran on them, none of them traded; 2 order\(s\) not sent/.test(
          l,
        ),
      ),
    ).toBe(true);
    expect(report.signalsDropped.late).toBe(2);
    expect(sessionSummary(report)).toContain(
      '; signals not traded: 2 on bars that came after newer ones had closed (late)',
    );
    await store.close();
  }, 60_000);
});
