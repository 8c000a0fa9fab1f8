import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { type ExchangeSim, startExchangeSim } from './sim.ts';

export const EXCHANGE_SIM_HELP = `keel exchange-sim — a local exchange speaking the Binance spot protocol (REST + WebSocket)

Usage:
  keel exchange-sim --data <csv[.gz]> [--symbol BTC/USDT] [--port 8900] [--speed 60]
                    [--api-key K --secret S] [--balance USDT=10000,BTC=1]

Options:
  --data FILE        candles to replay (CSV or CSV.GZ): header datetime|timestamp|open_time,open,
                     high,low,close,volume (UTC text or epoch ms), or Binance's 12-column klines
  --symbol S         unified symbol of the market, BASE/QUOTE (default BTC/USDT)
  --port N           port on 127.0.0.1 (default 8900; 0 = random)
  --host H           interface to bind (default 127.0.0.1)
  --speed X          replay speed vs wall time (default 1; 60 = one minute per second)
  --start T          replay start (ISO time or epoch ms); earlier bars are history (klines only)
  --tick-size N --step-size N --min-notional N      market filters (default 0.01, 0.00001, 5)
  --maker R --taker R                               fee rates (default 0.001 each)
  --participation R  max share of a bar's volume the sim's orders can fill (default 0.1)
  --api-key K --secret S   the account's credentials (generated and printed when omitted)
  --balance LIST     starting balances, ASSET=amount comma-separated (default USDT=10000)

Markets: one per run from the CLI; programmatic use (startExchangeSim) takes any number, each with
  its own bars, tickSize, stepSize, minQty, minNotional.
Accounts: each has an apiKey/secret (HMAC-SHA256) and free balances; add more with sim.addAccount().
Endpoints: REST /api/v3/* (ping, time, exchangeInfo, klines, depth, trades, aggTrades, ticker/24hr,
  ticker/price, ticker/bookTicker, account, order, order/cancelReplace, openOrders, allOrders,
  myTrades, userDataStream); WS market streams at /ws and /stream (trade, aggTrade, kline_<i>,
  bookTicker, depth, depth@100ms, depth<N>, ticker, miniTicker); WS API at /ws-api/v3
  (userDataStream.subscribe.signature, order.place, order.cancel, order.status, account.status...).
ccxt: new ccxt.binance(ccxtConfigFor(sim, { apiKey, secret })) from @keel/exchange-sim.
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
  /** Stops the simulator when aborted (besides SIGINT / SIGTERM). */
  signal?: AbortSignal;
  /** Called once the simulator listens (tests use it to reach the server). */
  onStarted?: (sim: ExchangeSim) => void;
}

/** `keel exchange-sim ...`: runs until SIGINT/SIGTERM. argv excludes the command name. */
export async function runExchangeSimCli(argv: string[], io: ExchangeSimCliIo = {}): Promise<void> {
  const out = io.out ?? process.stdout;
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', short: 'h' },
      data: { type: 'string' },
      symbol: { type: 'string', default: 'BTC/USDT' },
      port: { type: 'string', default: '8900' },
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
    },
    strict: true,
  });
  if (values.help) {
    out.write(EXCHANGE_SIM_HELP);
    return;
  }
  if (!values.data) throw new Error('keel exchange-sim: --data <csv file> is required (see --help)');
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
    host: values.host,
    port: num(values.port, 'port') ?? 8900,
    markets: [
      {
        symbol: values.symbol,
        bars: values.data,
        ...(tickSize ? { tickSize } : {}),
        ...(stepSize ? { stepSize } : {}),
        ...(minNotional !== undefined ? { minNotional } : {}),
      },
    ],
    accounts: [{ apiKey, secret, balances }],
    ...(maker !== undefined || taker !== undefined ? { fees: { maker: maker ?? 0.001, taker: taker ?? 0.001 } } : {}),
    ...(start !== undefined ? { startTime: start } : {}),
    ...(participation !== undefined ? { liquidity: { participation } } : {}),
    speed: num(values.speed, 'speed') ?? 1,
  });
  out.write(
    `exchange-sim: Binance spot protocol on ${sim.httpUrl} (REST /api/v3) and ${sim.wsUrl} (/ws, /stream, /ws-api/v3)\n`,
  );
  out.write(
    `  market ${values.symbol} from ${values.data}, replay clock ${new Date(sim.now()).toISOString()}, speed ${values.speed}x\n`,
  );
  if (generated) out.write(`  generated credentials:\n    api key: ${apiKey}\n    secret:  ${secret}\n`);
  else out.write(`  api key: ${apiKey}\n`);
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
