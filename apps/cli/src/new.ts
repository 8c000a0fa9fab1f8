import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Cli } from './context.ts';
import { EXIT, UsageError } from './errors.ts';

export const newHelp = (prog: string): string => `Usage: ${prog} new strategy <name> [--out <file>]

Writes a commented starter strategy, <name>.ts in this folder (or --out), that runs as written:
  ${prog} backtest --strategy ./<name>.ts --data <candles.csv.gz>
It imports @keel/core and zod, which come with Keel. Guide: docs/strategies.md.

Options:
  --out <file>  where to write it (.ts or .mts)
  -h, --help    this help
`;

/** The starter: a real strategy in the tree (type-checked and linted with it), renamed on the way out. */
const TEMPLATE = new URL('./templates/strategy.ts', import.meta.url);

/** `keel new strategy <name>`. */
export async function newCommand(argv: string[], cli: Cli): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    cli.stdout.write(newHelp(cli.prog));
    return EXIT.ok;
  }
  const [what, name, ...extra] = positionals;
  if (what !== 'strategy') throw new UsageError(`expected "strategy", got ${what ? `"${what}"` : 'nothing'}`, 'new');
  if (name === undefined)
    throw new UsageError('name the strategy: new strategy <name>, e.g. new strategy trend-rider', 'new');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, 'new');
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name))
    throw new UsageError(`the name must be kebab-case (a-z, 0-9, -), e.g. trend-rider; got "${name}"`, 'new');
  const out = values.out ?? `${name}.ts`;
  if (!/\.m?ts$/.test(out)) throw new UsageError(`--out must end in .ts or .mts, got "${out}"`, 'new');
  if (existsSync(out)) throw new Error(`${out} exists already: choose another name or --out`);
  const text = readFileSync(TEMPLATE, 'utf8').replaceAll('my-strategy', name);
  writeFileSync(out, text);
  const rel = path.isAbsolute(out) || out.startsWith('.') ? out : `./${out}`;
  cli.stdout.write(
    `wrote ${out}\nrun it:  ${cli.prog} backtest --strategy ${rel} --data <candles.csv.gz>\nits parameters:  ${cli.prog} strategies ${rel}\n`,
  );
  return EXIT.ok;
}
