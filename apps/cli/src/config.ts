import path from 'node:path';
import { parseArgs } from 'node:util';
import type { ConfigFile, Section, Setting } from '@keel/runtime/config';
import { hasConfigSources } from '@keel/runtime/config-sources';
import type { Cli } from './context.ts';
import { EXIT, UsageError } from './errors.ts';
import { closest } from './suggest.ts';

/** `--config <file>` (or `--config=<file>`) taken out of a command line; the rest as it was. */
function takeConfigFlag(argv: readonly string[]): { file: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i] as string;
    if (t === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (t === '--config') {
      file = argv[++i];
      if (file === undefined) throw new UsageError('--config needs a file, e.g. --config keel.yaml');
    } else if (t.startsWith('--config=')) file = t.slice('--config='.length);
    else rest.push(t);
  }
  return { file, rest };
}

/** The configuration file in effect (`--config`, `KEEL_CONFIG`, or ./keel.yaml), read and validated. */
async function loadConfigFile(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ file: ConfigFile; shown: string } | undefined> {
  const { findConfigFile, readConfigFile } = await import('@keel/runtime/config');
  const found = findConfigFile(cwd, explicit ?? (env.KEEL_CONFIG || undefined));
  if (found === undefined) return undefined;
  const rel = path.relative(cwd, found);
  const shown = rel.startsWith('..') ? found : rel;
  return { file: await readConfigFile(found, { display: shown, suggest: closest }), shown };
}

/**
 * The one place the configuration reaches a command: its command line, completed with the
 * settings of the file and the environment that the command line does not give (flags win). The
 * command then parses its flags as always. `--help` skips the file, so a broken one never hides it.
 */
export async function applyConfig(
  section: Section,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Promise<string[]> {
  const { file, rest } = takeConfigFlag(argv);
  if (rest.includes('--help') || rest.includes('-h')) return rest;
  // Nothing to complete the command line with: the settings' rules (~10 ms to load) are not needed.
  if (!hasConfigSources(cwd, file, env)) return rest;
  const { resolveSettings, settingsArgv } = await import('@keel/runtime/config');
  const loaded = await loadConfigFile(file, env, cwd);
  const settings = resolveSettings({
    section,
    ...(loaded ? { file: loaded.file, fileDisplay: loaded.shown } : {}),
    env,
    argv: rest,
  });
  return settingsArgv(settings, rest);
}

export const configHelp = (
  prog: string,
): string => `Usage: ${prog} config show [backtest|paper|live|data|bots|backtests] [--json] [--config <file>]

Prints the effective settings of each command and where each comes from: the command's default,
the configuration file (keel.yaml in this folder, or --config <file>, or $KEEL_CONFIG) with its
line, or the environment (KEEL_<FLAG>, e.g. KEEL_FEE). Flags typed on a command line win over all
of them. The file is validated first: a wrong setting is reported with its line and rule.
Guide and a complete example: docs/config.md.

Options:
  --json           { file, sections: { backtest: [{ key, value, origin }] } }
  --config <file>  read this file instead of ./keel.yaml
  -h, --help       this help
`;

/** `keel config show`. */
export async function configCommand(argv: string[], cli: Cli): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    cli.stdout.write(configHelp(cli.prog));
    return EXIT.ok;
  }
  const { SECTIONS, resolveSettings } = await import('@keel/runtime/config');
  const [sub, which, ...extra] = positionals;
  if (sub !== 'show') throw new UsageError(`expected "show", got ${sub ? `"${sub}"` : 'nothing'}`, 'config');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, 'config');
  if (which !== undefined && !(SECTIONS as readonly string[]).includes(which))
    throw new UsageError(`"${which}" is not a section: ${SECTIONS.join(', ')}`, 'config');
  const sections = which ? [which as Section] : SECTIONS;
  const loaded = await loadConfigFile(values.config, process.env, process.cwd());
  const resolved: Record<string, Setting[]> = {};
  const problems: string[] = [];
  for (const section of sections) {
    try {
      resolved[section] = resolveSettings({
        section,
        ...(loaded ? { file: loaded.file, fileDisplay: loaded.shown } : {}),
        env: process.env,
      });
    } catch (e) {
      // One section refusing the file (paper and a top-level risk:) does not hide the others.
      if (which !== undefined) throw e;
      problems.push(`${section}: ${(e as Error).message}`);
    }
  }
  if (values.json) {
    cli.stdout.write(`${JSON.stringify({ file: loaded?.file.path ?? null, sections: resolved, problems }, null, 2)}\n`);
    return problems.length > 0 ? EXIT.failure : EXIT.ok;
  }
  const lines = [
    loaded
      ? `configuration file: ${loaded.shown}`
      : 'configuration file: none (no keel.yaml here, no --config, no KEEL_CONFIG)',
  ];
  for (const [section, settings] of Object.entries(resolved)) {
    lines.push('', `${section}:`);
    const rows = settings.map((s) => [s.key, s.value === undefined ? '-' : String(s.value), originText(s)] as const);
    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.min(40, Math.max(...rows.map((r) => r[1].length)));
    for (const [k, v, o] of rows) lines.push(`  ${k.padEnd(w0)}  ${v.padEnd(w1)}  ${o}`);
  }
  for (const p of problems) lines.push('', `error: ${p}`);
  cli.stdout.write(`${lines.join('\n')}\n`);
  return problems.length > 0 ? EXIT.failure : EXIT.ok;
}

function originText(s: Setting): string {
  const o = s.origin;
  switch (o.kind) {
    case 'default':
      return s.value === undefined ? 'unset' : 'default';
    case 'file':
      return `${o.file}${o.line !== undefined ? `:${o.line}` : ''} (${o.key})`;
    case 'env':
      return `env ${o.name}`;
    case 'flag':
      return 'flag';
  }
}
