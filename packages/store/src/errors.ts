/**
 * A write met a row that is already there with other values under the same key: a fill whose
 * trade id the bot has for another execution, an order id that belongs to another bot, a bot id
 * created again with another definition. Two different facts under one key mean one of them is
 * about to be lost, so the write is refused (its transaction rolled back) and the caller must
 * stop: a bot that trades on with half its record is worse than a bot that stops.
 *
 * An identical re-write (the same fill fetched again after a crash) is not a conflict: it is a
 * no-op the repository reports in its return value.
 */
export class StoreConflictError extends Error {
  /** Stable code, for callers that switch on errors from several layers. */
  readonly code = 'store-conflict';

  constructor(
    /** The table written to. */
    readonly table: string,
    /** The key both rows share, e.g. `{ bot_id: 'b1', trade_id: 'T1' }`. */
    readonly key: Readonly<Record<string, string>>,
    /** The row as the store holds it (the fields that matter for the clash). */
    readonly stored: Readonly<Record<string, unknown>>,
    /** The row that was to be written. */
    readonly attempted: Readonly<Record<string, unknown>>,
    /** What clashed, in a few words (the message's first sentence). */
    summary: string,
    /** Why two rows under one key are a fault here, and what to look at. */
    why: string,
  ) {
    super(
      `${summary} (${table} ${formatKey(key)}, differs in ${differingFields(stored, attempted).join(', ')}): ` +
        `stored ${formatRow(stored)}, new ${formatRow(attempted)}. ${why} Nothing was written.`,
    );
    this.name = 'StoreConflictError';
  }

  /** The fields whose values differ between the stored and the attempted row. */
  get fields(): string[] {
    return differingFields(this.stored, this.attempted);
  }
}

/** The fields whose values differ between two rows (empty: the same row). */
export function differingFields(a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.filter((k) => !sameValue(a[k], b[k]));
}

/**
 * Equal as stored values: `undefined` and `null` both mean "absent"; numbers compare exactly (a
 * double round-trips bit-identical through both engines); JSON documents compare by their text.
 */
function sameValue(a: unknown, b: unknown): boolean {
  const x = a ?? null;
  const y = b ?? null;
  if (typeof x === 'object' && typeof y === 'object') return JSON.stringify(x) === JSON.stringify(y);
  return x === y;
}

function formatKey(key: Readonly<Record<string, string>>): string {
  return Object.entries(key)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
}

/** Times (UTC ms) are shown as ISO times: the message is read by a person, the fields by code. */
const TIME_FIELDS = new Set(['time', 'created_at']);

function formatRow(row: Readonly<Record<string, unknown>>): string {
  const show = (k: string, v: unknown) =>
    v === undefined
      ? 'null'
      : TIME_FIELDS.has(k) && typeof v === 'number' && Number.isFinite(v) && Math.abs(v) < 8.64e15
        ? new Date(v).toISOString()
        : JSON.stringify(v);
  return `{${Object.entries(row)
    .map(([k, v]) => `${k}=${show(k, v)}`)
    .join(', ')}}`;
}
