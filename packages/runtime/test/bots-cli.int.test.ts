import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sliceSeries } from '@keel/core';
import { readBarsFile } from '@keel/data';
import { startExchangeSim } from '@keel/exchange-sim';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip, REPO_ROOT } from '../../../test-support/shared.ts';
import { simBars, T0 } from './live-harness.ts';

// `keel bots` and the bot commands as a user runs them: the real bin, each command its own
// process, the bot in its own process, the store shared (SQLite file; PostgreSQL, as hosts
// sharing one would), the live bot against the simulator over loopback with the real ccxt client.
if (!HAS_SHARED_DATA) noteSkip('keel bots through the real bin');

const BIN = path.join(REPO_ROOT, 'apps/cli/bin/keel.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'keel-bots-cli-'));
const PG_URL = process.env.KEEL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PG_SCHEMA = `keel_bots_cli_${process.pid}`;
afterAll(async () => {
  rmSync(tmp, { recursive: true, force: true });
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect().then(
    () => c.query(`drop schema if exists ${PG_SCHEMA} cascade`),
    () => undefined,
  );
  await c.end().catch(() => undefined);
});
const STACK = /^\s+at .+[(:]\d+/m;

/** One command to its end. Not spawnSync: the simulator runs in this process and must keep answering. */
async function keel(args: string[], env: Record<string, string> = {}) {
  const r = new Running(args, env);
  const timer = setTimeout(() => r.kill(), 120_000);
  const code = await r.exited;
  clearTimeout(timer);
  return { code, out: r.out, err: r.err };
}

/** A command that runs until stopped (a bot), its output collected as it comes. */
class Running {
  readonly proc: ChildProcess;
  out = '';
  err = '';
  readonly exited: Promise<number | null>;
  constructor(args: string[], env: Record<string, string> = {}) {
    this.proc = spawn(process.execPath, [BIN, ...args], { cwd: tmp, env: { ...process.env, ...env } });
    this.proc.stdout!.on('data', (d: Buffer) => void (this.out += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => void (this.err += d.toString()));
    this.exited = new Promise((r) => this.proc.on('exit', (c) => r(c)));
  }
  async waitFor(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end || this.proc.exitCode !== null)
        throw new Error(
          `${this.proc.exitCode !== null ? 'exited' : 'timed out'} waiting for ${what}\n${this.err.slice(-3000)}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2_000 });
  try {
    await c.connect();
    await c.query(`create schema if not exists ${PG_SCHEMA}`);
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

describe.skipIf(!HAS_SHARED_DATA)('keel bots and keel paper|live, through the real bin', async () => {
  const series = HAS_SHARED_DATA
    ? sliceSeries(readBarsFile(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')).series, 0, 600)
    : (undefined as never);
  const csv = path.join(tmp, 'btc-600.csv');
  if (HAS_SHARED_DATA) {
    const rows = ['timestamp,open,high,low,close,volume'];
    for (let i = 0; i < series.length; i++)
      rows.push(
        `${new Date(series.time[i]!).toISOString().slice(0, 19).replace('T', ' ')},${series.open[i]},${series.high[i]},${series.low[i]},${series.close[i]},${series.volume[i]}`,
      );
    writeFileSync(csv, `${rows.join('\n')}\n`);
  }
  /** `keel paper` of sma-cross(3, 8) on the replayed bars, one bar every `delayMs`. */
  const replayArgs = (url: string, id: string, delayMs: number) => [
    'paper',
    '--strategy',
    'sma-cross',
    '--param',
    'fast=3',
    '--param',
    'slow=8',
    '--symbol',
    'BTC/USDT',
    '--replay',
    csv,
    '--replay-delay-ms',
    String(delayMs),
    '--store',
    url,
    '--bot-id',
    id,
  ];
  const pgUp = await pgReachable();
  if (!pgUp) console.warn(`[skip] keel bots on PostgreSQL: ${PG_URL} is not reachable`);
  const backends = [
    { name: 'sqlite', url: `sqlite:${path.join(tmp, 'bots.db')}`, up: true, full: true },
    // The stop from another process as hosts sharing a PostgreSQL store see it; the other
    // commands read the store through the same functions on both engines (bots.int.test.ts).
    { name: 'postgres', url: `${PG_URL}?options=-c%20search_path%3D${PG_SCHEMA}`, up: pgUp, full: false },
  ];

  for (const b of backends)
    it.skipIf(!b.up)(
      b.full
        ? `${b.name}: list, status, stop from another process, a second instance and changed params refused, parity of the bars it saw`
        : `${b.name}: status, and stop from another process`,
      async () => {
        const id = `cli-${b.name}`;
        const args = (...extra: string[]) => [...replayArgs(b.url, id, 150), '--log-format', 'json', ...extra];
        const bot = new Running(args());
        try {
          const logLines = () =>
            bot.err
              .split('\n')
              .filter((l) => l.startsWith('{'))
              .map((l) => JSON.parse(l) as Record<string, unknown>);
          await bot.waitFor(() => logLines().filter((l) => l.what === 'fill').length >= 2, 'two fills');

          if (b.full) {
            const second = await keel(args());
            expect(second.code).toBe(1);
            expect(second.err).toMatch(new RegExp(`bot "${id}" is already running \\(held by [^)]+:\\d+:[a-z0-9]+\\)`));
            expect(second.err).not.toMatch(STACK);

            const list = await keel(['bots', 'list', '--store', b.url, '--json']);
            expect(list.code).toBe(0);
            expect(JSON.parse(list.out)).toEqual([
              expect.objectContaining({
                id,
                state: 'running',
                mode: 'paper',
                strategy: 'sma-cross',
                symbols: ['BTC/USDT'],
              }),
            ]);
          }
          const status = await keel(['bots', 'status', id, '--store', b.url, '--json']);
          expect(status.code).toBe(0);
          const st = JSON.parse(status.out);
          expect(st).toMatchObject({
            id,
            state: 'running',
            mode: 'paper',
            strategy: 'sma-cross',
            params: { fast: 3, slow: 8, allocation: 0.95 },
            symbols: ['BTC/USDT'],
            lastError: null,
          });
          expect(st.holder.owner).toMatch(/:\d+:[a-z0-9]+$/);
          expect(st.lastBar['BTC/USDT@1m']).toMatch(/^2024-01-01T/);
          expect(st.fills).toBeGreaterThanOrEqual(2);
          for (const k of ['openOrders', 'positions', 'balances']) expect(Array.isArray(st[k])).toBe(true);
          for (const k of ['trades', 'fees', 'realizedPnlGross', 'realizedPnlNet']) expect(typeof st[k]).toBe('number');
          if (b.full) {
            const human = await keel(['bots', 'status', id, '--store', b.url]);
            expect(human.out).toMatch(/^\s+state\s+running \(held by /m);
            expect(human.out).toMatch(/^Positions$/m);
          }

          const stop = await keel(['bots', 'stop', id, '--store', b.url]);
          expect(stop.code).toBe(0);
          expect(stop.out).toMatch(
            new RegExp(`^bot ${id} stopped\\. session 1 ended \\(stop requested by .+\\): \\d+ bars, \\d+ fills`),
          );
          expect(await bot.exited, bot.err.slice(-3000)).toBe(0);
          const report = JSON.parse(bot.out);
          expect(report.reason).toMatch(/^stop requested by /);
          expect(report.bars).toBeLessThan(series.length); // it stopped early, not at the end
          // The JSON log: one object per line; one line per fill, with what a person needs.
          const lines = logLines();
          expect(
            bot.err.split('\n').filter((l) => l.length > 0),
            bot.err,
          ).toHaveLength(lines.length); // nothing but JSON
          for (const l of lines) expect(Object.keys(l).slice(0, 4)).toEqual(['time', 'level', 'bot', 'msg']);
          const fills = lines.filter((l) => l.what === 'fill');
          expect(fills.length).toBe(report.fills);
          for (const l of fills)
            expect(l).toMatchObject({
              bot: id,
              side: expect.stringMatching(/^(buy|sell)$/),
              amount: expect.any(Number),
              symbol: 'BTC/USDT',
              price: expect.any(Number),
              id: expect.stringMatching(/^k/),
            });
          expect(lines.filter((l) => l.what === 'sent').length).toBeGreaterThanOrEqual(fills.length);
          if (!b.full) return;

          const again = await keel(['bots', 'stop', id, '--store', b.url]);
          expect(again.code).toBe(0);
          expect(again.out).toMatch(
            new RegExp(`^bot ${id} is not running \\(stopped\\); its last session: session 1 ended`),
          );

          const changed = await keel(args().map((a) => (a === 'fast=3' ? 'fast=4' : a)));
          expect(changed.code).toBe(1);
          expect(changed.err).toMatch(
            /was run as sma-cross fast=3 slow=8 allocation=0.95 direction="long" on BTC\/USDT; this start asks for sma-cross fast=4 slow=8 allocation=0.95 direction="long" on BTC\/USDT \(changed: fast 3 -> 4\).*--reconfigure/,
          );
          expect(changed.err).not.toMatch(STACK);

          const dir = path.join(tmp, `parity-${b.name}`);
          const parity = await keel(['bots', 'parity', id, '--store', b.url, '--json', '--report', dir]);
          expect(parity.code, parity.err).toBe(0);
          const p = JSON.parse(parity.out);
          expect(p.differences).toEqual([]);
          expect(p.bars).toBe(report.bars);
          expect(p.orders.bot).toBe(p.orders.backtest);
          expect(p.fills).toEqual({ bot: report.fills, backtest: report.fills });
          expect(readFileSync(path.join(dir, 'report.html'), 'utf8')).toContain(`Parity: bot ${id}`);
          expect(existsSync(path.join(dir, 'parity.json'))).toBe(true);
        } finally {
          bot.kill();
        }
      },
      240_000,
    );

  it('live: the key from the environment is named by its last 4 characters (a short key says it is not shown); wrong keys and a second instance exit cleanly, without a stack trace; keel bots stop stops a live bot; keel bots reconcile asks the exchange URL it ran against', async () => {
    const key = { apiKey: 'sim-api-key-0123456789wxyz', secret: 'sim-secret-0123456789' };
    const bars = simBars(sliceSeries(series, 0, 20));
    const sim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars }],
      accounts: [{ ...key, balances: { USDT: 10_000 } }],
      startTime: T0,
    });
    const url = `sqlite:${path.join(tmp, 'live.db')}`;
    const args = ['live', '--strategy', 'sma-cross', '--symbol', 'BTC/USDT', '--exchange-url', sim.httpUrl];
    const live = (k: { apiKey: string; secret: string }) => ({ KEEL_API_KEY: k.apiKey, KEEL_API_SECRET: k.secret });
    const bot = new Running([...args, '--confirm-live', '--store', url], live(key));
    try {
      // (Started first: two processes creating one new SQLite store at once can collide.)
      await bot.waitFor(() => /live bot started/.test(bot.err), 'the live bot to start');
      const wrong = await keel(
        [...args, '--confirm-live', '--store', url, '--bot-id', 'other'],
        live({ apiKey: 'not-the-key-4321', secret: 'x' }),
      );
      expect(wrong.code).toBe(1);
      expect(wrong.err).toContain('api key …4321');
      expect(wrong.err).toMatch(
        /keel live: the exchange refused the API key from KEEL_API_KEY \(…4321\): .*-2015.*\nCheck the key/,
      );
      expect(wrong.err).not.toMatch(STACK);

      // A key too short to show its last 4 says so, rather than a bare "…".
      const short = await keel(
        [...args, '--confirm-live', '--store', url, '--bot-id', 'short'],
        live({ apiKey: 'k4', secret: 'x' }),
      );
      expect(short.code).toBe(1);
      expect(short.err).toContain('(binance, api key …(short key, not shown))');
      expect(bot.err).toMatch(/using the exchange key from KEEL_API_KEY \/ KEEL_API_SECRET \(binance, api key …wxyz\)/);
      expect(bot.err).not.toContain(key.apiKey);
      expect(bot.err).not.toContain(key.secret);

      const second = await keel([...args, '--confirm-live', '--store', url], live(key));
      expect(second.code).toBe(1);
      expect(second.err).toMatch(/bot "sma-cross-BTCUSDT-live" is already running \(held by /);
      expect(second.err).not.toMatch(STACK);

      const stop = await keel(['bots', 'stop', 'sma-cross-BTCUSDT-live', '--store', url]);
      expect(stop.code).toBe(0);
      expect(stop.out).toMatch(/^bot sma-cross-BTCUSDT-live stopped\. session 1 ended \(stop requested by /);
      expect(await bot.exited).toBe(0);
      expect(bot.err).not.toMatch(STACK);

      // keel bots reconcile: the stopped bot's books against its account, with the same key, at
      // the URL the bot ran against (the simulator's, recorded at its start), not api.binance.com.
      const rec = await keel(['bots', 'reconcile', 'sma-cross-BTCUSDT-live', '--store', url], live(key));
      expect(rec.err).not.toMatch(STACK);
      expect(rec.code, rec.err).toBe(0);
      expect(rec.out).toMatch(
        new RegExp(
          `^bot sma-cross-BTCUSDT-live against its binance account at ${sim.httpUrl}, where the bot last ran \\(--exchange-url to ask another\\): 0 difference\\(s\\)\\n {2}balance-equal +USDT: `,
        ),
      );
    } finally {
      bot.kill();
      await sim.close();
    }
  }, 180_000);
  it('risk: a halt survives kill -9 and SIGTERM, a start with other risk settings is refused, keel bots status shows the halt and the denials, keel bots resume lifts it', async () => {
    const url = `sqlite:${path.join(tmp, 'risk.db')}`;
    const id = 'cli-risk';
    const args = (rule: string) => [...replayArgs(url, id, 20), '--store-sync', 'normal', '--risk', rule];
    const denials = (r: Running) => (r.err.match(/DENIED .*reason: entries halted by max-losses/g) ?? []).length;
    const first = new Running(args('max-losses=2'));
    try {
      await first.waitFor(() => /HALT +max-losses halts trading until resumed/.test(first.err), 'the halt');
      await first.waitFor(() => denials(first) >= 1, 'an entry denied');
      first.kill(); // kill -9
      await first.exited;

      const restarted = new Running(args('max-losses=2'));
      await restarted.waitFor(
        () => /still halted after the restart: max-losses on account/.test(restarted.err),
        'the halt restored after kill -9',
      );
      await restarted.waitFor(() => denials(restarted) >= 1, 'an entry denied after the restart');
      restarted.proc.kill('SIGTERM');
      expect(await restarted.exited).toBe(0);
      expect(restarted.err).not.toMatch(/FILL +buy/); // halted: no entry filled
      const report = JSON.parse(restarted.out) as {
        risk: { denied: Record<string, number>; inForce: { rule: string; until: number | null }[] };
      };
      expect(report.risk.inForce).toMatchObject([{ rule: 'max-losses', until: null }]);
      expect(report.risk.denied['max-losses']).toBe(denials(restarted));
      expect(restarted.err).toMatch(
        /risk: \d+ denied \(max-losses \d+\).*in force: max-losses on account until resumed/,
      );

      const other = await keel(args('max-losses=3'));
      expect(other.code).toBe(1);
      expect(other.err).toMatch(/risk --risk max-losses=2:freeze:resume -> --risk max-losses=3:freeze:resume/);
      expect(other.err).not.toMatch(STACK);

      const status = await keel(['bots', 'status', id, '--store', url]);
      expect(status.out).toMatch(/risk +--risk max-losses=2:freeze:resume/);
      expect(status.out).toMatch(
        /halts +max-losses on account \(freeze\) since \S+, until resumed: keel bots resume cli-risk/,
      );
      const total = denials(first) + denials(restarted);
      expect(status.out).toMatch(new RegExp(`denied +${total} orders \\(max-losses ${total}\\)`));

      const resume = await keel(['bots', 'resume', id, '--store', url]);
      expect(resume.code).toBe(0);
      expect(resume.out).toMatch(
        /recorded: bot cli-risk \(stopped\) resumes trading when it runs.*\(max-losses on account\)/,
      );
      const pending = await keel(['bots', 'status', id, '--store', url]);
      expect(pending.out).toMatch(/resume +requested by .* not applied yet/);

      const resumed = new Running(args('max-losses=2'));
      await resumed.waitFor(
        () => /risk: resumed by .*: 1 halt\(s\) and lock\(s\) ended \(max-losses on account\)/.test(resumed.err),
        'the resume',
      );
      await resumed.waitFor(() => /FILL +buy/.test(resumed.err), 'an entry filled again');
      resumed.proc.kill('SIGTERM');
      expect(await resumed.exited).toBe(0);

      // keel portfolio over the same store: the bot's books, priced at the last bar it saw.
      const book = await keel(['portfolio', '--store', url]);
      expect(book.code, book.err).toBe(0);
      expect(book.out).toMatch(/^portfolio in USDT, marks as of 2024-01-01T/);
      expect(book.out).toMatch(/cli-risk \(paper, simulated\) +\d+\.\d\d/);
      const json = JSON.parse((await keel(['portfolio', '--store', url, '--json'])).out) as {
        bots: { id: string; totals: { equity: number } }[];
      };
      const equity = (JSON.parse(resumed.out) as { equity: number }).equity;
      expect(json.bots.find((b) => b.id === 'cli-risk')?.totals.equity).toBeCloseTo(equity, 6);
    } finally {
      first.kill();
    }
  }, 180_000);
});
