import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import ccxt from 'ccxt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test-support/shared.ts';
import { ccxtConfigFor, type ExchangeSim, FAULT_KINDS, runExchangeSimCli, startExchangeSim } from '../src/index.ts';
import { rejectionOf, within } from './helpers.ts';

const FIXTURE = path.join(REPO_ROOT, 'fixtures/exchange-sim/stairs_1m.csv');
const KEY = { apiKey: 'cli-key', secret: 'cli-secret' };

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

/** `keel exchange-sim fault ...` as the CLI runs it: exit code, stdout, stderr. */
async function fault(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = capture();
  const err = capture();
  const code = await runExchangeSimCli(['fault', ...args], { out: out.stream, err: err.stream });
  return { code, out: out.text(), err: err.text() };
}

/** A port with nothing listening on it (a server that has been closed). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

// A simulator started by the CLI with --admin, faults sent by the CLI's `fault` subcommand to its
// port, and the real ccxt client (REST and ccxt.pro WebSockets) observing each effect.
describe('keel exchange-sim fault, against a simulator started with --admin', () => {
  const stop = new AbortController();
  let running: Promise<number>;
  let sim: ExchangeSim;
  let port: string;
  let ex: InstanceType<typeof ccxt.binance>;

  beforeAll(async () => {
    let started: (s: ExchangeSim) => void = () => {};
    const listening = new Promise<ExchangeSim>((resolve) => (started = resolve));
    running = runExchangeSimCli(
      [
        '--data',
        FIXTURE,
        '--port',
        '0',
        '--speed',
        '0',
        '--admin',
        '--api-key',
        KEY.apiKey,
        '--secret',
        KEY.secret,
        '--balance',
        'USDT=10000,BTC=1',
      ],
      { out: new PassThrough(), signal: stop.signal, onStarted: (s) => started(s) },
    );
    sim = await listening;
    port = String(sim.port);
    ex = new ccxt.binance(ccxtConfigFor(sim, KEY, { enableRateLimit: false, timeout: 400 }));
    await ex.loadMarkets();
  });

  afterAll(async () => {
    await ex.close();
    stop.abort();
    await running;
  });

  it('429: the next N requests fail as rate-limited for ccxt, then requests pass again', async () => {
    const r = await fault(['--port', port, '429', '--count', '2']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toBe(`fault 429 on 127.0.0.1:${port}: the next 2 requests get HTTP 429 / -1003\n`);
    for (let i = 0; i < 2; i++) {
      const e = await rejectionOf(ex.fetchTicker('BTC/USDT'));
      expect(e instanceof ccxt.DDoSProtection || e instanceof ccxt.RateLimitExceeded).toBe(true);
    }
    expect((await ex.fetchTicker('BTC/USDT')).last).toBe(100);
  });

  it('5xx --path: only requests to that path fail, unexecuted (ccxt: ExchangeNotAvailable)', async () => {
    expect((await fault(['--port', port, '5xx', '--count', '1', '--path', '/api/v3/order'])).code).toBe(0);
    expect(await ex.fetchTime()).toBe(sim.now()); // another path: untouched
    const e = await rejectionOf(ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 90, { clientOrderId: 'f5xx' }));
    expect(e).toBeInstanceOf(ccxt.ExchangeNotAvailable);
    expect(sim.getOrders(KEY.apiKey).filter((o) => o.clientOrderId === 'f5xx')).toEqual([]);
  });

  it('reject-next: the next order is rejected (ccxt: InvalidOrder), the one after is accepted', async () => {
    expect((await fault(['--port', port, 'reject-next'])).code).toBe(0);
    const e = await rejectionOf(ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 90, { clientOrderId: 'rj1' }));
    expect(e).toBeInstanceOf(ccxt.InvalidOrder);
    expect(e.message).toContain('New order rejected.');
    const o = await ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 90, { clientOrderId: 'rj2' });
    expect(o.status).toBe('open');
    await ex.cancelOrder('', 'BTC/USDT', { clientOrderId: 'rj2' });
  });

  it('hold --execute: the order is placed but its answer is lost (ccxt: RequestTimeout, order in doubt)', async () => {
    const r = await fault(['--port', port, 'hold', '--path', '/api/v3/order', '--execute']);
    expect(r.out).toContain('the next request to /api/v3/order* runs at once; the answer comes never');
    const e = await rejectionOf(ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 91, { clientOrderId: 'held1' }));
    expect(e).toBeInstanceOf(ccxt.RequestTimeout);
    expect(
      sim
        .getOrders(KEY.apiKey)
        .filter((o) => o.clientOrderId === 'held1')
        .map((o) => o.status),
    ).toEqual(['NEW']);
    await ex.cancelOrder('', 'BTC/USDT', { clientOrderId: 'held1' });
  });

  it('clock-skew: signed requests fail with InvalidNonce until reset', async () => {
    expect((await fault(['--port', port, 'clock-skew', '--ms', '70000'])).code).toBe(0);
    expect(await rejectionOf(ex.fetchBalance())).toBeInstanceOf(ccxt.InvalidNonce);
    const reset = await fault(['--port', port, 'reset']);
    expect(reset.out).toContain('every pending fault cleared');
    expect((await ex.fetchBalance()).USDT?.total).toBe(10_000);
  });

  it('ws-drop and ws-stall: ccxt.pro sees the drop as a NetworkError and a stall as silence', async () => {
    const pro = new ccxt.pro.binance(ccxtConfigFor(sim, KEY));
    try {
      const dropped = pro.watchTrades('BTC/USDT');
      dropped.catch(() => undefined);
      await sim.waitForSubscription('btcusdt@trade');
      const r = await fault(['--port', port, 'ws-drop', '--ws', 'market']);
      expect(r.out).toContain('dropped 1 WebSocket connection (market)');
      expect(await rejectionOf(dropped)).toBeInstanceOf(ccxt.NetworkError);

      const stalled = pro.watchTrades('BTC/USDT');
      await sim.waitForSubscription('btcusdt@trade');
      expect((await fault(['--port', port, 'ws-stall', '--ms', '60000'])).code).toBe(0);
      sim.tick(); // a trade, swallowed by the stall
      expect(await within(stalled, 300)).toBe('timeout');
      expect((await fault(['--port', port, 'reset'])).code).toBe(0);
      sim.tick();
      expect((await stalled).length).toBeGreaterThan(0);
    } finally {
      await pro.close();
    }
  });

  it('usage errors exit 2 with one line: unknown kind, an option the kind does not take, no kind', async () => {
    const unknown = await fault(['--port', port, 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toBe(`keel exchange-sim fault: unknown fault kind "nope" (kinds: ${FAULT_KINDS.join(', ')})\n`);
    const misplaced = await fault(['--port', port, '429', '--ms', '5']);
    expect(misplaced).toMatchObject({ code: 2, out: '' });
    expect(misplaced.err).toBe(
      'keel exchange-sim fault: --ms does not apply to fault 429 (it takes --count, --path)\n',
    );
    for (const args of [[], ['--port', port, '429', '--count', 'x'], ['--port', port, 'hold', '--bogus']]) {
      const r = await fault(args);
      expect(r.code).toBe(2);
      expect(r.err.trimEnd().split('\n')).toHaveLength(1);
    }
    expect((await ex.fetchTicker('BTC/USDT')).last).toBe(sim.price('BTC/USDT')); // no 429 was applied
  });

  it('--help lists every kind with what it does', async () => {
    const r = await fault(['--help']);
    expect(r.code).toBe(0);
    for (const kind of FAULT_KINDS) expect(r.out).toMatch(new RegExp(`\\n  ${kind} +\\S`));
    expect(r.out).toContain('--admin');
  });
});

describe('keel exchange-sim fault, when it cannot reach an admin endpoint', () => {
  it('no simulator on the port: exit 1, one line', async () => {
    const port = await freePort();
    const r = await fault(['--port', String(port), '429']);
    expect(r).toMatchObject({ code: 1, out: '' });
    expect(r.err).toBe(`keel exchange-sim fault: no simulator is running on 127.0.0.1:${port} (connection refused)\n`);
  });

  it('a simulator started without --admin refuses, and its clients see no fault', async () => {
    const sim = await startExchangeSim({ markets: [{ symbol: 'BTC/USDT', bars: FIXTURE }] });
    const ex = new ccxt.binance(ccxtConfigFor(sim, undefined, { enableRateLimit: false }));
    try {
      const r = await fault(['--port', String(sim.port), '429', '--count', '3']);
      expect(r).toMatchObject({ code: 1, out: '' });
      expect(r.err).toBe(
        `keel exchange-sim fault: the simulator on 127.0.0.1:${sim.port} was started without --admin; restart it with --admin to inject faults\n`,
      );
      expect((await ex.fetchTicker('BTC/USDT')).last).toBe(100);
      const raw = await fetch(`${sim.httpUrl}/_keel/admin/fault`, { method: 'POST', body: '{"kind":"reset"}' });
      expect(raw.status).toBe(403);
    } finally {
      await ex.close();
      await sim.close();
    }
  });

  it('another server on the port: exit 1, named as not a simulator', async () => {
    const other: Server = createServer((_req, res) => res.writeHead(404).end('not here'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const port = (other.address() as AddressInfo).port;
    try {
      const r = await fault(['--port', String(port), 'reset']);
      expect(r.code).toBe(1);
      expect(r.err).toBe(
        `keel exchange-sim fault: 127.0.0.1:${port} does not answer as a keel exchange simulator (HTTP 404)\n`,
      );
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
  });

  it('--admin is refused with a host that is not loopback (the endpoint is never reachable from outside)', async () => {
    await expect(
      runExchangeSimCli(['--data', FIXTURE, '--port', '0', '--host', '0.0.0.0', '--admin'], {
        out: new PassThrough(),
      }),
    ).rejects.toThrow(/admin endpoint needs a loopback host/);
  });
});
