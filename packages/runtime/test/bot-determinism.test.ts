import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BarSeries, SeededRng } from '@keel/core';
import { ManualTimer } from '@keel/exchange';
import { openStore } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { Bot, replaySource } from '../src/index.ts';
import { FEED, paperBotConfig, realCandles } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('bot determinism');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-bot-determinism-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Every time, wait and random number a bot uses outside the composition root comes from what it
// is given (`clock`, `rng`): two runs with the same fake clock and seed write the same bytes.
// Invariant (no oracle): run A equals run B, field by field, store included.
describe.skipIf(!HAS_SHARED_DATA)('a bot with a fake clock and a seeded rng is deterministic', () => {
  const series: BarSeries = HAS_SHARED_DATA ? realCandles(3_000) : (undefined as never);

  async function run(name: string): Promise<string> {
    const clock = new ManualTimer(Date.UTC(2025, 0, 1, 12));
    const store = await openStore({ url: `sqlite:${path.join(dir, `${name}.db`)}`, synchronous: 'NORMAL', clock });
    const bot = new Bot(paperBotConfig(store, 'det', getStrategy('sma-cross'), { clock, rng: new SeededRng(11) }));
    try {
      await bot.start();
      await clock.advance(5_000);
      await bot.run(replaySource(FEED, series));
      await clock.advance(5_000);
      const report = await bot.stop();
      return JSON.stringify({
        owner: bot.owner,
        report,
        orders: await store.orders.list('det'),
        fills: await store.fills.since('det', 0),
        balances: await store.balances.load('det'),
        sessions: await store.sessions.list('det'),
        bot: await store.bots.get('det'),
      });
    } finally {
      await store.close();
    }
  }

  it('two runs: the same owner, session report, orders, fills, balances and session rows', async () => {
    const a = await run('a');
    const b = await run('b');
    expect(JSON.parse(a).report.fills).toBeGreaterThan(0);
    expect(JSON.parse(a).report.startedAt).toBe('2025-01-01T12:00:00.000Z');
    expect(b).toBe(a);
  });
});
