import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  type AnyStrategy,
  fixedBpsSlippage,
  humanNumber,
  MAX_SLIPPAGE_BPS,
  percentFee,
  type SimulatedVenueOptions,
} from '@keel/core';
import type { Io } from '@keel/data';
import { writeReport } from '@keel/report';
import { DEFAULT_STORE_URL, missingSqliteFile, openStore, redactStoreUrl, type Store } from '@keel/store';
import { STRATEGIES } from '@keel/strategies';
import { orderOwner } from './bot-engine.ts';
import {
  type BotStatus,
  type BotSummary,
  botStatus,
  listBots,
  type PositionStatus,
  type ResumeOutcome,
  requestStop,
  resumeBot,
  type StopOutcome,
  UnknownBotError,
} from './bots.ts';
import { liveCredentials, sessionSummary } from './cli.ts';
import {
  botParity,
  type FuturesTotals,
  type ParityDifference,
  type ParityOptions,
  type ParityResult,
} from './parity.ts';
import { outsideFeesNote } from './pnl.ts';
import { reconcileBooks } from './portfolio.ts';
import { loadStrategy } from './strategy-file.ts';

export const BOTS_HELP = `Usage: keel bots <command> [options]

Operate bots over their store (the --store the bots run with), from any terminal or host.

Commands:
  list                       every bot: state, mode, strategy, markets, last bar, round trips, net PnL
  status <id>                one bot: state, settings, session, last bar, open orders, positions
                             (size, entry, unrealised PnL), balances, round trips, fees, realised
                             PnL gross and net, last error
  stop <id>                  ask the running bot to stop; it shuts down as on SIGTERM (its
                             --on-shutdown policy) within a second or two, and its session report
                             is printed. Works across hosts that share a PostgreSQL store
  resume <id>                end the bot's risk halts and locks (docs/risk.md): the only way
                             to lift a halt that lasts until resumed. A running bot applies it
                             between two bars; a stopped one before the first bar it trades
  reconcile <id>             the bot's books against the exchange account: every asset and open
                             order, each difference named; what the account holds beyond the
                             bot's books is the user's own (not a difference). Live bots:
                             keys from --keys or KEEL_API_KEY / KEEL_API_SECRET; the exchange
                             at the URL the bot last ran against (its --exchange-url), else
                             the exchange's own, unless --exchange-url is given
  parity <id>                backtest exactly the bars the bot saw, from the state each session
                             started in (with its risk settings), and name every difference

Options:
  --store <url>              sqlite:<path> (default ${DEFAULT_STORE_URL}) or postgres://...;
                             keel.yaml's bots.store, else its live.store or paper.store, and
                             KEEL_STORE set it too (keel config show bots)
  --json                     print JSON instead of tables
  stop, resume: --no-wait    record the request and return
          --timeout <s>      how long to wait for the bot to stop or resume (default 60)
  reconcile: --keys <name>   the bot's key in the encrypted key store
          --exchange-url <u> the exchange's base URL (e.g. keel exchange-sim); default: the
                             one the bot last ran against, else the exchange's own
  parity: --report <dir>     also write an HTML report (report.html) and parity.json there
          --fee <rate>       the model's fee for live sessions (default 0.001; 0.00075 when the bot paid
                             its fees in BNB; perpetuals 0.0005 taker, 0.0002 maker)
          --fee-asset <a>    quote (default) or received: the coin on a buy, the quote on a sell
          --slippage-bps <n> the model's adverse slippage on market and stop fills (default 0)
          --strategy <file>  the strategy file a bot ran (built-in strategies are found by name)
  -h, --help                 this help
`;

export async function runBotsCli(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: true,
    options: {
      store: { type: 'string' },
      json: { type: 'boolean' },
      'no-wait': { type: 'boolean' },
      timeout: { type: 'string' },
      report: { type: 'string' },
      fee: { type: 'string' },
      'fee-asset': { type: 'string' },
      'slippage-bps': { type: 'string' },
      strategy: { type: 'string' },
      keys: { type: 'string' },
      'exchange-url': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h' || values.help) {
    io.stdout.write(BOTS_HELP);
    return 0;
  }
  const fail = (msg: string): number => {
    io.stderr.write(`keel bots ${sub}: ${msg}\nRun '${io.prog ?? 'keel'} bots --help' for usage.\n`);
    return 2;
  };
  if (!['list', 'status', 'stop', 'resume', 'reconcile', 'parity'].includes(sub))
    return fail(`unknown command "${sub}"`);
  const id = positionals[0];
  if (sub !== 'list' && id === undefined) return fail('a bot id is required (keel bots list shows them)');
  if (positionals.length > (sub === 'list' ? 0 : 1)) return fail(`unexpected argument "${positionals.at(-1)}"`);
  const timeoutS = values.timeout === undefined ? 60 : Number(values.timeout);
  if (!(timeoutS > 0)) return fail('--timeout must be a number of seconds > 0');
  const parity = parityOptions(values);
  if (typeof parity === 'string') return fail(parity);

  const url = values.store ?? DEFAULT_STORE_URL;
  const missing = missingSqliteFile(url);
  if (missing !== undefined) {
    io.stderr.write(
      `keel bots ${sub}: no store at ${missing} (--store, KEEL_STORE or keel.yaml says where the bots run: keel config show bots)\n`,
    );
    return 1;
  }
  const store = await openStore({ url });
  const out = (s: string) => io.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
  const json = (v: unknown) => out(JSON.stringify(v, null, 2));
  try {
    switch (sub) {
      case 'list': {
        const bots = await listBots(store);
        if (values.json) json(bots);
        else out(bots.length === 0 ? `no bots in ${redactStoreUrl(url)}` : formatList(bots));
        return 0;
      }
      case 'status': {
        const st = await botStatus(store, id as string);
        if (values.json) json(st);
        else out(formatStatus(st));
        return 0;
      }
      case 'stop':
        return await stopCommand(store, id as string, values, timeoutS, io);
      case 'resume':
        return await resumeCommand(store, id as string, values, timeoutS, io);
      case 'reconcile':
        return await reconcileCommand(store, id as string, values, io);
      case 'parity': {
        const own = values.strategy === undefined ? undefined : (await loadStrategy(values.strategy)).strategy;
        const run = await botParity(store, id as string, { ...parity, strategies: (name) => strategyNamed(name, own) });
        const written = values.report ? writeParityReport(values.report, run) : undefined;
        if (values.json) json(run.result);
        else out(formatParity(run.result));
        if (written) io.stderr.write(`report: ${written}\n`);
        return 0;
      }
      default:
        return fail(`unknown command "${sub}"`);
    }
  } catch (e) {
    if (e instanceof UnknownBotError) {
      io.stderr.write(`keel bots ${sub}: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await store.close();
  }
}

/** The strategy a stored bot ran: the file given with --strategy when it has that name, else a built-in. */
function strategyNamed(name: string, own: AnyStrategy | undefined): AnyStrategy {
  if (own?.name === name) return own;
  const s = Object.hasOwn(STRATEGIES, name) ? STRATEGIES[name] : undefined;
  if (s) return s;
  throw new Error(
    `the bot ran strategy "${name}", which is not built in${own ? ` (--strategy gives "${own.name}")` : ''}: give its file with --strategy ./its-file.ts`,
  );
}

type Values = {
  json?: boolean | undefined;
  'no-wait'?: boolean | undefined;
  fee?: string | undefined;
  'fee-asset'?: string | undefined;
  'slippage-bps'?: string | undefined;
};

function parityOptions(v: Values): ParityOptions | string {
  if (v.fee === undefined && v['fee-asset'] === undefined && v['slippage-bps'] === undefined) return {};
  const rate = v.fee === undefined ? 0.001 : Number(v.fee);
  if (!(rate >= 0 && rate < 1)) return '--fee must be a rate in [0, 1), e.g. 0.001';
  const asset = v['fee-asset'] ?? 'quote';
  if (asset !== 'quote' && asset !== 'received')
    return "--fee-asset must be quote or received (the coin on a buy, the quote on a sell: Binance spot's rule)";
  const bps = v['slippage-bps'] === undefined ? 0 : Number(v['slippage-bps']);
  if (!(bps >= 0 && bps < MAX_SLIPPAGE_BPS))
    return `--slippage-bps must be a number from 0 to below ${MAX_SLIPPAGE_BPS} (100 = 1 %; ${MAX_SLIPPAGE_BPS} would sell at a price of 0)`;
  const model: SimulatedVenueOptions = {
    fees: percentFee(rate, { asset }),
    ...(bps > 0 ? { slippage: fixedBpsSlippage(bps) } : {}),
  };
  return {
    model,
    modelLabel: `fee ${rate * 100} % ${asset === 'quote' ? 'in the quote asset' : 'in the asset received'}, ${bps > 0 ? `${bps} bps slippage` : 'no slippage'}, fills at the next bar's open`,
  };
}

/** An outcome as JSON; exit code 1 when it timed out. */
function printJson(io: Io, outcome: { readonly kind: string }): number {
  io.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
  return outcome.kind === 'timeout' ? 1 : 0;
}

async function stopCommand(store: Store, id: string, v: Values, timeoutS: number, io: Io): Promise<number> {
  const outcome: StopOutcome = await requestStop(store, id, {
    wait: v['no-wait'] !== true,
    timeoutMs: timeoutS * 1000,
  });
  if (v.json) return printJson(io, outcome);
  const say = (s: string) => io.stdout.write(`${s}\n`);
  switch (outcome.kind) {
    case 'not-running':
      say(
        `bot ${id} is not running (${outcome.state === 'crashed' ? 'crashed: no instance holds its lock; the next start reconciles' : 'stopped'})${outcome.report ? `; its last session: ${sessionSummary(outcome.report)}` : ''}`,
      );
      return 0;
    case 'requested':
      say(`asked bot ${id} (${outcome.owner}) to stop; keel bots status ${id} shows when it has`);
      return 0;
    case 'timeout':
      say(
        `asked bot ${id} (${outcome.owner}) to stop; it has not stopped after ${Math.round(outcome.waitedMs / 1000)} s (still shutting down, or hanging): see its log and keel bots status ${id}`,
      );
      return 1;
    case 'stopped':
      say(
        outcome.report
          ? `bot ${id} stopped. ${sessionSummary(outcome.report)}`
          : `bot ${id} is no longer running, but its session has no report: it ended without shutting down (crashed)`,
      );
      return 0;
    default: {
      const never: never = outcome;
      throw new Error(`Invariant violated: stop outcome ${JSON.stringify(never)}`);
    }
  }
}

async function reconcileCommand(
  store: Store,
  id: string,
  v: Values & { keys?: string | undefined; 'exchange-url'?: string | undefined },
  io: Io,
): Promise<number> {
  const b = await store.bots.get(id);
  if (!b)
    throw new UnknownBotError(
      id,
      (await store.bots.list()).map((x) => x.id),
    );
  if (b.mode !== 'live') {
    io.stderr.write(`keel bots reconcile: bot ${id} is a paper bot: it has no exchange account to reconcile with\n`);
    return 2;
  }
  const log = (level: string, msg: string) => {
    if (level !== 'info') io.stderr.write(`${msg}\n`);
  };
  const keys = await liveCredentials(store, v.keys, b.exchange, io, log);
  if ('problem' in keys) {
    io.stderr.write(`keel bots reconcile: ${keys.message}\n`);
    return keys.problem === 'usage' ? 2 : 1;
  }
  // The URL the bot last ran against (a simulator's, say) unless --exchange-url says otherwise.
  const url = v['exchange-url'] ?? b.exchangeUrl ?? undefined;
  const where =
    url === undefined
      ? `${keys.exchange}'s own endpoint`
      : v['exchange-url'] !== undefined
        ? `${url} (--exchange-url)`
        : `${url}, where the bot last ran (--exchange-url to ask another)`;
  const { connectExchange } = await import('./live/ccxt.ts');
  const conn = await connectExchange({
    exchange: keys.exchange,
    ...(url !== undefined ? { url } : {}),
    ...keys.creds,
    botId: id,
    symbols: b.symbols,
    log,
  });
  try {
    const report = await reconcileBooks(store, id, conn.live, { isOwnOrder: (c) => orderOwner(id, c) === 'this-bot' });
    if (v.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      io.stdout.write(`bot ${id} against its ${b.exchange} account at ${where}: ${report.differences} difference(s)\n`);
      for (const i of report.items) io.stdout.write(`  ${i.kind.padEnd(26)} ${i.detail}\n`);
    }
    return report.differences > 0 ? 1 : 0;
  } finally {
    await conn.close();
  }
}

async function resumeCommand(store: Store, id: string, v: Values, timeoutS: number, io: Io): Promise<number> {
  const outcome: ResumeOutcome = await resumeBot(store, id, {
    wait: v['no-wait'] !== true,
    timeoutMs: timeoutS * 1000,
  });
  if (v.json) return printJson(io, outcome);
  const say = (s: string) => io.stdout.write(`${s}\n`);
  const named = (hs: readonly { rule: string; scope: string }[]) =>
    hs.length === 0 ? 'no halt or lock was in force' : hs.map((h) => `${h.rule} on ${h.scope}`).join(', ');
  switch (outcome.kind) {
    case 'no-risk':
      say(`bot ${id} runs without risk settings: there is nothing to resume`);
      return 0;
    case 'resumed':
      say(`bot ${id} resumed trading (${named(outcome.ended)}); every protection starts afresh from its equity now`);
      return 0;
    case 'requested':
      say(
        `recorded: bot ${id} (${outcome.state}) resumes trading when it runs, before the first bar it trades (${named(outcome.halts)})`,
      );
      return 0;
    case 'timeout':
      say(
        `asked bot ${id} to resume; it has not applied it after ${Math.round(outcome.waitedMs / 1000)} s: see its log and keel bots status ${id}`,
      );
      return 1;
    default: {
      const never: never = outcome;
      throw new Error(`Invariant violated: resume outcome ${JSON.stringify(never)}`);
    }
  }
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(head: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? num(c) : c)));
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const right = head.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const fmt = (r: readonly string[]) =>
    r
      .map((c, i) => (right[i] ? c.padStart(width[i] ?? 0) : c.padEnd(width[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...cells.map(fmt)].join('\n');
}

function num(x: number): string {
  return Number.isInteger(x) ? String(x) : humanNumber(x);
}

/** A position's size for a person: to the market's step; below it, flat (`0`, or `0.000004 (dust)`). */
function positionSize(p: PositionStatus): string {
  if (!p.flat) return humanNumber(p.size, 10, p.stepSize || undefined);
  // What the fills' binary arithmetic leaves (-5.6e-17 after selling what was bought) is nothing.
  return Math.abs(p.size) <= p.stepSize * 1e-6 ? '0' : `${humanNumber(p.size)} (dust)`;
}

export function money(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : String(x);
}

function formatList(bots: readonly BotSummary[]): string {
  return table(
    ['ID', 'STATE', 'MODE', 'STRATEGY', 'SYMBOLS', 'STARTED', 'LAST BAR', 'ROUND TRIPS', 'NET PNL'],
    bots.map((b) => [
      b.id,
      b.state,
      b.mode,
      b.strategy,
      b.symbols.join(','),
      b.started ?? '-',
      b.lastBar ?? '-',
      b.trades,
      money(b.realizedPnlNet),
    ]),
  );
}

function formatStatus(s: BotStatus): string {
  const params = Object.entries((s.params ?? {}) as Record<string, unknown>)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
  const state =
    s.state === 'running' || s.state === 'stopping'
      ? `${s.state} (held by ${s.holder?.owner}, heartbeat ${s.holder?.heartbeatAt})${s.stopRequest ? `; stop requested by ${s.stopRequest.by} at ${s.stopRequest.at}` : ''}`
      : s.state === 'crashed'
        ? 'crashed (no instance holds its lock; the next start reconciles)'
        : 'stopped';
  const facts: [string, string][] = [
    ['state', state],
    ['mode', `${s.mode} on ${s.exchange}`],
    ['strategy', `${s.strategy}${params ? ` ${params}` : ''}`],
    ['symbols', s.symbols.join(', ')],
    [
      'session',
      s.session
        ? `${s.session.seq}, started ${s.session.startedAt}${s.session.endedAt ? `, ended ${s.session.endedAt} (${s.session.reason ?? 'no report'})` : ''}`
        : 'never started',
    ],
    [
      'last bar',
      Object.entries(s.lastBar)
        .map(([f, t]) => `${f} ${t}`)
        .join(', ') || '-',
    ],
    ['round trips', `${s.trades} (${s.fills} fills)`],
    [
      'realised',
      `${money(s.realizedPnlGross)} gross, ${money(s.fees)} fees, ${money(s.realizedPnlNet)} net${outsideFeesNote(s)}`,
    ],
    ['last error', s.lastError ? `${s.lastError.at} ${s.lastError.message}` : '-'],
    ...riskFacts(s),
  ];
  const w = Math.max(...facts.map(([k]) => k.length));
  const parts = [`bot ${s.id}`, ...facts.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)];
  parts.push(
    '',
    'Positions',
    s.positions.length === 0
      ? '  none'
      : indent(
          table(
            ['SYMBOL', 'SIZE', 'ENTRY', 'LAST PRICE', 'AT', 'UNREALISED PNL'],
            s.positions.map((p) => [
              p.positionSide === undefined ? p.symbol : `${p.symbol} ${p.positionSide}`,
              positionSize(p),
              p.entry ?? '-',
              p.lastPrice ?? '-',
              p.lastPriceAt ?? '-',
              p.unrealizedPnl === null ? '-' : money(p.unrealizedPnl),
            ]),
          ),
        ),
    '',
    'Balances',
    s.balances.length === 0
      ? '  none'
      : indent(
          table(
            ['ASSET', 'FREE', 'USED', 'TOTAL'],
            s.balances.map((b) => [b.asset, b.free, b.used, b.total]),
          ),
        ),
    '',
    'Open orders',
    s.openOrders.length === 0
      ? '  none'
      : indent(
          table(
            ['ID', 'SYMBOL', 'SIDE', 'TYPE', 'AMOUNT', 'FILLED', 'PRICE', 'STATUS', 'CREATED'],
            s.openOrders.map((o) => [
              o.id,
              o.symbol,
              o.side,
              o.type,
              o.amount,
              o.filled,
              o.price ?? '-',
              o.status,
              o.createdAt,
            ]),
          ),
        ),
  );
  return parts.join('\n');
}

export function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function formatParity(r: ParityResult): string {
  const lines = [
    `parity of bot ${r.botId} (${r.mode}, ${r.strategy}): the backtest of the ${r.bars} bars it handled in ${r.sessions.length} session(s)`,
  ];
  for (const s of r.sessions)
    lines.push(
      `  session ${s.seq}: ${s.bars} bars ${s.from} -> ${s.to}${s.warmupBars > 0 ? ` after ${s.warmupBars} warm-up bars` : ''}; model: ${s.model}`,
    );
  lines.push(
    `  orders: bot ${r.orders.bot}, backtest ${r.orders.backtest}, the same signal ${r.orders.matched}; fills: bot ${r.fills.bot}, backtest ${r.fills.backtest}`,
    `  realised net: bot ${money(r.bot.realizedPnlNet)} (${money(r.bot.fees)} fees), backtest ${money(r.backtest.realizedPnlNet)} (${money(r.backtest.fees)} fees)`,
  );
  if (r.futures !== undefined) {
    const f = (t: FuturesTotals) =>
      `${money(t.funding)} in ${t.payments} payment(s), ${t.liquidations} liquidation(s)${t.liquidations > 0 ? ` (clearance fees ${money(t.clearanceFees)})` : ''}`;
    lines.push(`  funding: bot ${f(r.futures.bot)}; backtest ${f(r.futures.backtest)}`);
  }
  if (r.differences.length === 0)
    lines.push('', 'No differences: the bot did exactly what the backtest of its bars did.');
  else {
    const counts = Object.entries(r.counts)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ');
    lines.push(
      '',
      `${r.differences.length} difference(s): ${counts}; slippage cost ${money(r.slippageCost)}, fees against the model ${money(r.feeDifference)}`,
    );
    for (const d of r.differences) lines.push(`  ${describe(d)}`);
  }
  if (r.notes.length > 0) lines.push('', 'Notes:', ...r.notes.map((n) => `  - ${n}`));
  return lines.join('\n');
}

function describe(d: ParityDifference): string {
  return `${d.signalAt}  ${d.kind.padEnd(13)} ${d.id}  ${d.detail}`;
}

/** report.html (the backtest of the bars the bot saw, with the differences on top) and parity.json. */
function writeParityReport(dir: string, run: Awaited<ReturnType<typeof botParity>>): string {
  const r = run.result;
  mkdirSync(dir, { recursive: true });
  const paths = writeReport(dir, run.backtest, run.bars, {
    title: `Parity: bot ${r.botId}, the backtest of the bars it saw`,
    notes: [
      r.differences.length === 0
        ? 'No differences: the bot did exactly what this backtest did.'
        : `${r.differences.length} difference(s) between what the bot did and this backtest (listed below).`,
      ...r.notes,
    ],
    sections: [
      {
        title: 'Differences: the bot against the backtest',
        columns: ['Signal (UTC)', 'Kind', 'Order', 'What differs', 'Cost'],
        rows: r.differences.map((d) => [d.signalAt, d.kind, d.id, d.detail, d.cost === null ? '' : d.cost.toFixed(6)]),
        empty: 'None.',
      },
      {
        title: 'Sessions',
        columns: ['Session', 'Bars', 'From', 'To', 'Warm-up', 'Model'],
        rows: r.sessions.map((s) => [
          String(s.seq),
          String(s.bars),
          s.from ?? '',
          s.to ?? '',
          String(s.warmupBars),
          s.model,
        ]),
      },
    ],
  });
  writeFileSync(path.join(dir, 'parity.json'), `${JSON.stringify(r, null, 1)}\n`);
  return paths.html;
}

/** The status lines of a bot's risk engine: settings, halts in force, denials by rule. */
function riskFacts(s: BotStatus): [string, string][] {
  const r = s.risk;
  if (r === null) return [['risk', 'none']];
  const out: [string, string][] = [['risk', r.settings.join(' ') || '-']];
  if (r.halts.length === 0) out.push(['halts', 'none in force']);
  for (const h of r.halts)
    out.push([
      'halts',
      `${h.rule} on ${h.scope} (${h.action}) since ${h.sinceIso}, ${h.untilIso === null ? `until resumed: keel bots resume ${s.id}` : `until ${h.untilIso}`}: ${h.message}`,
    ]);
  out.push([
    'denied',
    r.deniedTotal === 0
      ? '0 orders'
      : `${r.deniedTotal} orders (${Object.entries(r.denied)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')})`,
  ]);
  if (r.resumeRequest)
    out.push(['resume', `requested by ${r.resumeRequest.by} at ${r.resumeRequest.at}, not applied yet`]);
  return out;
}
