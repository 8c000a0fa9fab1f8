import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  type BarSeries,
  defineInstrument,
  type FeedKey,
  FUTURES_FLAGS,
  FUTURES_FLAGS_HELP,
  type FuturesMarketSettings,
  futuresFromFlags,
  isTimeframe,
  paramsFromPairs,
  parseSymbolList,
  RISK_FLAGS,
  RISK_FLAGS_HELP,
  riskConfigFromFlags,
  riskConfigText,
  type Timeframe,
  timeframeMs,
  USDM_DEFAULT_FEES,
} from '@keel/core';
import type { Io } from '@keel/data';
import { CsvFormatError, DataError, readFundingRateFile } from '@keel/data';
import {
  feedQualityLines,
  fileNameFacts,
  fileSymbolConflict,
  type LoadedFeed,
  loadFeed,
  readMarkFile,
} from '@keel/data/feeds';
import { systemTimer } from '@keel/exchange';
import { fingerprintOf, KeyStoreError, openStore, type Store } from '@keel/store';
import { spotDirectionProblem } from '@keel/strategies';
import { mergeSources } from './bar-merge.ts';
import { Bot, type Logger, type SessionReport } from './bot.ts';
import { jsonLogLine, textLogLine } from './bot-log.ts';
import type { ExchangeClock } from './live/exchange-clock.ts';
import type { SignalAge } from './live/venue.ts';
import { outsideFeesNote } from './pnl.ts';
import { MissingSecretError, PromptCancelled, readPassphrase } from './secrets.ts';
import { type BarSource, replaySource } from './sources.ts';
import { loadStrategy, strategyParams } from './strategy-file.ts';

export const BOT_HELP = `Usage: keel paper|live --strategy <name|file> --symbol <BASE/QUOTE>[,<BASE/QUOTE>...] [options]

Runs a strategy with the same code as a backtest. paper: simulated fills (the backtest's
fill model) on live or replayed bars. live: real orders on an exchange account.

Options:
  --strategy <name|file>   built-in strategy (keel strategies) or your own file exporting
                           defineStrategy(...): ./my-strategy.ts, .js or .mjs
  --param key=value        strategy parameter, repeatable
  --symbol <BASE/QUOTE>    market, e.g. BTC/USDT; several as BTC/USDT,ETH/USDT (one quote
                           currency): one strategy instance per market in one portfolio
                           (shared cash and risk), as keel backtest runs several markets
  --max-open-trades <n>    at most n markets held at once (the risk rule max-open-trades); with
                           several markets each entry's orderTargetPercent is a share of equity / n
                           (default: / the number of markets), as in keel backtest
  --timeframe <tf>         bar timeframe (default 1m; a paper --replay: its bars' own); coarser
                           than a replay's bars resamples them, finer is refused
  --bot-id <id>            the bot's name in the store (default <strategy>-<symbol>-<mode>;
                           several markets: their symbols joined, <strategy>-BTCUSDT-ETHUSDT-<mode>,
                           or with more than 4 the first two, the count and a hash of the list)
  --store <url>            sqlite:<path> (default sqlite:.keel/keel.db) or postgres://...
  --store-sync <full|normal>  SQLite: full (default) fsyncs every commit, power-loss safe;
                           normal is as safe against a crash of the bot (kill -9) and keeps
                           the disk's fsync off the order path (docs/store.md, docs/live.md)
  --replay <file>          paper only: replay a candle file (.csv/.csv.gz) instead of live data;
                           several markets: one --replay per market, in --symbol's order. The
                           file passes the backtest's data gate: a bad row is refused with its
                           line and rule, a market the file's name contradicts too
  --allow-bad-data         paper replay: drop bad rows (counted in the log) instead of refusing
  --replay-delay-ms <n>    paper replay: wait n ms between bars (default 0: as fast as possible)
  --exchange <id>          ccxt exchange id for live data and live orders (default binance)
  --exchange-url <url>     point the exchange client at another base URL (e.g. keel exchange-sim)
  --cash <n>               paper: starting cash in the quote currency (default 10000)
  --fee <rate>             paper: fee per side (default 0.001)
  --clock <local|exchange> live: what GTD orders expire by: this machine's clock (default) or
                           the exchange's (needed when replaying through keel exchange-sim --speed)
  --on-shutdown <c|k>      cancel (default) or keep open orders when stopping; keep also parks
                           each trailing stop Keel holds as a stop order on the exchange
  --flatten                close every position when stopping
  --max-signal-age <age>   how long a signal stays valid: an order that has not left by then
                           (rate limits, an outcome being resolved) is dropped and logged,
                           never sent late. Bars (1 = default: until the bar after the
                           decision closes; 3 or 3bars) or a duration by the bot's clock
                           (30s, 500ms, 2m; see --clock). Paper orders never wait
  --catch-up <none|last>   bars that closed while the bot was down: none (default) runs the
                           strategy on them without trading; last lets the newest of them
                           trade. Trailing stops and GTD orders act on them either way
  --warmup-bars <n>        bars of the exchange's history the strategy runs on before its first
                           live bar, at start and again at each restart (up to the last bar it
                           handled), nothing sent on them: 0 to 1000, default 500
  --unknown-orders <p>     live: open orders on the exchange that this bot has no record of:
                           flag (default: warn and leave them), adopt (track them as this
                           bot's own, tag "adopted") or cancel. Another Keel bot's orders
                           (client id k<its id>-...) are only ever flagged
  --confirm-live           required for live mode: you accept that real orders will be sent
  --keys <name>            live: use this key from the encrypted key store (keel keys --help);
                           the passphrase comes from KEEL_KEYSTORE_PASSPHRASE or a prompt
  --reconfigure            run a stored bot with another strategy, other --param values,
                           another symbol, other risk settings or, futures, another
                           leverage, margin or position mode (refused otherwise: its
                           history belongs to the first)
  --log-format <text|json> log lines for people (default) or one JSON object per line
  -h, --help               this help

${RISK_FLAGS_HELP}
The risk engine is the backtest's: the same denials and halts at the same bars. A halt is
stored: it survives a restart (SIGTERM or a crash) and ends only with keel bots resume <id>
when it lasts until resumed. keel bots status shows the halts in force and the denials by rule.

${FUTURES_FLAGS_HELP.replace('the summary says so.', 'the log says so.')}
live --market futures (ccxt's binanceusdm, a USD-M account in one-way position mode): at start
the bot sets --leverage and --margin on the exchange and reads them back (refused: hedge mode, a
leverage or margin mode the exchange refuses, a margin mode change under an open position),
applies the funding payments and liquidations it missed, and compares its position, entry,
wallet and isolated wallet with the exchange's, naming every difference. While it runs, the
exchange's funding payments and liquidations are applied to its books after each bar and
counted in the session report. The exchange charges funding: --funding and --funding-rate are
for paper. Exits are reduce-only; the bot trades its own position only (docs/futures.md).

One log line per order sent, fill, cancel, denial (with the risk rule and its numbers),
rejection and expiry (time, bot, what, side, amount, symbol, price, id, reason), and per halt.
Operate running bots from another terminal with keel bots
(list, status, stop, parity) over the same --store.

Live keys come from the key store (--keys) or from the environment: KEEL_API_KEY and
KEEL_API_SECRET (plus KEEL_API_PASSWORD / KEEL_API_UID where the exchange needs them); never
from arguments.
Stop with Ctrl-C (SIGINT) or SIGTERM: inputs stop, open orders are cancelled or kept, state is
saved and a session report is printed. A crashed bot (kill -9) restarts where it stopped: state
is reloaded and reconciled with the exchange before any new bar is handled.
Live, what Binance spot lacks is emulated by Keel with the backtest's semantics: trailing stops
are held by the bot and sent as a market order when a closed bar triggers them; GTD orders rest
as GTC and the bot cancels them at their expiry (docs/live.md).
`;

/**
 * The signals the command caught before the bot's own handlers (keel's main, while this module
 * loaded): `received` the first one, `release` hands them over.
 */
export interface EarlySignals {
  received(): string | undefined;
  release(): void;
}

export async function runBotCli(argv: string[], io: Io, early?: EarlySignals): Promise<number> {
  const [mode, ...rest] = argv;
  if (mode !== 'paper' && mode !== 'live') throw new Error(`expected paper or live, got ${mode}`);
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      strategy: { type: 'string' },
      param: { type: 'string', multiple: true },
      symbol: { type: 'string' },
      timeframe: { type: 'string' },
      'bot-id': { type: 'string' },
      store: { type: 'string' },
      'store-sync': { type: 'string' },
      clock: { type: 'string' },
      replay: { type: 'string', multiple: true },
      'max-open-trades': { type: 'string' },
      'replay-delay-ms': { type: 'string' },
      'allow-bad-data': { type: 'boolean' },
      exchange: { type: 'string' },
      'exchange-url': { type: 'string' },
      cash: { type: 'string' },
      fee: { type: 'string' },
      'on-shutdown': { type: 'string' },
      flatten: { type: 'boolean' },
      'unknown-orders': { type: 'string' },
      'max-signal-age': { type: 'string' },
      'catch-up': { type: 'string' },
      'warmup-bars': { type: 'string' },
      'confirm-live': { type: 'boolean' },
      keys: { type: 'string' },
      reconfigure: { type: 'boolean' },
      'log-format': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...RISK_FLAGS,
      ...FUTURES_FLAGS,
    },
  });
  if (values.help) {
    io.stdout.write(BOT_HELP);
    return 0;
  }
  const fail = (msg: string): number => {
    io.stderr.write(`keel ${mode}: ${msg}\nRun '${io.prog ?? 'keel'} ${mode} --help' for usage.\n`);
    return 2;
  };
  if (!values.strategy) return fail('--strategy is required');
  if (!values.symbol) return fail('--symbol is required, e.g. --symbol BTC/USDT');
  let spots: string[];
  try {
    spots = parseSymbolList(values.symbol);
  } catch (e) {
    return fail(`--symbol: ${(e as Error).message}`);
  }
  const settles = spots.map((x) => defineInstrument({ symbol: x }).settle);
  if (new Set(settles).size > 1)
    return fail(
      `--symbol: the markets must share one quote currency (they share one cash balance): ${spots.map((x, i) => `${x} is in ${settles[i]}`).join(', ')}`,
    );
  const givenTimeframe = values.timeframe;
  if (givenTimeframe !== undefined && !isTimeframe(givenTimeframe))
    return fail(`--timeframe "${givenTimeframe}" is not a timeframe`);
  // A data error names the file, row and rule; --help would not help with it (exit 1).
  const failData = (msg: string): number => {
    io.stderr.write(`keel ${mode}: ${msg}\n`);
    return 1;
  };
  const maxOpenTrades = values['max-open-trades'] !== undefined ? Number(values['max-open-trades']) : undefined;
  if (maxOpenTrades !== undefined && !(Number.isInteger(maxOpenTrades) && maxOpenTrades >= 1))
    return fail(`--max-open-trades must be an integer >= 1, got "${values['max-open-trades']}"`);
  const riskParsed = riskConfigFromFlags(values);
  if (!riskParsed.ok) return fail(riskParsed.error.message);
  const risk = riskParsed.config;
  if (mode === 'live' && !values['confirm-live'])
    return fail('live mode sends real orders: add --confirm-live to confirm');
  const replays = values.replay ?? [];
  if (mode === 'live' && replays.length > 0) return fail('--replay is for paper mode');
  if (values['allow-bad-data'] === true && replays.length === 0)
    return fail('--allow-bad-data is for paper --replay (the rows of a replayed file)');
  if (replays.length > 0 && replays.length !== spots.length)
    return fail(
      `--replay: ${replays.length} file${replays.length === 1 ? '' : 's'} for ${spots.length} market${spots.length === 1 ? '' : 's'} (${spots.join(', ')}): give one --replay per market, in --symbol's order`,
    );
  if (mode === 'paper' && values.keys !== undefined) return fail('--keys is for live mode');
  const envKeys = Boolean(process.env.KEEL_API_KEY && process.env.KEEL_API_SECRET);
  if (mode === 'live' && values.keys === undefined && !envKeys)
    return fail(
      'live mode needs exchange keys: --keys <name> for a key from the encrypted key store (see keel keys --help), or KEEL_API_KEY and KEEL_API_SECRET in the environment',
    );
  const onShutdown = values['on-shutdown'] ?? 'cancel';
  if (onShutdown !== 'cancel' && onShutdown !== 'keep') return fail('--on-shutdown must be cancel or keep');
  const unknownOrders = values['unknown-orders'] ?? 'flag';
  if (unknownOrders !== 'flag' && unknownOrders !== 'adopt' && unknownOrders !== 'cancel')
    return fail('--unknown-orders must be flag, adopt or cancel');
  const maxSignalAge = parseSignalAge(values['max-signal-age'] ?? '1');
  if (typeof maxSignalAge === 'string') return fail(maxSignalAge);
  const catchUp = values['catch-up'] ?? 'none';
  if (catchUp !== 'none' && catchUp !== 'last') return fail('--catch-up must be none or last');
  const warmupBars = values['warmup-bars'] !== undefined ? Number(values['warmup-bars']) : undefined;
  if (warmupBars !== undefined && !(Number.isInteger(warmupBars) && warmupBars >= 0 && warmupBars <= 1000))
    return fail(
      `--warmup-bars must be a whole number from 0 to 1000 (one request of the exchange's candles), got "${values['warmup-bars']}"`,
    );
  if (warmupBars !== undefined && replays.length > 0)
    return fail("--warmup-bars is for the exchange's candles: a --replay runs the file from its first bar");
  const clockKind = values.clock ?? 'local';
  if (clockKind !== 'local' && clockKind !== 'exchange') return fail('--clock must be local or exchange');
  if (clockKind === 'exchange' && mode !== 'live')
    return fail('--clock exchange is for live mode (paper orders expire on the bars, as in a backtest)');
  const logFormat = values['log-format'] ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') return fail('--log-format must be text or json');
  const storeSync = (values['store-sync'] ?? 'full').toUpperCase();
  if (storeSync !== 'FULL' && storeSync !== 'NORMAL') return fail('--store-sync must be full or normal');
  const loaded = await loadStrategy(values.strategy);
  const strategy = loaded.strategy;
  const params = strategyParams(loaded, paramsFromPairs(values.param ?? []));
  for (const file of replays) if (!existsSync(file)) return fail(`--replay: no such file ${file}`);
  // Replayed files pass the backtest's data gate: bad rows refused (or dropped and counted with
  // --allow-bad-data), the bars' own timeframe (a finer --timeframe refused, a coarser one
  // resampled), close times told from open times, and a market the file's name contradicts refused.
  let replayFeeds: LoadedFeed[] | undefined;
  if (replays.length > 0) {
    replayFeeds = [];
    try {
      for (const [i, file] of replays.entries()) {
        const spot = spots[i] as string;
        const conflict = fileSymbolConflict(file, spot);
        if (conflict !== undefined) return failData(`--replay ${conflict}`);
        const nameTimeframe = fileNameFacts(file).timeframe;
        replayFeeds.push(
          await loadFeed({
            symbol: spot,
            origin: { kind: 'file', file, ...(nameTimeframe ? { nameTimeframe } : {}) },
            ...(givenTimeframe !== undefined ? { timeframe: givenTimeframe as Timeframe } : {}),
            badData: values['allow-bad-data'] === true ? 'drop' : 'refuse',
          }),
        );
      }
    } catch (e) {
      if (e instanceof DataError || e instanceof CsvFormatError) return failData(`--replay ${(e as Error).message}`);
      throw e;
    }
    const tfs = [...new Set(replayFeeds.map((f) => f.timeframe))];
    if (tfs.length > 1)
      return failData(
        `--replay files hold bars of different timeframes (${replayFeeds.map((f) => `${f.symbol} ${f.timeframe}`).join(', ')}): give --timeframe (at least the coarsest) to run them on one`,
      );
  }
  // A replay runs on its bars' own timeframe unless --timeframe says otherwise; live bars on 1m.
  const timeframe: Timeframe = (givenTimeframe as Timeframe | undefined) ?? replayFeeds?.[0]?.timeframe ?? '1m';
  const replayed = replayFeeds?.map((f) => f.series);
  // A constant funding rate covers the replay; on the exchange's bars, a year either side of the
  // exchange's clock (read once connected, below: a simulator replays another year than the wall
  // clock's), so a restart's catch-up bars are charged too.
  const spans = (replayed ?? []).filter((r) => r.length > 0);
  const range =
    spans.length > 0
      ? {
          from: Math.min(...spans.map((r) => r.time[0] as number)),
          to: Math.max(...spans.map((r) => r.time[r.length - 1] as number)) + timeframeMs(timeframe),
        }
      : { from: Date.now() - YEAR_MS, to: Date.now() + YEAR_MS };
  if (values.mark !== undefined && replays.length === 0)
    return fail("--mark needs --replay: mark bars are read on the replayed bars' times");
  if (spots.length > 1 && (values.funding !== undefined || values.mark !== undefined))
    return fail(
      `--${values.funding !== undefined ? 'funding' : 'mark'} reads one market's file: with several markets give --funding-rate, or run one bot per market`,
    );
  const perpsOver = (r: { readonly from: number; readonly to: number }) => {
    const out: { symbol: string; settings: FuturesMarketSettings }[] = [];
    for (const spot of spots) {
      const fut = futuresFromFlags(values, spot, r, {
        funding: (file, perp) => ({ series: readFundingRateFile(file, { symbol: perp }).series, source: file }),
        mark: (file) => ({ series: readMarkFile(file, timeframe), source: file }),
      });
      if (!fut.ok) return fut.message;
      if (fut.futures !== undefined) out.push(fut.futures);
    }
    return out;
  };
  const perps = perpsOver(range);
  if (typeof perps === 'string') return fail(perps);
  const futures = perps.length > 0 ? new Map(perps.map((x) => [x.symbol, x.settings])) : undefined;
  // A spot bot cannot sell short: every short entry would be refused (the backtest's rule).
  const shortOnSpot = futures === undefined ? spotDirectionProblem(params) : undefined;
  if (shortOnSpot !== undefined) return fail(shortOnSpot);
  if (
    futures !== undefined &&
    mode === 'live' &&
    (values.funding !== undefined || values['funding-rate'] !== undefined)
  )
    return fail(
      `--${values.funding !== undefined ? 'funding' : 'funding-rate'} is for paper: live, the exchange charges funding and the bot applies its payments`,
    );
  if (futures !== undefined && mode === 'live' && values['position-mode'] === 'hedge')
    return fail(
      '--position-mode hedge is for backtests and paper bots: live futures trade an account in one-way position mode (docs/futures.md)',
    );
  const symbols = futures !== undefined ? perps.map((x) => x.symbol) : spots;
  const feeds: FeedKey[] = symbols.map((symbol) => ({ symbol, timeframe: timeframe as Timeframe }));
  const botId = values['bot-id'] ?? defaultBotId(strategy.name, spots, futures !== undefined, mode);
  const line = logFormat === 'json' ? jsonLogLine : textLogLine;
  const log: Logger = (level, msg, data) => io.stderr.write(line(Date.now(), botId, level, msg, data));
  const store = await openStore({ url: values.store ?? 'sqlite:.keel/keel.db', synchronous: storeSync });
  let exchange: Awaited<ReturnType<typeof import('./live/ccxt.ts').connectExchange>> | undefined;
  let keyLabel = '';
  let clock: ExchangeClock | undefined;
  let onSignal: ((sig: string) => void) | undefined;
  try {
    let creds: LiveCredentials | undefined;
    let exchangeId = values.exchange ?? (futures ? 'binanceusdm' : 'binance');
    if (mode === 'live') {
      const keys = await liveCredentials(store, values.keys, values.exchange, io, log, exchangeId);
      if ('problem' in keys) return keys.problem === 'usage' ? fail(keys.message) : failData(keys.message);
      creds = keys.creds;
      // One Binance key serves spot and USD-M: a perpetual is traded through binanceusdm.
      exchangeId =
        futures !== undefined && values.exchange === undefined && keys.exchange === 'binance'
          ? 'binanceusdm'
          : keys.exchange;
      keyLabel = `${values.keys !== undefined ? `"${values.keys}" ` : 'from KEEL_API_KEY '}(${fingerprintOf(creds.apiKey)})`;
    }
    let instruments = symbols.map((symbol) => defineInstrument({ symbol }));
    if (replayed === undefined || mode === 'live') {
      const { connectExchange } = await import('./live/ccxt.ts');
      exchange = await connectExchange({
        exchange: exchangeId,
        ...(values['exchange-url'] ? { url: values['exchange-url'] } : {}),
        ...creds,
        botId,
        symbols,
        log,
        ...(warmupBars !== undefined ? { warmupBars } : {}),
      });
      const conn = exchange;
      instruments = await Promise.all(symbols.map((symbol) => conn.instrument(symbol)));
      if (replayed === undefined && futures !== undefined && values['funding-rate'] !== undefined) {
        const exClock = conn.clock();
        await exClock.ready;
        const now = exClock.now();
        exClock.stop();
        const around = perpsOver({ from: now - YEAR_MS, to: now + YEAR_MS });
        if (typeof around === 'string') return fail(around);
        for (const x of around) futures.set(x.symbol, x.settings);
      }
    }
    if (clockKind === 'exchange' && exchange) {
      clock = exchange.clock();
      await clock.ready;
      log('info', `GTD orders expire by the exchange's clock (now ${new Date(clock.now()).toISOString()})`);
    }
    const bot = new Bot({
      botId,
      mode,
      strategy,
      params,
      feeds,
      instruments,
      store,
      log,
      paperCash: values.cash !== undefined ? Number(values.cash) : 10_000,
      paperFee: values.fee !== undefined ? Number(values.fee) : futures ? USDM_DEFAULT_FEES.taker : 0.001,
      ...(futures !== undefined ? { futures: (symbol: string) => futures.get(symbol) as FuturesMarketSettings } : {}),
      ...(feeds.length > 1 ? { perPair: maxOpenTrades !== undefined ? { slots: maxOpenTrades } : {} } : {}),
      ...(exchange && mode === 'live'
        ? {
            exchange: exchange.live,
            exchangeName: exchangeId,
            ...(values['exchange-url'] ? { exchangeUrl: values['exchange-url'] } : {}),
          }
        : {}),
      unknownOrders,
      maxSignalAge,
      catchUp,
      onShutdown,
      flatten: values.flatten === true,
      reconfigure: values.reconfigure === true,
      ...(clock ? { timer: clock } : {}),
      ...(risk ? { risk } : {}),
    });
    // Handlers before the start: a signal that arrives while the bot starts (reconciliation can
    // take a while) stops it as soon as it has started, instead of killing it half-way; a second
    // signal exits at once, which the next start recovers from like a kill -9.
    let signalled = false;
    let source: BarSource | undefined;
    onSignal = (sig: string) => {
      if (signalled) {
        log('warn', `${sig} received again: exiting now, without a clean shutdown (the next start reconciles)`);
        process.exit(130);
      }
      signalled = true;
      log('info', `${sig} received: shutting down gracefully`);
      if (source) {
        void source.close();
        bot.cfg.log('info', 'inputs stopped');
      }
    };
    early?.release();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const before = early?.received();
    if (before !== undefined) {
      log(
        'info',
        `${before} received while the bot was starting: stopped before start completed (nothing traded, no order sent)`,
      );
      return 0;
    }
    await bot.start();
    log(
      'info',
      `${mode} bot started: ${strategy.name} on ${symbols.join(', ')} ${timeframe}${replays.length > 0 ? ` (replay of ${replays.join(', ')})` : ''}${risk ? `; risk: ${riskConfigText(risk).join(' ')}` : ''}`,
    );
    // What the data gate found in the replayed files, where the user reads the run: the log.
    for (const f of replayFeeds ?? []) for (const n of f.notes) log('info', `note: ${n}`);
    if (replayFeeds !== undefined) for (const l of feedQualityLines(replayFeeds)) log('info', `data: ${l.trim()}`);
    const delay = values['replay-delay-ms'] ? { delayMs: Number(values['replay-delay-ms']) } : {};
    // Without --replay the exchange was connected above.
    const conn = exchange as NonNullable<typeof exchange>;
    const sources = feeds.map((feed, i) =>
      replayed !== undefined
        ? replaySource(feed, replayed[i] as BarSeries, delay)
        : conn.candles(feed, bot.lastHandled(feed)),
    );
    source =
      sources.length === 1
        ? (sources[0] as BarSource)
        : mergeSources(feeds, sources, {
            lateAfterMs: LATE_BAR_MS,
            timer: systemTimer,
            log: (level, msg) => log(level, msg),
          });
    if (signalled) await source.close();
    await bot.run(source);
    const report = await bot.stop(bot.stopRequested ?? (signalled ? 'signal' : 'input ended'));
    log('info', sessionSummary(report));
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return 0;
  } catch (e) {
    // The exchange refused the key: say which key and what to check, not a stack trace.
    if ((e as { kind?: unknown }).kind === 'auth') {
      io.stderr.write(
        `keel ${mode}: the exchange refused the API key${keyLabel ? ` ${keyLabel}` : ''}: ${(e as Error).message}\nCheck the key and secret, that the key may trade ${futures !== undefined ? 'USD-M futures' : 'spot'}, and its IP allow-list.\n`,
      );
      return 1;
    }
    throw e;
  } finally {
    if (onSignal) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    clock?.stop();
    await exchange?.close();
    await store.close();
  }
}

const YEAR_MS = 366 * 86_400_000;

/**
 * How long a multi-market bot waits for a feed's bar once another feed's bar of the same close time
 * has arrived, before reading it from the exchange (docs/live.md, "Several markets").
 */
export const LATE_BAR_MS = 5_000;

/**
 * The bot id `keel paper|live` gives a bot without --bot-id: `<strategy>-BTCUSDT-<mode>` for one
 * market (`-perp` before the mode for a perpetual); several: their symbols joined in order
 * (`sma-cross-BTCUSDT-ETHUSDT-paper`), or, past four, the first two, the count and six characters
 * of a hash of the whole list (`sma-cross-BTCUSDT-ETHUSDT-6pairs-a1b2c3-paper`), so the id stays
 * the same for the same list and short enough for a file name.
 */
export function defaultBotId(strategy: string, spots: readonly string[], perp: boolean, mode: string): string {
  const names = spots.map((x) => x.replace('/', ''));
  const pairs =
    names.length <= 4
      ? names.join('-')
      : `${names.slice(0, 2).join('-')}-${names.length}pairs-${createHash('sha256').update(names.join(',')).digest('hex').slice(0, 6)}`;
  return `${strategy}-${pairs}${perp ? '-perp' : ''}-${mode}`;
}

/**
 * `--max-signal-age`: a number of bars (`3`, `3bars`, `1bar`) or a duration (`500ms`, `30s`,
 * `2m`, `1h`). A string is the usage error to print.
 */
export function parseSignalAge(text: string): SignalAge | string {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(bars?|ms|s|m|h)?\s*$/.exec(text);
  const n = m ? Number(m[1]) : Number.NaN;
  if (!m || !(n > 0))
    return `--max-signal-age "${text}" is not an age: give bars (1, 3bars) or a duration (500ms, 30s, 2m, 1h), greater than 0`;
  const unit = m[2];
  if (unit === undefined || unit.startsWith('bar')) {
    if (!Number.isInteger(n)) return `--max-signal-age "${text}": a number of bars must be whole`;
    return { bars: n };
  }
  return { ms: n * (unit === 'ms' ? 1 : unit === 's' ? 1_000 : unit === 'm' ? 60_000 : 3_600_000) };
}

export type LiveCredentials = { apiKey: string; secret: string; password?: string; uid?: string };

/** Why no credentials: a usage error (exit 2, with the usage hint) or a failure (exit 1). */
export type CredentialsProblem = { readonly problem: 'usage' | 'failure'; readonly message: string };

/**
 * The live account's credentials: the named key from the encrypted key store (its exchange wins
 * unless --exchange says otherwise, which must then agree), else KEEL_API_KEY / KEEL_API_SECRET.
 * A problem is a usage error (`usage`: the flags disagree) or a failure (`failure`: the key store
 * refused, a wrong passphrase or an unknown name; exit 1, no usage hint). Secrets are never
 * logged: only the key's name, exchange and fingerprint.
 */
export async function liveCredentials(
  store: Store,
  keyName: string | undefined,
  exchangeFlag: string | undefined,
  io: Io,
  log: Logger,
  /** The exchange of keys from the environment without --exchange (binanceusdm for --market futures). */
  defaultExchange = 'binance',
): Promise<{ creds: LiveCredentials; exchange: string } | CredentialsProblem> {
  const env = process.env;
  if (keyName === undefined) {
    // The caller has checked that both are set.
    const apiKey = env.KEEL_API_KEY as string;
    const secret = env.KEEL_API_SECRET as string;
    log(
      'info',
      `using the exchange key from KEEL_API_KEY / KEEL_API_SECRET (${exchangeFlag ?? defaultExchange}, api key ${fingerprintOf(apiKey)})`,
    );
    return {
      exchange: exchangeFlag ?? defaultExchange,
      creds: {
        apiKey,
        secret,
        ...(env.KEEL_API_PASSWORD ? { password: env.KEEL_API_PASSWORD } : {}),
        ...(env.KEEL_API_UID ? { uid: env.KEEL_API_UID } : {}),
      },
    };
  }
  try {
    const ks = await store.keys.unlock(await readPassphrase(io));
    const key = await ks.get(keyName);
    if (exchangeFlag !== undefined && exchangeFlag !== key.exchange)
      return {
        problem: 'usage',
        message: `--keys ${keyName} is a ${key.exchange} key, but --exchange is ${exchangeFlag}`,
      };
    if (env.KEEL_API_KEY) log('warn', `KEEL_API_KEY in the environment is ignored: --keys ${keyName} is used`);
    log('info', `using exchange key "${key.name}" (${key.exchange}, api key ${key.fingerprint}) from the key store`);
    return { exchange: key.exchange, creds: key.reveal() };
  } catch (e) {
    // No passphrase given is a usage error (it says which variable to set); a refusal is a failure.
    if (e instanceof MissingSecretError) return { problem: 'usage', message: `--keys ${keyName}: ${e.message}` };
    if (e instanceof KeyStoreError || e instanceof PromptCancelled)
      return { problem: 'failure', message: `--keys ${keyName}: ${e.message}` };
    throw e;
  }
}

/** The session report in one line for the log. */
export function sessionSummary(r: SessionReport): string {
  const q = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(8)) : x);
  const other = outsideFeesNote(r);
  return `session ${r.session} ended (${r.reason}): ${r.bars} bars, ${r.fills} fills, ${r.trades} round trips; realised ${q(r.realizedPnlGross)} gross, ${q(r.fees)} fees, ${q(r.realizedPnlNet)} net${other}; since the bot began: ${r.total.trades} round trips, ${q(r.total.realizedPnlNet)} net; cash ${q(r.cash)}, equity ${q(r.equity)}; ${r.openOrders} open orders, ${r.errors} errors${signalsSummary(r)}${pairsSummary(r)}${riskSummary(r)}${futuresSummary(r)}${budgetSummary(r)}`;
}

/**
 * `; signals not traded: 2 on bars missed while down (--catch-up), 5 asked for while warming up on past bars`;
 * nothing when every signal traded.
 */
function signalsSummary(r: SessionReport): string {
  const d = r.signalsDropped;
  const parts = [
    d.stale > 0 ? `${d.stale} stale (older than --max-signal-age when they would have left)` : '',
    d.catchUp > 0 ? `${d.catchUp} on bars missed while the bot was down (--catch-up)` : '',
    d.late > 0 ? `${d.late} on bars that came after newer ones had closed (late)` : '',
    d.warmup > 0 ? `${d.warmup} asked for while warming up on past bars` : '',
  ].filter((p) => p !== '');
  const repeated = r.repeatedBars > 0 ? `; ${r.repeatedBars} bar(s) came twice, fed once` : '';
  return `${parts.length > 0 ? `; signals not traded: ${parts.join(', ')}` : ''}${repeated}`;
}

/** `; per market: BTC/USDT 12 round trips, -3.2 net, 9.5 fees, 4 denied; ETH/USDT ...`; nothing for one market. */
function pairsSummary(r: SessionReport): string {
  if (r.pairs === undefined) return '';
  const q = (x: number) => Number(x.toFixed(8));
  return `; per market: ${r.pairs.map((p) => `${p.symbol} ${p.trades} round trips, ${q(p.realizedPnlNet)} net, ${q(p.fees)} fees, ${p.denied} denied`).join('; ')}`;
}

/**
 * `; exchange budget: new orders waited for the account's order count in 3 windows (1 refused, 429 -1015), …`;
 * nothing when no budget held the bot back.
 */
function budgetSummary(r: SessionReport): string {
  const b = r.exchangeBudget;
  if (b === undefined || b.orderCountFull + b.ordersLimited + b.ipWeightFull + b.ipLimited === 0) return '';
  return `; exchange budget: new orders waited for the account's order count in ${b.orderCountFull} window(s) (${b.ordersLimited} refused, 429 -1015), requests for the IP's weight in ${b.ipWeightFull} minute(s) (${b.ipLimited} refused, 429/418)`;
}

/** `; futures: funding -1.2 (paid 1.5, received 0.3, 6 payments), 0 liquidations (clearance fees 0), 1 ADL close`. */
function futuresSummary(r: SessionReport): string {
  const f = r.futures;
  if (f === undefined) return '';
  const q = (x: number) => Number(x.toFixed(8));
  const warn = f.warnings.length > 0 ? `; futures warnings: ${f.warnings.join('; ')}` : '';
  return `; futures: funding ${q(f.funding)} (paid ${q(f.fundingPaid)}, received ${q(f.fundingReceived)}, ${f.fundingPayments} payments), ${f.liquidations} liquidations (clearance fees ${q(f.liquidationFees)})${f.adlCloses > 0 ? `, ${f.adlCloses} ADL close${f.adlCloses === 1 ? '' : 's'} (the exchange auto-deleveraged the position)` : ''}${f.settlementCloses > 0 ? `, ${f.settlementCloses} settlement close${f.settlementCloses === 1 ? '' : 's'} (the exchange settled the position of a delisted contract)` : ''}${warn}`;
}

/** `; risk: 3 denied (max-drawdown 3), 1 halt started, halted: max-drawdown until resumed`. */
function riskSummary(r: SessionReport): string {
  const k = r.risk;
  if (k === undefined) return '';
  const byRule = (m: Readonly<Record<string, number>>) =>
    Object.entries(m)
      .map(([rule, n]) => `${rule} ${n}`)
      .join(', ');
  const halts = Object.values(k.halts).reduce((a, b) => a + b, 0);
  const held =
    k.inForce.length === 0
      ? 'no halt in force'
      : `in force: ${k.inForce.map((h) => `${h.rule} on ${h.scope} ${h.until === null ? 'until resumed (keel bots resume)' : `until ${new Date(h.until).toISOString()}`}`).join(', ')}`;
  return `; risk: ${k.deniedTotal} denied${k.deniedTotal > 0 ? ` (${byRule(k.denied)})` : ''}, ${halts} halt(s) and lock(s) started${halts > 0 ? ` (${byRule(k.halts)})` : ''}, ${held}`;
}
