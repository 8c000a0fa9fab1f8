import { describe, expect, it } from 'vitest';
import { repeatingWarning } from '../src/bot-log.ts';

describe('repeatingWarning: an error that repeats every few seconds for hours', () => {
  it('logs the first, then once per 10 minutes with the count, and a new message at once', () => {
    const lines: string[] = [];
    let now = 0;
    const warn = repeatingWarning(
      (level, msg) => lines.push(`${level} ${msg}`),
      () => now,
      'execution stream',
    );
    // An IP ban: the tracker's poll fails every 5 s for 25 minutes.
    for (; now < 25 * 60_000; now += 5_000) warn('IpBanned: banned until 03:30');
    warn('ECONNRESET'); // something else: said at once, after the count of the ban's repeats
    expect(lines).toEqual([
      'warn execution stream: IpBanned: banned until 03:30',
      'warn execution stream: IpBanned: banned until 03:30 (119 more time(s) in the last 10 min)',
      'warn execution stream: IpBanned: banned until 03:30 (119 more time(s) in the last 10 min)',
      'warn execution stream: the previous error came 59 more time(s)',
      'warn execution stream: ECONNRESET',
    ]);
  });
});
