import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { keelIn } from './in-process.ts';

// A paper bot with --stop-loss, stopped at the end of its replay while long (the default
// --on-shutdown cancel cancels its stop), then run again on the longer file: the position it
// carries gets its stop again at the first bar. Oracle: `keel bots parity`, the backtest of the
// bars the bot handled, where the stop never stopped working. Real BTC 1m candles of 2024-01-01
// from 22:00; the first replay ends at 00:34, long (sma-cross 3/8 bought at 00:31).
const FROM = 1321; // line of 2024-01-01 22:00 after the header
const PART = 155;
const FULL = 231;

function slice(name: string, rows: number): string {
  const lines = gunzipSync(readFileSync(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')))
    .toString('utf8')
    .split('\n');
  const file = path.resolve(name);
  writeFileSync(file, `${lines[0]}\n${lines.slice(FROM, FROM + rows).join('\n')}\n`);
  return file;
}

const paper = (file: string) =>
  keelIn([
    'paper',
    ...['--strategy', 'sma-cross', '--param', 'fast=3', '--param', 'slow=8', '--symbol', 'BTC/USDT'],
    ...['--replay', file, '--store', `sqlite:${path.resolve('exits.db')}`, '--bot-id', 'px', '--stop-loss', '0.2%'],
  ]);

describe.skipIf(!HAS_SHARED_DATA)('keel paper: a carried position keeps its --stop-loss across a restart', () => {
  it('the stop cancelled at the end of the first replay is placed again at the first bar of the next; parity finds no difference', async () => {
    const first = await paper(slice('part.csv', PART));
    expect(first.code, first.err).toBe(0);
    expect(first.err).toMatch(
      /CANCEL +sell \S+ BTC\/USDT stop-market .* tag stop-loss {2}reason: bot stopped \(input ended\)/,
    );
    const second = await paper(slice('full.csv', FULL));
    expect(second.code, second.err).toBe(0);
    // The first order of the second session is the carried position's stop.
    const sent = second.err.split('\n').filter((l) => l.includes(' SENT '));
    expect(sent[0]).toMatch(/SENT +sell \S+ BTC\/USDT stop-market .* tag stop-loss/);
    const parity = await keelIn(['bots', 'parity', 'px', '--store', `sqlite:${path.resolve('exits.db')}`]);
    expect(parity.code, parity.err).toBe(0);
    expect(parity.out).toContain('No differences');
  });
});
