/**
 * Durations as people write them on a command line or in a config file: a positive number and a
 * unit, `ms`, `s`, `m` (minutes), `h`, `d` or `w` (`30m`, `1.5h`, `7d`). Months are not a
 * duration (their length varies): use days.
 */
const UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** The duration in ms, or null when `text` is not `<number><unit>` with a unit above. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/.exec(text);
  if (!m) return null;
  const ms = Number(m[1]) * (UNITS[m[2] as string] as number);
  return Number.isFinite(ms) ? Math.round(ms) : null;
}

/** A duration in ms as the shortest exact text `parseDuration` reads back (90000 -> "90s"). */
export function durationText(ms: number): string {
  for (const u of ['w', 'd', 'h', 'm', 's'] as const) {
    const size = UNITS[u] as number;
    if (ms >= size && ms % size === 0) return `${ms / size}${u}`;
  }
  return `${ms}ms`;
}
