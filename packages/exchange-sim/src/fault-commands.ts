/**
 * Faults as commands: a small closed set of kinds, each mapped onto `SimFaults`, that a running
 * simulator accepts over its admin endpoint (`keel exchange-sim fault`). Parsing is shared by the
 * CLI (which checks before it sends) and the endpoint (which checks what it receives).
 */
import type { ForcedOrderSummary, SimFaults, WsKind } from './faults.ts';
import { assertNever } from './num.ts';

export const FAULT_KINDS = [
  '429',
  '5xx',
  'hold',
  'ws-drop',
  'ws-stall',
  'clock-skew',
  'reject-next',
  'adl',
  'delist',
  'relist',
  'settle',
  'reset',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type WsTarget = WsKind | 'all';
const WS_TARGETS: readonly WsTarget[] = ['market', 'user', 'api', 'all'];

export type FaultCommand =
  | { kind: '429'; count: number; path: string | undefined }
  | { kind: '5xx'; count: number; path: string | undefined; status: number }
  | { kind: 'hold'; count: number; path: string | undefined; ms: number | undefined; execute: boolean }
  | { kind: 'ws-drop'; ws: WsTarget }
  | { kind: 'ws-stall'; ws: WsTarget; ms: number | undefined }
  | { kind: 'clock-skew'; ms: number }
  | { kind: 'reject-next'; count: number }
  | { kind: 'adl'; apiKey: string; symbol: string; qty: number | undefined; price: number | undefined }
  | { kind: 'delist'; symbol: string; price: number | undefined; later: boolean }
  | { kind: 'relist'; symbol: string }
  | { kind: 'settle'; symbol: string; price: number | undefined }
  | { kind: 'reset' };

/** A fault command as sent over the wire (and as the CLI's flags name it). */
export interface FaultRequest {
  kind: string;
  count?: number;
  ms?: number;
  path?: string;
  status?: number;
  ws?: string;
  execute?: boolean;
  /** adl, delist, relist, settle: the market (LINKUSDT, LINK/USDT or LINK/USDT:USDT). */
  symbol?: string;
  /** adl: the account whose position is deleveraged. */
  apiKey?: string;
  /** adl: how much (default the whole position). */
  qty?: number;
  /** adl: the close price; delist, settle: the settlement price (default the last price). */
  price?: number;
  /** delist: leave the positions open (status SETTLING, orders refused) until a `settle`. */
  later?: boolean;
}

type FaultOption = Exclude<keyof FaultRequest, 'kind'>;

interface KindSpec {
  /** One line: what the fault does, as a client sees it. */
  summary: string;
  options: readonly FaultOption[];
  /** Default of --count, for the kinds that take it. */
  count?: number;
}

/** Every kind, what it does and which options it takes (the CLI help and the docs list this). */
export const FAULT_KIND_SPECS: Readonly<Record<FaultKind, KindSpec>> = {
  '429': {
    summary: 'the next N requests get HTTP 429 / -1003 with Retry-After, unexecuted (ccxt: DDoSProtection)',
    options: ['count', 'path'],
    count: 5,
  },
  '5xx': {
    summary: 'the next N requests get an HTTP 5xx gateway page, unexecuted (ccxt: ExchangeNotAvailable)',
    options: ['count', 'path', 'status'],
    count: 3,
  },
  hold: {
    summary:
      'the next N requests are answered after --ms, or never (ccxt: RequestTimeout); --execute runs them at once',
    options: ['count', 'path', 'ms', 'execute'],
    count: 1,
  },
  'ws-drop': {
    summary: 'drops WebSocket connections without a close frame (ccxt: NetworkError, then reconnects)',
    options: ['ws'],
  },
  'ws-stall': {
    summary: 'WebSocket connections stay open but send nothing (and answer no ping) for --ms, or until reset',
    options: ['ws', 'ms'],
  },
  'clock-skew': {
    summary: "shifts the server's clock for signed timestamps by --ms (ccxt: InvalidNonce, -1021)",
    options: ['ms'],
  },
  'reject-next': {
    summary: 'the next N order placements fail with -2010 "New order rejected." (ccxt: InvalidOrder)',
    options: ['count'],
    count: 1,
  },
  adl: {
    summary:
      "USD-M: auto-deleverages --api-key's position in --symbol (--qty, default all) at --price (default the last price): an adl_autoclose order",
    options: ['apiKey', 'symbol', 'qty', 'price'],
  },
  delist: {
    summary:
      'delists --symbol. USD-M: exchangeInfo SETTLING, new orders -4141, open orders cancelled, every position settled at --price (settlement_autoclose- orders, taker fee); --later: settle later. Spot: trading halts (exchangeInfo BREAK, new orders -1013 "Market is closed.", open orders cancelled; the coins stay in the accounts)',
    options: ['symbol', 'price', 'later'],
  },
  relist: {
    summary: 'spot: trading resumes in a pair halted by delist (exchangeInfo TRADING again)',
    options: ['symbol'],
  },
  settle: {
    summary: 'USD-M: settles every position of a contract delisted with --later, at --price',
    options: ['symbol', 'price'],
  },
  reset: { summary: 'clears every pending fault', options: [] },
};

/** A fault command that cannot be run: the message names the kind or option at fault. */
export class FaultCommandError extends Error {
  override name = 'FaultCommandError';
}

const MAX_COUNT = 1_000_000;
const MAX_MS = 86_400_000;

function isFaultKind(kind: string): kind is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(kind);
}

/** Checks a fault request (from the CLI or the wire) and fills in the defaults. */
export function parseFaultCommand(input: unknown): FaultCommand {
  if (typeof input !== 'object' || input === null) throw new FaultCommandError('a fault command is a JSON object');
  const req: Record<string, unknown> = { ...input };
  const kind = req.kind;
  if (typeof kind !== 'string' || !isFaultKind(kind))
    throw new FaultCommandError(`unknown fault kind "${String(kind)}" (kinds: ${FAULT_KINDS.join(', ')})`);
  const spec = FAULT_KIND_SPECS[kind];
  for (const [name, value] of Object.entries(req)) {
    if (name === 'kind' || value === undefined) continue;
    if (!(spec.options as readonly string[]).includes(name)) {
      const takes =
        spec.options.length > 0 ? `it takes ${spec.options.map((o) => flag(o)).join(', ')}` : 'it takes none';
      throw new FaultCommandError(`${flag(name)} does not apply to fault ${kind} (${takes})`);
    }
  }
  const count = (): number => integer(req.count, 'count', 1, MAX_COUNT) ?? spec.count ?? 1;
  const path = (): string | undefined => {
    const p = req.path;
    if (p === undefined) return undefined;
    if (typeof p !== 'string' || !p.startsWith('/'))
      throw new FaultCommandError(`--path must be a request path starting with /, such as /api/v3/order`);
    return p;
  };
  const ws = (): WsTarget => {
    const w = req.ws ?? 'all';
    const target = WS_TARGETS.find((t) => t === w);
    if (target === undefined) throw new FaultCommandError(`--ws must be one of ${WS_TARGETS.join(', ')}`);
    return target;
  };
  const text = (name: 'symbol' | 'apiKey'): string => {
    const v = req[name];
    if (typeof v !== 'string' || v === '') throw new FaultCommandError(`fault ${kind} needs ${flag(name)}`);
    return v;
  };
  const price = (): number | undefined => positive(req.price, 'price');
  switch (kind) {
    case '429':
      return { kind, count: count(), path: path() };
    case 'adl':
      return { kind, apiKey: text('apiKey'), symbol: text('symbol'), qty: positive(req.qty, 'qty'), price: price() };
    case 'delist': {
      const later = req.later ?? false;
      if (typeof later !== 'boolean') throw new FaultCommandError('--later is a flag (true or false)');
      return { kind, symbol: text('symbol'), price: price(), later };
    }
    case 'relist':
      return { kind, symbol: text('symbol') };
    case 'settle':
      return { kind, symbol: text('symbol'), price: price() };
    case '5xx':
      return { kind, count: count(), path: path(), status: integer(req.status, 'status', 500, 599) ?? 503 };
    case 'hold': {
      const execute = req.execute ?? false;
      if (typeof execute !== 'boolean') throw new FaultCommandError('--execute is a flag (true or false)');
      return { kind, count: count(), path: path(), ms: integer(req.ms, 'ms', 1, MAX_MS), execute };
    }
    case 'ws-drop':
      return { kind, ws: ws() };
    case 'ws-stall':
      return { kind, ws: ws(), ms: integer(req.ms, 'ms', 1, MAX_MS) };
    case 'clock-skew': {
      const ms = integer(req.ms, 'ms', -MAX_MS, MAX_MS);
      if (ms === undefined)
        throw new FaultCommandError('fault clock-skew needs --ms N (negative: the server is behind)');
      return { kind, ms };
    }
    case 'reject-next':
      return { kind, count: count() };
    case 'reset':
      return { kind };
    default:
      return assertNever(kind);
  }
}

/** An option's command-line flag: the wire's `apiKey` is `--api-key`. */
function flag(name: string): string {
  return name === 'apiKey' ? '--api-key' : `--${name}`;
}

function positive(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new FaultCommandError(`--${name} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function integer(v: unknown, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new FaultCommandError(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return v;
}

/** What the exchange refuses to do (no such market, no position, not delisted) is the command's error. */
function refused<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Error && !(e instanceof FaultCommandError)) throw new FaultCommandError(e.message);
    throw e;
  }
}

/** `settled 2 positions: 100 SELL at 6.9 (settlement_autoclose-..., order 8000004), ...`. */
function closed(what: string, orders: readonly ForcedOrderSummary[]): string {
  if (orders.length === 0) return `${what} nothing (no position)`;
  const each = orders.map(
    (o) => `${o.qty} ${o.side} at ${o.price} (${o.clientOrderId}, order ${o.orderId}, account ${o.apiKey})`,
  );
  return `${what} ${orders.length} position${orders.length === 1 ? '' : 's'}: ${each.join('; ')}`;
}

/** Runs a fault command on a simulator's faults; returns what was done, in words. */
export function applyFault(faults: SimFaults, cmd: FaultCommand): string {
  /** "the next request to /p* gets" / "the next 3 requests get": subject plus verb, agreed. */
  const next = (count: number, path: string | undefined, one: string, many: string): string =>
    `the next ${count === 1 ? 'request' : `${count} requests`}${path ? ` to ${path}*` : ''} ${count === 1 ? one : many}`;
  switch (cmd.kind) {
    case '429':
      faults.rateLimitStorm({ count: cmd.count, ...(cmd.path ? { path: cmd.path } : {}) });
      return `${next(cmd.count, cmd.path, 'gets', 'get')} HTTP 429 / -1003`;
    case '5xx':
      faults.httpErrorBurst({ count: cmd.count, status: cmd.status, ...(cmd.path ? { path: cmd.path } : {}) });
      return `${next(cmd.count, cmd.path, 'gets', 'get')} HTTP ${cmd.status}, unexecuted`;
    case 'hold': {
      faults.holdHttpResponses({
        count: cmd.count,
        execute: cmd.execute,
        ...(cmd.path ? { path: cmd.path } : {}),
        ...(cmd.ms !== undefined ? { ms: cmd.ms } : {}),
      });
      const when = cmd.ms === undefined ? 'never' : `after ${cmd.ms} ms`;
      return cmd.execute
        ? `${next(cmd.count, cmd.path, 'runs', 'run')} at once; the answer comes ${when}`
        : `${next(cmd.count, cmd.path, 'is', 'are')} answered ${when}`;
    }
    case 'ws-drop': {
      const n = faults.dropWebSockets({ kind: cmd.ws });
      return `dropped ${n} WebSocket connection${n === 1 ? '' : 's'} (${cmd.ws})`;
    }
    case 'ws-stall':
      faults.stallWebSockets({ kind: cmd.ws, ...(cmd.ms !== undefined ? { ms: cmd.ms } : {}) });
      return `WebSocket connections (${cmd.ws}) stalled ${cmd.ms === undefined ? 'until reset' : `for ${cmd.ms} ms`}`;
    case 'clock-skew':
      faults.skewServerClock(cmd.ms);
      return `the signed-timestamp clock is shifted by ${cmd.ms >= 0 ? '+' : ''}${cmd.ms} ms`;
    case 'reject-next':
      faults.rejectNextOrder({ count: cmd.count });
      return `the next ${cmd.count === 1 ? 'order placement is' : `${cmd.count} order placements are`} rejected (-2010)`;
    case 'adl':
      return closed(
        'auto-deleveraged',
        refused(() => faults.exchangeCloses().autoDeleverage(cmd.apiKey, cmd.symbol, cmd.qty, cmd.price)),
      );
    case 'delist': {
      const spot = faults.spotHalts();
      if (spot !== undefined) {
        if (cmd.price !== undefined || cmd.later)
          throw new FaultCommandError(
            'fault delist on spot: a halted pair has no settlement (no --price, no --later): its coins stay in the accounts',
          );
        const n = refused(() => spot.delist(cmd.symbol));
        return `${cmd.symbol} halted (status BREAK, new orders refused with -1013 "Market is closed."); ${n} open order${n === 1 ? '' : 's'} cancelled by the exchange; the coins stay in the accounts`;
      }
      const settled = refused(() =>
        faults
          .exchangeCloses()
          .delist(cmd.symbol, { ...(cmd.price !== undefined ? { price: cmd.price } : {}), settle: !cmd.later }),
      );
      return `${cmd.symbol} delisted (status SETTLING, new orders refused, open orders cancelled)${cmd.later ? '; positions left to a settle' : `; ${closed('settled', settled)}`}`;
    }
    case 'relist': {
      const spot = faults.spotHalts();
      if (spot === undefined)
        throw new FaultCommandError('fault relist is spot only: a delisted USD-M contract does not trade again');
      refused(() => spot.relist(cmd.symbol));
      return `${cmd.symbol} trading again (status TRADING)`;
    }
    case 'settle':
      return closed(
        'settled',
        refused(() => faults.exchangeCloses().settle(cmd.symbol, cmd.price)),
      );
    case 'reset':
      faults.reset();
      return 'every pending fault cleared';
    default:
      return assertNever(cmd);
  }
}
