/** Bar timeframes in ccxt/Binance notation. '1M' is one calendar month, '1w' starts on Monday UTC. */
export const TIMEFRAMES = [
  '1s',
  '1m',
  '3m',
  '5m',
  '15m',
  '30m',
  '1h',
  '2h',
  '4h',
  '6h',
  '8h',
  '12h',
  '1d',
  '3d',
  '1w',
  '1M',
] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

const MS: Record<Timeframe, number> = {
  '1s': 1_000,
  '1m': 60_000,
  '3m': 180_000,
  '5m': 300_000,
  '15m': 900_000,
  '30m': 1_800_000,
  '1h': 3_600_000,
  '2h': 7_200_000,
  '4h': 14_400_000,
  '6h': 21_600_000,
  '8h': 28_800_000,
  '12h': 43_200_000,
  '1d': 86_400_000,
  '3d': 259_200_000,
  '1w': 604_800_000,
  '1M': 2_678_400_000, // nominal (31 days); use timeframeStart/timeframeEnd for calendar months
};

export function isTimeframe(s: string): s is Timeframe {
  return (TIMEFRAMES as readonly string[]).includes(s);
}

export function parseTimeframe(s: string): Timeframe {
  if (!isTimeframe(s)) {
    throw new Error(`Unknown timeframe "${s}": expected one of ${TIMEFRAMES.join(', ')}`);
  }
  return s;
}

/** Nominal length in ms (calendar months are not fixed: see timeframeEnd). */
export function timeframeMs(tf: Timeframe): number {
  return MS[tf];
}

/** 1970-01-01 was a Thursday; Binance weeks start Monday 00:00 UTC, i.e. epoch + 4 days. */
const WEEK_OFFSET = 4 * 86_400_000;

/** Open time of the bar of timeframe `tf` that contains instant `t` (UTC alignment, as Binance). */
export function timeframeStart(tf: Timeframe, t: number): number {
  if (tf === '1M') {
    const { y, m } = civilFromDays(Math.floor(t / 86_400_000));
    return daysFromCivil(y, m, 1) * 86_400_000;
  }
  if (tf === '1w') {
    return Math.floor((t - WEEK_OFFSET) / MS['1w']) * MS['1w'] + WEEK_OFFSET;
  }
  const ms = MS[tf];
  return Math.floor(t / ms) * ms;
}

/** Open time of the next bar after the one that opens at `start` (exclusive end of the bar). */
export function timeframeEnd(tf: Timeframe, start: number): number {
  if (tf === '1M') {
    const { y, m } = civilFromDays(Math.floor(start / 86_400_000));
    return (m === 12 ? daysFromCivil(y + 1, 1, 1) : daysFromCivil(y, m + 1, 1)) * 86_400_000;
  }
  return start + MS[tf];
}

// Calendar arithmetic without Date (core has no ambient time): Howard Hinnant's civil algorithms.
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

export function civilFromDays(z: number): { y: number; m: number; d: number } {
  const zz = z + 719468;
  const era = Math.floor(zz / 146097);
  const doe = zz - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return { y: yoe + era * 400 + (m <= 2 ? 1 : 0), m, d };
}

/** ISO-8601 UTC text for a ms timestamp, without Date: 2024-01-01T00:00:00Z. */
export function isoUtc(t: number): string {
  const days = Math.floor(t / 86_400_000);
  const { y, m, d } = civilFromDays(days);
  let r = t - days * 86_400_000;
  const hh = Math.floor(r / 3_600_000);
  r -= hh * 3_600_000;
  const mm = Math.floor(r / 60_000);
  r -= mm * 60_000;
  const ss = Math.floor(r / 1000);
  const ms = r - ss * 1000;
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${String(y).padStart(4, '0')}-${p2(m)}-${p2(d)}T${p2(hh)}:${p2(mm)}:${p2(ss)}${ms ? '.' + String(ms).padStart(3, '0') : ''}Z`;
}
