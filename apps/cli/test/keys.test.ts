import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ExchangeSim, startExchangeSim } from '@keel/exchange-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test-support/shared.ts';

const BIN = path.join(REPO_ROOT, 'apps/cli/bin/keel.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'keel-keys-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const PASS = 'a long and memorable key store passphrase';
const API_KEY = 'simKeyL6v9RqGm2XwT8pZ4cN1bH7yJ3fK5dS0aE';
const SECRET = 'simSecretQ9wE8rT7yU6iO5pA4sD3fG2hJ1kL0zX';
const DB = () => `sqlite:${path.join(tmp, 'keel.db')}`;

/** The environment of a user who has set only what is given (no keys, no passphrase by default). */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e = { ...process.env };
  for (const k of Object.keys(e)) if (k.startsWith('KEEL_API_') || k.startsWith('KEEL_KEYSTORE_')) delete e[k];
  return { ...e, ...extra };
}

function keel(args: string[], extra: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: tmp,
    env: env(extra),
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'pipe'], // stdin is not a terminal: nothing can be prompted
  });
  const all = `${r.stdout}${r.stderr}`;
  expect(all, 'the secret must never be printed').not.toContain(SECRET);
  expect(all, 'the passphrase must never be printed').not.toContain(PASS);
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('keel keys (the real bin, no terminal: keys and passphrase from the environment)', () => {
  it('keel --help lists keys; keel keys --help explains where secrets come from', () => {
    expect(keel(['--help']).out).toMatch(/keys <sub> .*add, list, remove, rotate-passphrase/);
    const h = keel(['keys', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toContain('KEEL_KEYSTORE_PASSPHRASE');
    expect(h.out).toContain('never from arguments');
  });

  it('add, list, list --json, remove; the database file holds no secret', () => {
    const add = keel(['keys', 'add', 'sim', '--exchange', 'binance', '--store', DB()], {
      KEEL_KEYSTORE_PASSPHRASE: PASS,
      KEEL_API_KEY: API_KEY,
      KEEL_API_SECRET: SECRET,
    });
    expect(add.err).toBe('');
    expect(add.code).toBe(0);
    expect(add.out).toMatch(/Added key "sim" \(binance, api key …S0aE\)/);
    keel(['keys', 'add', 'spare', '--exchange', 'binance', '--store', DB()], {
      KEEL_KEYSTORE_PASSPHRASE: PASS,
      KEEL_API_KEY: `${API_KEY}2`,
      KEEL_API_SECRET: `${SECRET}2`,
    });
    const list = keel(['keys', 'list', '--store', DB()]);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^NAME +EXCHANGE +API KEY/);
    expect(list.out).toMatch(/\nsim +binance +…S0aE/);
    expect(list.out).not.toContain(API_KEY);
    const json = JSON.parse(keel(['keys', 'list', '--json', '--store', DB()]).out) as Array<Record<string, unknown>>;
    expect(json.map((k) => [k.name, k.exchange, k.fingerprint])).toEqual([
      ['sim', 'binance', '…S0aE'],
      ['spare', 'binance', '…0aE2'],
    ]);
    expect(JSON.stringify(json)).not.toContain(API_KEY);
    expect(keel(['keys', 'remove', 'spare', '--store', DB()]).code).toBe(0);
    const gone = keel(['keys', 'remove', 'spare', '--store', DB()]);
    expect(gone.code).toBe(1);
    expect(gone.err).toMatch(/no key named "spare"/);
    const file = path.join(tmp, 'keel.db');
    for (const f of [file, `${file}-wal`].filter(existsSync))
      expect(readFileSync(f).includes(Buffer.from(SECRET)), `secret bytes in ${f}`).toBe(false);
  });

  it('refuses: a wrong or blank passphrase, a missing secret without a terminal, secrets as arguments, a name twice', () => {
    const base = { KEEL_API_KEY: API_KEY, KEEL_API_SECRET: SECRET };
    const wrong = keel(['keys', 'add', 'x', '--exchange', 'binance', '--store', DB()], {
      ...base,
      KEEL_KEYSTORE_PASSPHRASE: 'not it',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/the key store passphrase is wrong/);
    const blank = keel(['keys', 'add', 'x', '--exchange', 'binance', '--store', DB()], {
      ...base,
      KEEL_KEYSTORE_PASSPHRASE: '   ',
    });
    expect(blank.code).toBe(1);
    expect(blank.err).toMatch(/passphrase is empty/);
    const noPass = keel(['keys', 'add', 'x', '--exchange', 'binance', '--store', DB()], base);
    expect(noPass.code).toBe(2);
    expect(noPass.err).toMatch(/key store passphrase is needed: set KEEL_KEYSTORE_PASSPHRASE, or run in a terminal/);
    const noSecret = keel(['keys', 'add', 'x', '--exchange', 'binance', '--store', DB()], {
      KEEL_KEYSTORE_PASSPHRASE: PASS,
      KEEL_API_KEY: API_KEY,
    });
    expect(noSecret.code).toBe(2);
    expect(noSecret.err).toMatch(/binance api secret is needed: set KEEL_API_SECRET/);
    const argv = keel(['keys', 'add', 'x', SECRET.slice(0, 5), '--store', DB()]);
    expect(argv.code).toBe(2);
    expect(argv.err).toMatch(/never taken from arguments/);
    const twice = keel(['keys', 'add', 'sim', '--exchange', 'binance', '--store', DB()], {
      ...base,
      KEEL_KEYSTORE_PASSPHRASE: PASS,
    });
    expect(twice.code).toBe(1);
    expect(twice.err).toMatch(/"sim" already exists .*--replace/);
    const okx = keel(['keys', 'add', 'o', '--exchange', 'okx', '--store', DB()], {
      ...base,
      KEEL_KEYSTORE_PASSPHRASE: PASS,
    });
    expect(okx.code).toBe(2);
    expect(okx.err).toMatch(/okx api passphrase \(password\) is needed: set KEEL_API_PASSWORD/);
  });

  it('rotate-passphrase: the old passphrase stops working, the new one opens every key', () => {
    const rot = keel(['keys', 'rotate-passphrase', '--store', DB()], {
      KEEL_KEYSTORE_PASSPHRASE: PASS,
      KEEL_KEYSTORE_NEW_PASSPHRASE: `${PASS} v2`,
    });
    expect(rot.err).toBe('');
    expect(rot.out).toMatch(/Re-encrypted 1 key under the new passphrase \(scrypt N=131072, r=8, p=1\)/);
    const old = keel(['keys', 'add', 'y', '--exchange', 'binance', '--store', DB()], {
      KEEL_KEYSTORE_PASSPHRASE: PASS,
      KEEL_API_KEY: API_KEY,
      KEEL_API_SECRET: SECRET,
    });
    expect(old.err).toMatch(/passphrase is wrong/);
    const back = keel(['keys', 'rotate-passphrase', '--store', DB()], {
      KEEL_KEYSTORE_PASSPHRASE: `${PASS} v2`,
      KEEL_KEYSTORE_NEW_PASSPHRASE: PASS,
    });
    expect(back.code).toBe(0);
  });
});

describe('keel live with a key from the key store, against the exchange simulator (real ccxt, loopback)', () => {
  let sim: ExchangeSim;
  const T0 = Date.UTC(2024, 0, 1);
  beforeAll(async () => {
    const bars = Array.from({ length: 120 }, (_, i) => {
      const o = 100 + i;
      return { time: T0 + i * 60_000, open: o, high: o + 2, low: o - 2, close: o + 1, volume: 100 };
    });
    sim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars }],
      accounts: [{ apiKey: API_KEY, secret: SECRET, balances: { USDT: 10_000 } }],
      startTime: T0 + 60 * 60_000,
    });
  });
  afterAll(async () => {
    await sim?.close();
  });

  const liveArgs = (...extra: string[]) => [
    'live',
    '--strategy',
    'sma-cross',
    '--symbol',
    'BTC/USDT',
    '--exchange-url',
    sim.httpUrl,
    '--store',
    DB(),
    '--confirm-live',
    ...extra,
  ];

  it('without keys, the refusal names both ways to give them; a wrong passphrase or name is refused', () => {
    const none = keel(liveArgs());
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/--keys <name> .*key store.*or KEEL_API_KEY and KEEL_API_SECRET in the environment/);
    // A refusal of the key store is a failure (exit 1), not a usage error: no usage hint.
    const wrong = keel(liveArgs('--keys', 'sim'), { KEEL_KEYSTORE_PASSPHRASE: 'nope' });
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/--keys sim: the key store passphrase is wrong/);
    expect(wrong.err).not.toContain('for usage');
    const missing = keel(liveArgs('--keys', 'nosuch'), { KEEL_KEYSTORE_PASSPHRASE: PASS });
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/no exchange key named "nosuch"/);
    expect(missing.err).not.toContain('for usage');
    const other = keel(liveArgs('--keys', 'sim', '--exchange', 'okx'), { KEEL_KEYSTORE_PASSPHRASE: PASS });
    expect(other.err).toMatch(/--keys sim is a binance key, but --exchange is okx/);
  });

  it('--keys sim: the bot signs its requests with the stored key, reconciles, runs and stops cleanly', async () => {
    const child: ChildProcess = spawn(process.execPath, [BIN, ...liveArgs('--keys', 'sim', '--bot-id', 'keys-live')], {
      cwd: tmp,
      env: env({ KEEL_KEYSTORE_PASSPHRASE: PASS }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    try {
      const end = Date.now() + 45_000;
      while (!err.includes('live bot started')) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`keel live did not start:\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(err).toMatch(/using exchange key "sim" \(binance, api key …S0aE\) from the key store/);
      // The user stream is subscribed with a signature made from the stored secret.
      await sim.waitForSubscription(`user:${API_KEY}`, 10_000);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    const report = JSON.parse(out.slice(out.indexOf('{'))) as { botId?: string };
    expect(report).toMatchObject({ botId: 'keys-live' });
    for (const s of [SECRET, PASS]) expect(`${out}${err}`).not.toContain(s);
  });
});
