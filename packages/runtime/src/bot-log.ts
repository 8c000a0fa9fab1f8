import {
  assertNever,
  defineInstrument,
  type EngineEvent,
  humanNumber,
  isOutsideFee,
  isProtectiveTag,
  type OrderRequest,
  type OrderState,
} from '@keel/core';

export type LogLevel = 'info' | 'warn' | 'error';

/**
 * Where a bot's messages go. `msg` is the whole line for a person; `data`, when given, holds the
 * same facts as fields for a machine (a JSON log). Order lines (`OrderLogFields`) are complete in
 * `msg`: a text log prints only it.
 */
export type Logger = (level: LogLevel, msg: string, data?: Record<string, unknown>) => void;

/** What happened to an order, as a log line names it. */
export type OrderLogWhat = 'sent' | 'fill' | 'cancel' | 'deny' | 'reject' | 'expire';

/** The fields of one order line (the JSON log's keys; the bot and the time are the logger's). */
export type OrderLogFields = {
  readonly what: OrderLogWhat;
  readonly side: 'buy' | 'sell';
  /** The order's amount; for a fill, the amount of this fill. */
  readonly amount: number;
  readonly symbol: string;
  readonly type: OrderRequest['type'];
  /** The fill's price; else the order's limit or stop price; for a market order, the price it was decided at. */
  readonly price: number | null;
  readonly id: string;
  readonly reason?: string;
  readonly fee?: number;
  readonly feeAsset?: string;
  /**
   * For a fill whose fee was paid outside its market (BNB): the fee's value in the quote, or null
   * when its asset had no price (not valued).
   */
  readonly feeValue?: number | null;
  /** For a fill: how much of the order has filled now. */
  readonly filled?: number;
  readonly tag?: string;
  /** For a risk denial: the rule, its limit and the value the order would have reached. */
  readonly rule?: string;
  readonly limit?: number;
  readonly actual?: number;
};

const LABEL: Record<OrderLogWhat, string> = {
  sent: 'SENT   ',
  fill: 'FILL   ',
  cancel: 'CANCEL ',
  deny: 'DENIED ',
  reject: 'REJECT ',
  expire: 'EXPIRED',
};

/**
 * One log line for an order sent, filled, cancelled, denied, rejected or expired; nothing for
 * other events. A person at 3 a.m. reads: what, side, amount, symbol, price, id and why.
 */
export function orderLogLine(
  e: EngineEvent,
): { level: LogLevel; msg: string; data: OrderLogFields & { event: string } } | undefined {
  switch (e.type) {
    case 'order.submitted':
      return line('info', e.type, base('sent', e.order));
    case 'order.filled': {
      const f = e.fill;
      return line('info', e.type, {
        ...base('fill', e.order),
        amount: f.amount,
        price: f.price,
        fee: f.fee,
        feeAsset: f.feeAsset,
        ...(f.fee !== 0 && isOutsideFee(defineInstrument({ symbol: f.symbol }), f.feeAsset)
          ? { feeValue: f.feeValue ?? null }
          : {}),
        filled: e.order.filled,
      });
    }
    case 'order.cancelled':
      return line('info', e.type, { ...base('cancel', e.order), reason: e.reason });
    case 'order.denied':
      return line('warn', e.type, {
        ...base('deny', e.order),
        reason: e.reason,
        ...(e.denial ? { rule: e.denial.rule, limit: e.denial.limit, actual: e.denial.actual } : {}),
      });
    case 'order.rejected':
      // A refused stop or exit leaves the position unprotected: an error (counted in the session's errors).
      return line(isProtectiveTag(e.order.request.tag) ? 'error' : 'warn', e.type, {
        ...base('reject', e.order),
        reason: e.reason,
      });
    case 'order.expired':
      return line('info', e.type, { ...base('expire', e.order), reason: e.reason });
    case 'order.accepted':
    case 'order.triggered':
    case 'strategy.error':
    case 'strategy.log':
    case 'risk.halt':
    case 'risk.resume':
    case 'futures.liquidation':
    case 'futures.adl':
    case 'futures.settlement':
    case 'futures.funding':
      return undefined;
    default:
      return assertNever(e);
  }
}

/**
 * One log line for a halt or lock that starts or ends (`risk.halt`, `risk.resume`); nothing for
 * other events. A halt is a warning: the bot stops opening positions until it ends.
 */
export function riskLogLine(
  e: EngineEvent,
): { level: LogLevel; msg: string; data: Record<string, unknown> } | undefined {
  if (e.type !== 'risk.halt' && e.type !== 'risk.resume') return undefined;
  const h = e.halt;
  const scope = h.scope === 'account' ? 'trading' : `entries on ${h.scope}`;
  const data = { event: e.type, rule: h.rule, scope: h.scope, action: h.action, limit: h.limit, actual: h.actual };
  if (e.type === 'risk.halt') {
    const until = h.until === null ? 'until resumed (keel bots resume)' : `until ${new Date(h.until).toISOString()}`;
    return {
      level: 'warn',
      msg: `HALT     ${h.rule} ${h.action === 'flatten' ? 'flattens and halts' : 'halts'} ${scope} ${until}: ${h.message}`,
      data: { ...data, until: h.until },
    };
  }
  return {
    level: 'info',
    msg: `RESUME   ${h.rule} on ${h.scope} ended (${e.by === 'user' ? 'resumed by the user' : 'its time ran out'})`,
    data: { ...data, by: e.by },
  };
}

function base(what: OrderLogWhat, o: OrderState): OrderLogFields {
  const r = o.request;
  return {
    what,
    side: r.side,
    amount: r.amount,
    symbol: r.symbol,
    type: r.type,
    price: orderPrice(r, o),
    id: r.id,
    ...(r.tag ? { tag: r.tag } : {}),
  };
}

function orderPrice(r: OrderRequest, o: OrderState): number | null {
  switch (r.type) {
    case 'limit':
    case 'stop-limit':
      return r.price;
    case 'stop-market':
      return r.stopPrice;
    case 'market':
    case 'trailing-stop':
      return Number.isFinite(o.stopLevel) && r.type === 'trailing-stop'
        ? o.stopLevel
        : Number.isFinite(o.decisionPrice)
          ? o.decisionPrice
          : null;
    default:
      return assertNever(r);
  }
}

function line(level: LogLevel, event: string, f: OrderLogFields) {
  return { level, msg: formatOrderLine(f), data: { event, ...f } };
}

/**
 * `FILL    buy 0.097 BTC/USDT @ 42001.2  fee 0.000097 BTC  id k…-1  (filled 0.097)`; a fee paid in
 * BNB says what it was worth: `fee 0.0226 BNB (7.12 USDT)`.
 */
export function formatOrderLine(f: OrderLogFields): string {
  // For a person: 10 significant digits (a sum of fills' doubles, 0.36146999999999996, reads
  // 0.36147); the JSON log's fields keep the full values.
  const n = (x: number) => humanNumber(x);
  const price =
    f.price === null
      ? ''
      : f.what === 'fill'
        ? ` @ ${n(f.price)}`
        : f.type === 'market'
          ? ` market ~${n(f.price)}`
          : ` ${f.type} ${n(f.price)}`;
  const parts = [`${LABEL[f.what]} ${f.side} ${n(f.amount)} ${f.symbol}${price}`];
  if (f.what === 'fill' && f.fee !== undefined) {
    const worth =
      f.feeValue === undefined
        ? ''
        : f.feeValue === null
          ? ` (not valued: no ${f.feeAsset} price)`
          : ` (${Number(f.feeValue.toFixed(8))} ${defineInstrument({ symbol: f.symbol }).settle})`;
    parts.push(`fee ${n(f.fee)}${f.feeAsset ? ` ${f.feeAsset}` : ''}${worth}`);
  }
  parts.push(`id ${f.id}`);
  if (f.tag) parts.push(`tag ${f.tag}`);
  if (f.what === 'fill' && f.filled !== undefined) parts.push(`(filled ${n(f.filled)})`);
  if (f.reason) parts.push(`reason: ${f.reason}`);
  return parts.join('  ');
}

/**
 * A log line as text: `2024-03-01T03:00:00.123Z INFO  [bot] message {data}`; the lines of engine
 * events (orders, halts: their data has `event`) are complete in their message and print no data.
 */
export function textLogLine(
  time: number,
  botId: string,
  level: LogLevel,
  msg: string,
  data?: Record<string, unknown>,
): string {
  const extra = data && !('event' in data) ? ` ${JSON.stringify(data)}` : '';
  return `${new Date(time).toISOString()} ${level.toUpperCase().padEnd(5)} [${botId}] ${msg}${extra}\n`;
}

/** A log line as one JSON object: time (ISO), level, bot, msg, then the data's fields. */
export function jsonLogLine(
  time: number,
  botId: string,
  level: LogLevel,
  msg: string,
  data?: Record<string, unknown>,
): string {
  return `${JSON.stringify({ time: new Date(time).toISOString(), level, bot: botId, msg, ...data })}\n`;
}

/**
 * A warning that can repeat every few seconds for hours (the order tracker polling through an IP
 * ban or an outage): the first line is logged, the same message again only once per `everyMs`
 * with how many times it came meanwhile, and a different message at once (after a line that
 * counts the previous one's repeats). At 3 a.m. the log says what is wrong and that it goes on,
 * not the same line 720 times an hour.
 */
export function repeatingWarning(log: Logger, now: () => number, prefix: string, everyMs = 600_000) {
  let last: string | undefined;
  let lastAt = Number.NEGATIVE_INFINITY;
  let repeats = 0;
  return (message: string): void => {
    const t = now();
    if (message === last && t - lastAt < everyMs) {
      repeats++;
      return;
    }
    if (message === last)
      log(
        'warn',
        `${prefix}: ${message} (${repeats} more time(s) in the last ${Math.round((t - lastAt) / 60_000)} min)`,
      );
    else {
      if (last !== undefined && repeats > 0) log('warn', `${prefix}: the previous error came ${repeats} more time(s)`);
      log('warn', `${prefix}: ${message}`);
    }
    last = message;
    lastAt = t;
    repeats = 0;
  };
}
