import { parseArgs } from 'node:util';
import { loadStrategy } from '@keel/runtime/strategy-file';
import { describeStrategy, STRATEGIES, type StrategyInfo } from '@keel/strategies';
import type { Cli } from './context.ts';
import { EXIT } from './errors.ts';
import { closest } from './suggest.ts';

export const strategiesHelp = (prog: string): string => `Usage: ${prog} strategies [<file|name>...] [--json]

Lists strategies with their parameters: type, default and rules (from each strategy's params
schema), and the rules across parameters. Without arguments: every built-in strategy. With
files (./my-strategy.ts) or names: those. Use one with --strategy <name|file>.

Options:
  --json      the same as JSON: { "strategies": [{ name, description, source, params, rules }] }
  -h, --help  this help
`;

/** `keel strategies`: built-in strategies, or the ones named, with their parameters. */
export async function strategiesCommand(argv: string[], cli: Cli): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    cli.stdout.write(strategiesHelp(cli.prog));
    return EXIT.ok;
  }
  const specs = positionals.length > 0 ? positionals : Object.keys(STRATEGIES);
  const listed: (StrategyInfo & { source: string })[] = [];
  for (const spec of specs) {
    const loaded = await loadStrategy(spec, { suggest: closest });
    listed.push({ ...describeStrategy(loaded.strategy), source: loaded.file ?? 'built-in' });
  }
  if (values.json) {
    cli.stdout.write(`${JSON.stringify({ strategies: listed }, null, 2)}\n`);
    return EXIT.ok;
  }
  cli.stdout.write(`${listed.map(strategyText).join('\n')}`);
  return EXIT.ok;
}

/** One strategy as a block: name, description, a row per parameter, then the cross-parameter rules. */
export function strategyText(s: StrategyInfo & { source: string }): string {
  const head = `${s.name}${s.source === 'built-in' ? '' : `  (${s.source})`}\n${s.description ? `  ${s.description}\n` : ''}`;
  if (!s.described) return `${head}  parameters: not listed (the params schema is not a zod schema)\n`;
  if (s.params.length === 0) return `${head}  no parameters\n`;
  const rows = s.params.map(
    (p) =>
      [
        p.name,
        p.type,
        p.default !== undefined ? `default ${JSON.stringify(p.default)}` : p.required ? 'required' : 'optional',
        [...p.constraints, ...(p.description ? [p.description] : [])].join(', '),
      ] as const,
  );
  const width = (i: 0 | 1 | 2) => Math.max(...rows.map((r) => r[i].length));
  const widths = [width(0), width(1), width(2)];
  const lines = rows.map((r) =>
    `  ${r.map((c, i) => (i < 3 ? c.padEnd(widths[i] as number) : c)).join('  ')}`.trimEnd(),
  );
  return `${head}${lines.join('\n')}\n${s.rules.map((r) => `  rule: ${r}\n`).join('')}`;
}
