import { parseArgs } from 'node:util';
import type { Io } from '@keel/data';
import { DEFAULT_STORE_URL, missingSqliteFile, openStore } from '@keel/store';
import { indent, money, table } from './bots-cli.ts';
import { type PortfolioReport, portfolioOf, type Totals } from './portfolio.ts';

export const PORTFOLIO_HELP = `Usage: keel portfolio [options]

Every bot's books from the store, priced at the newest close any bot saw of each market: per bot
and in total across bots and exchanges, average cost, realised and unrealised PnL, fees in any
asset converted at the mark, equity in the reporting currency. What has no price to convert it
is named, never counted as zero.

Options:
  --store <url>       sqlite:<path> (default ${DEFAULT_STORE_URL}) or postgres://...;
                      keel.yaml's bots.store, else its live.store or paper.store, and
                      KEEL_STORE set it too (keel config show bots)
  --currency <asset>  the reporting currency (default USDT)
  --json              print JSON instead of tables
  -h, --help          this help
`;

export async function runPortfolioCli(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      store: { type: 'string' },
      currency: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(PORTFOLIO_HELP);
    return 0;
  }
  const url = values.store ?? DEFAULT_STORE_URL;
  const missing = missingSqliteFile(url);
  if (missing !== undefined) {
    io.stderr.write(
      `keel portfolio: no store at ${missing} (--store, KEEL_STORE or keel.yaml says where the bots run: keel config show bots)\n`,
    );
    return 1;
  }
  const store = await openStore({ url });
  try {
    const report = await portfolioOf(store, values.currency ? { currency: values.currency } : {});
    io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatPortfolio(report)}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

export function formatPortfolio(r: PortfolioReport): string {
  const c = r.currency;
  const row = (name: string, t: Totals) => [
    name,
    money(t.equity),
    money(t.realizedPnl),
    money(t.unrealizedPnl),
    money(t.fees),
    money(t.realizedPnlNet),
  ];
  const head = ['', `EQUITY ${c}`, 'REALISED', 'UNREALISED', 'FEES', 'REALISED NET'];
  const parts = [`portfolio in ${c}, marks as of ${r.asOf ?? '-'}`, ''];
  parts.push(
    'By bot',
    indent(
      table(
        head,
        r.bots.map((b) => row(`${b.id} (${b.mode}, ${b.exchange})`, b.totals)),
      ),
    ),
    '',
    'By exchange',
    indent(
      table(
        head,
        Object.entries(r.byExchange).map(([x, t]) => row(x, t)),
      ),
    ),
    '',
    indent(table(head, [row('total', r.total)])),
    '',
    'Positions',
  );
  const pos = r.bots.flatMap((b) =>
    b.positions
      .filter((p) => p.size !== 0)
      .map((p) => [
        b.id,
        p.positionSide === undefined ? p.symbol : `${p.symbol} ${p.positionSide}`,
        p.size,
        p.avgCost ?? '-',
        p.mark ?? '-',
        p.unrealizedPnl === null ? '-' : money(p.unrealizedPnl),
        money(p.realizedPnl),
      ]),
  );
  parts.push(
    pos.length === 0
      ? '  none'
      : indent(table(['BOT', 'SYMBOL', 'SIZE', 'AVG COST', 'MARK', 'UNREALISED', 'REALISED'], pos)),
  );
  const fees = r.bots.flatMap((b) => Object.entries(b.feesByAsset).map(([a, n]) => [b.id, a, n]));
  if (fees.length > 0) parts.push('', 'Fees paid, as paid', indent(table(['BOT', 'ASSET', 'AMOUNT'], fees)));
  if (r.unvalued.length > 0)
    parts.push('', `Not valued (no price in ${c}; left out of the totals)`, ...r.unvalued.map((u) => `  ${u}`));
  return parts.join('\n');
}
