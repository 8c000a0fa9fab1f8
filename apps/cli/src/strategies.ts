import { STRATEGIES } from '@keel/strategies';
import type { Cli } from './context.ts';
import { EXIT, UsageError } from './errors.ts';

/** `keel strategies`: the built-in strategies. */
export async function strategiesCommand(argv: string[], cli: Cli): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    cli.stdout.write(
      `Usage: ${cli.prog} strategies\nLists the built-in strategies (use them with --strategy <name>).\n`,
    );
    return EXIT.ok;
  }
  if (argv.length > 0) throw new UsageError(`unexpected argument "${argv[0]}"`, 'strategies');
  for (const s of Object.values(STRATEGIES)) cli.stdout.write(`${s.name}\n  ${s.description ?? ''}\n`);
  return EXIT.ok;
}
