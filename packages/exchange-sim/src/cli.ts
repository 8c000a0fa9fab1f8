/**
 * `keel exchange-sim ...`: runs a simulator (`keel exchange-sim --data ...`) or injects a fault
 * into a running one (`keel exchange-sim fault --port P <kind>`), over its admin endpoint.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { fileNameFacts, fileSymbolConflict } from '@keel/candles';
import { parseSymbolList } from '@keel/core';
import { ADMIN_FAULT_PATH, sendFaultCommand } from './admin.ts';
import {
  FAULT_KIND_SPECS,
  FAULT_KINDS,
  FaultCommandError,
  type FaultRequest,
  parseFaultCommand,
} from './fault-commands.ts';
import { DEFAULT_FUNDING_RATE, DEFAULT_LIQUIDATION_FEE } from './futures-venue.ts';
import { assertNever } from './num.ts';
import { type ExchangeSim, startExchangeSim } from './sim.ts';

const DEFAULT_PORT = 8900;

function faultKindLines(): string {
  const width = Math.max(...FAULT_KINDS.map((k) => k.length));
  return FAULT_KINDS.map((kind) => {
    const spec = FAULT_KIND_SPECS[kind];
    const options = spec.options.map((o) => `--${o}`).join(' ');
    const count = spec.count !== undefined ? `; --count default ${spec.count}` : '';
    return `  ${kind.padEnd(width)}  ${spec.summary}${options ? `\n  ${' '.repeat(width)}  options: ${options}${count}` : ''}`;
  }).join('\n');
}

export const EXCHANGE_SIM_FAULT_HELP = `keel exchange-sim fault — inject a fault into a running simulator

Usage:
  keel exchange-sim fault [--port ${DEFAULT_PORT}] <kind> [--count N] [--ms N] [--path P] [--status N]
                          [--ws market|user|api|all] [--execute]
                          [--symbol S] [--api-key K] [--qty Q] [--price P] [--later]

The simulator must run on this machine with --admin (keel exchange-sim --data ... --admin); the
fault goes to its admin endpoint, POST http://127.0.0.1:<port>${ADMIN_FAULT_PATH}.

Kinds:
${faultKindLines()}

Options:
  --port N     the simulator's port (default ${DEFAULT_PORT})
  --count N    how many requests / order placements are affected
  --ms N       hold: answer after N ms (omitted: never); ws-stall: for N ms (omitted: until reset);
               clock-skew: shift by N ms (a negative shift needs --ms=-N)
  --path P     only requests whose path starts with P, e.g. /api/v3/order (default: every path)
  --status N   5xx: the HTTP status, 500-599 (default 503; 504 is a RequestTimeout for ccxt)
  --ws K       ws-drop / ws-stall: market, user, api or all connections (default all)
  --execute    hold: run the request at once and lose only its answer (an order in doubt)
  --symbol S   adl, delist, relist, settle: the market (LINKUSDT, LINK/USDT or LINK/USDT:USDT)
  --api-key K  adl: the account whose position is deleveraged
  --qty Q      adl: how much of the position (default all)
  --price P    adl: the close price; delist (USD-M), settle: the settlement price (default the last price)
  --later      delist (USD-M): leave the positions open (status SETTLING, orders refused) for a later settle

Exit codes: 0 applied, 1 the simulator could not be reached or refused, 2 usage error.
`;

export const EXCHANGE_SIM_HELP = `keel exchange-sim — a local exchange speaking Binance's protocol (REST + WebSocket):
spot, or USD-M perpetual futures with --market futures

Usage:
  keel exchange-sim --data <csv[.gz]> [--symbol BTC/USDT] [--port ${DEFAULT_PORT}] [--speed 60]
                    [--api-key K --secret S] [--balance USDT=10000,BTC=1] [--admin]
  keel exchange-sim --market futures --data <csv[.gz]> --symbol LINK/USDT
                    [--funding <file> | --funding-rate R] [--leverage 20] [--margin cross|isolated]
  keel exchange-sim fault [--port ${DEFAULT_PORT}] <kind> [--count N] [--ms N] [--path P]   (see fault --help)

Options:
  --market M         spot (default) or futures (Binance USD-M: /fapi REST, /market/ws, /private/ws)
  --data FILE        candles to replay (CSV or CSV.GZ), one market each (repeat it for several,
                     with --symbol A,B in the same order): header datetime|timestamp|open_time,open,
                     high,low,close,volume (UTC text or epoch ms), or Binance's 12-column klines
  --symbol S         unified symbol of the market, BASE/QUOTE (default: the file name's market,
                     else BTC/USDT); a list A,B for several --data files. A market the file's
                     name contradicts is refused
  --port N           port on 127.0.0.1 (default ${DEFAULT_PORT}; 0 = random)
  --host H           interface to bind (default 127.0.0.1)
  --speed X          replay speed vs wall time (default 1; 60 = one minute per second)
  --start T          replay start (ISO time or epoch ms); earlier bars are history (klines only)
  --tick-size N --step-size N --min-notional N      market filters (default 0.01, 0.00001, 5)
  --maker R --taker R                               fee rates (default 0.001 each; futures 0.0002 / 0.0005)
  --participation R  max share of a bar's volume the sim's orders can fill (default 0.1)
  --api-key K --secret S   the account's credentials (generated and printed when omitted)
  --balance LIST     starting balances, ASSET=amount comma-separated (default USDT=10000)
  --admin            serve the admin endpoint on loopback so 'keel exchange-sim fault' can inject
                     faults (refused with a non-loopback --host)
  --bnb-fees         the account pays its fees with BNB (Binance's 25 % discount: 75 % of the rate,
                     in BNB, while its BNB covers it; put BNB in --balance); needs --bnb-data
  --bnb-data FILE    candles of BNB/<quote> (the quote of --symbol), a second market that prices
                     the commission in BNB

Futures (--market futures):
  --funding FILE     the funding series to apply on schedule: Binance's archive CSV
                     (calc_time,funding_interval_hours,last_funding_rate, .gz too) or ccxt's
                     fetchFundingRateHistory rows as JSON
  --funding-rate R   a constant rate every 8 h from 00:00 UTC instead (default 0.0001, Binance's
                     baseline); funding data missing over the replay is printed as a warning
  --leverage N       the leverage of a symbol until the account sets one (default 20)
  --margin M         cross (default) or isolated, until the account sets one
  --liquidation-fee R  the clearance fee rate of a liquidation (default 0.0125)
  The mark price is the last price; brackets are core's DEFAULT_USDM_BRACKETS.

Markets: one per --data file (and BNB/<quote> with --bnb-data); programmatic use (startExchangeSim) too, each with
  its own bars, tickSize, stepSize, minQty, minNotional.
Accounts: each has an apiKey/secret (HMAC-SHA256) and free balances; add more with sim.addAccount().
Endpoints: REST /api/v3/* (ping, time, exchangeInfo, klines, depth, trades, historicalTrades,
  aggTrades, ticker/24hr, ticker/price, ticker/bookTicker, account, order, order/cancelReplace,
  orderList/oco, orderList, openOrders, allOrders, myTrades, userDataStream); WS market streams at
  /ws and /stream (trade, aggTrade, kline_<i>, bookTicker, depth, depth@100ms, depth<N>, ticker,
  miniTicker); WS API at /ws-api/v3 (userDataStream.subscribe.signature, order.place,
  order.cancel, order.status, account.status, trades.historical...).
ccxt: new ccxt.binance(ccxtConfigFor(sim, { apiKey, secret })) from @keel/exchange-sim.
Faults from the command line (with --admin): keel exchange-sim fault <kind>, kinds
  ${FAULT_KINDS.join(', ')}.
Faults (programmatic, sim.faults): dropWebSockets, stallWebSockets/resumeWebSockets,
  delayWsMessages, duplicateWsMessages, reorderWsMessages, httpErrorBurst, rateLimitStorm,
  holdHttpResponses, skewServerClock, rejectNextOrder, fillOpenOrdersWhileDisconnected, reset.
Docs: docs/exchange-sim.md
`;

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${v}"`);
  return n;
}

export interface ExchangeSimCliIo {
  out?: NodeJS.WritableStream;
  /** Where `fault` writes its one-line errors (default stderr). */
  err?: NodeJS.WritableStream;
  /** Stops the simulator when aborted (besides SIGINT / SIGTERM). */
  signal?: AbortSignal;
  /** Called once the simulator listens (tests use it to reach the server). */
  onStarted?: (sim: ExchangeSim) => void;
}

/**
 * `keel exchange-sim ...` (argv excludes the command name). Serving runs until SIGINT/SIGTERM and
 * throws on bad options; `fault` returns its exit code (0 applied, 1 failed, 2 usage).
 */
export async function runExchangeSimCli(argv: string[], io: ExchangeSimCliIo = {}): Promise<number> {
  if (argv[0] === 'fault') return runFaultCli(argv.slice(1), io);
  await serve(argv, io);
  return 0;
}

async function serve(argv: string[], io: ExchangeSimCliIo): Promise<void> {
  const out = io.out ?? process.stdout;
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', short: 'h' },
      data: { type: 'string', multiple: true },
      symbol: { type: 'string' },
      port: { type: 'string', default: String(DEFAULT_PORT) },
      host: { type: 'string', default: '127.0.0.1' },
      speed: { type: 'string', default: '1' },
      start: { type: 'string' },
      'tick-size': { type: 'string' },
      'step-size': { type: 'string' },
      'min-notional': { type: 'string' },
      maker: { type: 'string' },
      taker: { type: 'string' },
      participation: { type: 'string' },
      'api-key': { type: 'string' },
      secret: { type: 'string' },
      balance: { type: 'string', default: 'USDT=10000' },
      admin: { type: 'boolean', default: false },
      'bnb-fees': { type: 'boolean', default: false },
      'bnb-data': { type: 'string' },
      market: { type: 'string', default: 'spot' },
      funding: { type: 'string' },
      'funding-rate': { type: 'string' },
      leverage: { type: 'string' },
      margin: { type: 'string' },
      'liquidation-fee': { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    out.write(EXCHANGE_SIM_HELP);
    return;
  }
  const files = values.data ?? [];
  if (files.length === 0) throw new Error('keel exchange-sim: --data <csv file> is required (see --help)');
  // One market per --data file, in --symbol's order (without --symbol: each file's name's market,
  // BTC/USDT for one file whose name says none), as keel backtest maps its files: a multi-market bot
  // can be pointed at the simulator from the command line. A market the file's name contradicts is
  // refused: ETH bars served as BTC/USDT would be a wrong result nobody sees.
  let symbols: string[];
  try {
    const named = files.map((f) => fileNameFacts(f).symbol);
    symbols =
      values.symbol !== undefined
        ? parseSymbolList(values.symbol)
        : named.every((x) => x !== undefined)
          ? (named as string[])
          : ['BTC/USDT'];
  } catch (e) {
    throw new Error(`--symbol: ${(e as Error).message}`);
  }
  if (symbols.length !== files.length)
    throw new Error(
      `--symbol lists ${symbols.length} market${symbols.length === 1 ? '' : 's'} for ${files.length} --data file${files.length === 1 ? '' : 's'}: give one market per file, in the same order`,
    );
  for (const [i, f] of files.entries()) {
    const conflict = fileSymbolConflict(f, symbols[i] as string);
    if (conflict !== undefined) throw new Error(`--data ${conflict}`);
  }
  const primary = symbols[0] as string;
  if (values.market === 'futures' && symbols.length > 1 && values.funding !== undefined)
    throw new Error("--funding is one contract's series: with several markets give --funding-rate (applied to each)");
  if (values.market !== 'spot' && values.market !== 'futures')
    throw new Error(`--market must be spot or futures, got "${values.market}"`);
  const futures = values.market === 'futures';
  const futuresOnly = ['funding', 'funding-rate', 'leverage', 'margin', 'liquidation-fee'] as const;
  if (!futures) {
    const given = futuresOnly.filter((k) => values[k] !== undefined);
    if (given.length > 0) throw new Error(`--${given[0]} applies to --market futures only`);
  }
  if (futures && (values['bnb-fees'] || values['bnb-data'] !== undefined))
    throw new Error('--bnb-fees and --bnb-data apply to spot only (the USD-M simulator has no BNB fee discount)');
  const quote = primary.split(':')[0]?.split('/')[1] ?? '';
  // BNB/<quote> prices the commission: one of the markets, or --bnb-data.
  const bnbMarket =
    primary.split('/')[0] === 'BNB' || quote === 'BNB' || symbols.includes(`BNB/${quote}`) ? undefined : `BNB/${quote}`;
  if (values['bnb-fees'] && bnbMarket !== undefined && values['bnb-data'] === undefined)
    throw new Error(
      `--bnb-fees prices each commission at the last price of ${bnbMarket}: give its candles with --bnb-data <csv file> (e.g. Binance's BNB${quote} 1m klines over the same time)`,
    );
  if (values['bnb-data'] !== undefined && bnbMarket !== undefined) {
    const conflict = fileSymbolConflict(values['bnb-data'], bnbMarket);
    if (conflict !== undefined) throw new Error(`--bnb-data ${conflict}`);
  }
  if (values['bnb-data'] !== undefined && bnbMarket === undefined)
    throw new Error(`--bnb-data: the markets (${symbols.join(', ')}) price BNB themselves; no other market is needed`);
  if (values.funding !== undefined && values['funding-rate'] !== undefined)
    throw new Error('give --funding <file> or --funding-rate R, not both');
  if (values.margin !== undefined && values.margin !== 'cross' && values.margin !== 'isolated')
    throw new Error(`--margin must be cross or isolated, got "${values.margin}"`);
  const fundingRate = num(values['funding-rate'], 'funding-rate');
  const leverage = num(values.leverage, 'leverage');
  const liquidationFee = num(values['liquidation-fee'], 'liquidation-fee');
  if ((values['api-key'] === undefined) !== (values.secret === undefined))
    throw new Error('--api-key and --secret go together');
  const generated = values['api-key'] === undefined;
  const apiKey = values['api-key'] ?? randomBytes(24).toString('hex');
  const secret = values.secret ?? randomBytes(32).toString('hex');
  const balances: Record<string, number> = {};
  for (const part of values.balance.split(',')) {
    const [asset, amount] = part.split('=');
    if (!asset || amount === undefined || !Number.isFinite(Number(amount)))
      throw new Error(`--balance: bad entry "${part}" (want ASSET=amount)`);
    balances[asset.trim()] = Number(amount);
  }
  const start =
    values.start === undefined
      ? undefined
      : /^\d+$/.test(values.start)
        ? Number(values.start)
        : Date.parse(values.start.endsWith('Z') ? values.start : `${values.start}Z`);
  const maker = num(values.maker, 'maker');
  const taker = num(values.taker, 'taker');
  const tickSize = num(values['tick-size'], 'tick-size');
  const stepSize = num(values['step-size'], 'step-size');
  const minNotional = num(values['min-notional'], 'min-notional');
  const participation = num(values.participation, 'participation');
  const sim = await startExchangeSim({
    market: futures ? 'futures' : 'spot',
    ...(futures
      ? {
          futures: {
            ...(leverage !== undefined ? { defaultLeverage: leverage } : {}),
            ...(values.margin === 'isolated' || values.margin === 'cross' ? { defaultMarginMode: values.margin } : {}),
          },
        }
      : {}),
    host: values.host,
    port: num(values.port, 'port') ?? DEFAULT_PORT,
    admin: values.admin,
    markets: [
      ...symbols.map((symbol, i) => ({
        symbol,
        bars: files[i] as string,
        ...(tickSize ? { tickSize } : {}),
        ...(stepSize ? { stepSize } : {}),
        ...(minNotional !== undefined ? { minNotional } : {}),
        ...(values.funding !== undefined ? { funding: values.funding } : {}),
        ...(fundingRate !== undefined ? { funding: fundingRate } : {}),
        ...(liquidationFee !== undefined ? { liquidationFee } : {}),
      })),
      ...(values['bnb-data'] !== undefined && bnbMarket !== undefined
        ? [{ symbol: bnbMarket, bars: values['bnb-data'] }]
        : []),
    ],
    accounts: [{ apiKey, secret, balances, ...(values['bnb-fees'] ? { payFeesWithBnb: true } : {}) }],
    ...(maker !== undefined || taker !== undefined
      ? { fees: { maker: maker ?? (futures ? 0.0002 : 0.001), taker: taker ?? (futures ? 0.0005 : 0.001) } }
      : {}),
    ...(start !== undefined ? { startTime: start } : {}),
    ...(participation !== undefined ? { liquidity: { participation } } : {}),
    speed: num(values.speed, 'speed') ?? 1,
  });
  if (futures)
    out.write(
      `exchange-sim: Binance USD-M futures on ${sim.httpUrl} (REST /fapi/v1, v2, v3) and ${sim.wsUrl} (/market/ws, /public/ws, /private/ws?listenKey=)\n`,
    );
  else
    out.write(
      `exchange-sim: Binance spot protocol on ${sim.httpUrl} (REST /api/v3) and ${sim.wsUrl} (/ws, /stream, /ws-api/v3)\n`,
    );
  for (const [i, symbol] of symbols.entries())
    out.write(
      `  market ${symbol} from ${files[i]}${i === 0 ? `, replay clock ${new Date(sim.now()).toISOString()}, speed ${values.speed}x` : ''}\n`,
    );
  if (values['bnb-data'] !== undefined)
    out.write(
      `  market ${bnbMarket} from ${values['bnb-data']}${values['bnb-fees'] ? ': the account pays its fees with BNB (75 % of the rate, priced at its last price)' : ''}\n`,
    );
  if (futures) {
    const funding =
      values.funding !== undefined
        ? `from ${values.funding}`
        : `a constant ${fundingRate ?? DEFAULT_FUNDING_RATE} every 8 h${fundingRate === undefined ? " (Binance's baseline; --funding or --funding-rate to change)" : ''}`;
    out.write(
      `  funding: ${funding}; mark price = last price; liquidation clearance ${liquidationFee ?? DEFAULT_LIQUIDATION_FEE}\n`,
    );
    for (const w of sim.warnings) out.write(`  warning: ${w}\n`);
  }
  if (generated) out.write(`  generated credentials:\n    api key: ${apiKey}\n    secret:  ${secret}\n`);
  else out.write(`  api key: ${apiKey}\n`);
  if (sim.admin)
    out.write(
      `  admin endpoint on: inject faults with 'keel exchange-sim fault --port ${sim.port} <kind>' (--help lists kinds)\n`,
    );
  out.write('  Ctrl-C to stop\n');
  io.onStarted?.(sim);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      io.signal?.removeEventListener('abort', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (io.signal?.aborted) stop();
    else io.signal?.addEventListener('abort', stop);
  });
  await sim.close();
}

/** A mistake in the command line: exit code 2. */
class UsageError extends Error {}

function wholeNumber(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`--${name} must be a whole number, got "${v}"`);
  return Number(v);
}

function decimal(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v)) throw new UsageError(`--${name} must be a decimal number such as 6.9, got "${v}"`);
  return Number(v);
}

/** `keel exchange-sim fault ...`: parses, sends to the admin endpoint, and says what happened. */
async function runFaultCli(argv: string[], io: ExchangeSimCliIo): Promise<number> {
  const out = io.out ?? process.stdout;
  const err = io.err ?? process.stderr;
  const fail = (code: 1 | 2, message: string): number => {
    err.write(`keel exchange-sim fault: ${message}\n`);
    return code;
  };
  let port: number;
  let request: FaultRequest;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        port: { type: 'string' },
        count: { type: 'string' },
        ms: { type: 'string' },
        path: { type: 'string' },
        status: { type: 'string' },
        ws: { type: 'string' },
        execute: { type: 'boolean' },
        symbol: { type: 'string' },
        'api-key': { type: 'string' },
        qty: { type: 'string' },
        price: { type: 'string' },
        later: { type: 'boolean' },
      },
    });
    if (values.help) {
      out.write(EXCHANGE_SIM_FAULT_HELP);
      return 0;
    }
    const [kind, ...extra] = positionals;
    if (kind === undefined) throw new UsageError(`which fault? (kinds: ${FAULT_KINDS.join(', ')}; see --help)`);
    if (extra.length > 0) throw new UsageError(`one fault kind at a time, got "${positionals.join(' ')}"`);
    port = wholeNumber(values.port, 'port') ?? DEFAULT_PORT;
    if (port < 1 || port > 65_535) throw new UsageError(`--port must be from 1 to 65535, got ${port}`);
    request = { kind };
    const count = wholeNumber(values.count, 'count');
    const ms = wholeNumber(values.ms, 'ms');
    const status = wholeNumber(values.status, 'status');
    if (count !== undefined) request.count = count;
    if (ms !== undefined) request.ms = ms;
    if (status !== undefined) request.status = status;
    if (values.path !== undefined) request.path = values.path;
    if (values.ws !== undefined) request.ws = values.ws;
    if (values.execute !== undefined) request.execute = values.execute;
    if (values.symbol !== undefined) request.symbol = values.symbol;
    if (values['api-key'] !== undefined) request.apiKey = values['api-key'];
    const qty = decimal(values.qty, 'qty');
    const price = decimal(values.price, 'price');
    if (qty !== undefined) request.qty = qty;
    if (price !== undefined) request.price = price;
    if (values.later !== undefined) request.later = values.later;
    parseFaultCommand(request); // the simulator checks again; a mistake is caught before sending
  } catch (e) {
    if (e instanceof UsageError || e instanceof FaultCommandError || isParseArgsError(e)) return fail(2, e.message);
    throw e;
  }
  const where = `127.0.0.1:${port}`;
  const result = await sendFaultCommand(port, request);
  switch (result.type) {
    case 'applied':
      out.write(`fault ${request.kind} on ${where}: ${result.effect}\n`);
      return 0;
    case 'not-running':
      return fail(1, `no simulator is running on ${where} (${result.detail})`);
    case 'not-a-simulator':
      return fail(1, `${where} does not answer as a keel exchange simulator (${result.detail})`);
    case 'refused':
      if (result.code === 'admin-disabled')
        return fail(
          1,
          `the simulator on ${where} was started without --admin; restart it with --admin to inject faults`,
        );
      return fail(1, `the simulator on ${where} refused the fault: ${result.message}`);
    default:
      return assertNever(result);
  }
}

/** node:util parseArgs's own errors (unknown option, missing value): usage errors. */
function isParseArgsError(e: unknown): e is Error {
  return e instanceof Error && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS');
}
