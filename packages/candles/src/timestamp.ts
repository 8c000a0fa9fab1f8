/**
 * Timestamp text or number to UTC epoch ms.
 * - Numbers: seconds, ms, us or ns since the epoch, told apart by magnitude (a 2020s date is ~1.7e9 s,
 *   ~1.7e12 ms, ~1.7e15 us, ~1.7e18 ns); fractions of a second are kept to the ms.
 * - Text: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.fff...]]` with a space or `T`, then an optional zone
 *   (`Z`, `+01:00`, `+0100`, `+01`). No zone means UTC (Binance's convention, see shared/data).
 * NaN when the text is none of these.
 */
export function parseTimestamp(s: string): number {
  const c0 = s.charCodeAt(0);
  if (s.length >= 16 && s.charCodeAt(4) === 45 /* - */ && s.charCodeAt(7) === 45 && s.charCodeAt(13) === 58) {
    const sep = s.charCodeAt(10);
    if (sep !== 32 /* space */ && sep !== 84 /* T */) return Number.NaN;
    const y = num4(s, 0);
    const mo = num2(s, 5);
    const d = num2(s, 8);
    const h = num2(s, 11);
    const mi = num2(s, 14);
    const hasSeconds = s.charCodeAt(16) === 58; /* : */
    const se = hasSeconds ? num2(s, 17) : 0;
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60)
      return Number.NaN;
    let ms = Date.UTC(y, mo - 1, d, h, mi, se);
    let i = hasSeconds ? 19 : 16;
    if (hasSeconds && s.charCodeAt(i) === 46 /* . */) {
      // Fraction digits beyond the ms are dropped (truncated, not rounded: .999999 is still .999).
      let frac = 0;
      let digits = 0;
      i++;
      while (i < s.length) {
        const c = s.charCodeAt(i) - 48;
        if (c < 0 || c > 9) break;
        if (digits < 3) frac = frac * 10 + c;
        digits++;
        i++;
      }
      if (digits === 0) return Number.NaN;
      for (let k = digits; k < 3; k++) frac *= 10;
      ms += frac;
    }
    if (i < s.length) {
      const z = s.slice(i).trim();
      if (z === 'Z' || z === 'z' || z === '') return ms;
      const m = /^([+-])(\d{2})(?::?(\d{2}))?$/.exec(z);
      if (!m) return Number.NaN;
      const off = (Number(m[2]) * 60 + Number(m[3] ?? 0)) * 60_000;
      return m[1] === '+' ? ms - off : ms + off;
    }
    return ms;
  }
  if (s.length === 10 && s.charCodeAt(4) === 45 && s.charCodeAt(7) === 45) {
    const y = num4(s, 0);
    const mo = num2(s, 5);
    const d = num2(s, 8);
    return y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 ? Number.NaN : Date.UTC(y, mo - 1, d);
  }
  if ((c0 >= 48 && c0 <= 57) || c0 === 45) {
    const n = Number(s);
    return Number.isFinite(n) ? epochToMs(n) : Number.NaN;
  }
  return Number.NaN;
}

/** An epoch number in s, ms, us or ns (told apart by magnitude) to ms, truncated to the ms. */
export function epochToMs(n: number): number {
  const a = Math.abs(n);
  if (a >= 1e17) return Math.floor(n / 1e6); // nanoseconds
  if (a >= 1e14) return Math.floor(n / 1000); // microseconds (Binance archives since 2025)
  if (a >= 1e11) return Math.floor(n); // milliseconds
  return Math.floor(n * 1000); // seconds
}

function num2(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}
function num4(s: string, i: number): number {
  const a = num2(s, i);
  const b = num2(s, i + 2);
  return a < 0 || b < 0 ? -1 : a * 100 + b;
}
