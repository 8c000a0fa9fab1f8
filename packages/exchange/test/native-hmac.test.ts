import { createHash, createHmac } from 'node:crypto';
import ccxt from 'ccxt';
import { describe, expect, it } from 'vitest';
import { createCcxtClient } from '../src/client.ts';

type Signer = {
  sign(
    path: string,
    api: unknown,
    method: string,
    params: Record<string, unknown>,
  ): { url: string; body?: string; headers?: unknown };
  nonce(): number;
  milliseconds(): number;
  seconds(): number;
  hmac: unknown;
};

/** Both clients at the same fixed instant, so their signed requests can be compared byte for byte. */
function frozen(c: unknown): Signer {
  const s = c as Signer;
  s.nonce = () => 1_700_000_000_000;
  s.milliseconds = () => 1_700_000_000_000;
  s.seconds = () => 1_700_000_000;
  return s;
}

const creds = {
  apiKey: 'key',
  secret: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==', // base64, as Kraken's secrets are
  password: 'pass',
};

describe('native HMAC in ccxt clients', () => {
  // Binance: SHA-256, hex. OKX: SHA-256, base64. Kraken: SHA-512 over bytes, base64.
  const cases: [string, string, unknown, string, Record<string, unknown>][] = [
    [
      'binance',
      'order',
      'private',
      'POST',
      { symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.01', newClientOrderId: 'keel-1' },
    ],
    ['okx', 'trade/order', 'private', 'POST', { instId: 'BTC-USDT', side: 'buy', ordType: 'market', sz: '0.01' }],
    ['kraken', 'AddOrder', 'private', 'POST', { pair: 'XBTUSDT', type: 'buy', ordertype: 'market', volume: '0.01' }],
  ];
  for (const [id, path, api, method, params] of cases) {
    it(`${id}: signs exactly as ccxt's own implementation`, () => {
      const ours = frozen(createCcxtClient(id, creds));
      const Ctor = (ccxt.pro as unknown as Record<string, new (o: object) => unknown>)[id] as new (
        o: object,
      ) => unknown;
      const theirs = frozen(new Ctor(creds));
      expect(ours.hmac).not.toBe(theirs.hmac); // ours is the native one
      for (let i = 0; i < 3; i++) {
        // The first call checks against ccxt's result; later ones are native only.
        expect(ours.sign(path, api, method, { ...params })).toEqual(theirs.sign(path, api, method, { ...params }));
      }
    });
  }

  it("a hash with SHA-256's sizes that is not SHA-256 fails the check and stays with ccxt", () => {
    // Shaped like a noble-hashes hash (what ccxt passes): 32-byte output, 64-byte block, but SHA3.
    const impostor = Object.assign(() => new Uint8Array(32), {
      outputLen: 32,
      blockLen: 64,
      create() {
        const parts: Uint8Array[] = [];
        const h = {
          outputLen: 32,
          blockLen: 64,
          update(b: Uint8Array) {
            parts.push(Uint8Array.from(b));
            return h;
          },
          digestInto(out: Uint8Array) {
            const d = createHash('sha3-256');
            for (const p of parts) d.update(p);
            out.set(d.digest());
          },
          digest() {
            const out = new Uint8Array(32);
            h.digestInto(out);
            return out;
          },
          destroy() {},
        };
        return h;
      },
    });
    type Hmac = (r: string, s: string, h: unknown, d?: string) => unknown;
    const ours = createCcxtClient('binance', creds) as unknown as { hmac: Hmac };
    const theirs = new (ccxt.pro as unknown as Record<string, new (o: object) => { hmac: Hmac }>).binance!(creds);
    const expected = theirs.hmac('payload', 'secret', impostor, 'hex');
    expect(expected).not.toBe(createHmac('sha256', 'secret').update('payload').digest('hex'));
    expect(ours.hmac('payload', 'secret', impostor, 'hex')).toBe(expected);
    expect(ours.hmac('payload', 'secret', impostor, 'hex')).toBe(expected); // remembered: still ccxt's
  });

  it('an unknown digest or hash stays with ccxt', () => {
    const c = createCcxtClient('binance', creds) as unknown as {
      hmac: (r: string, s: string, h: unknown, d?: string) => unknown;
    };
    const oddHash = Object.assign((x: Uint8Array) => x, { outputLen: 7, blockLen: 9 });
    expect(() => c.hmac('x', 'y', oddHash, 'hex')).toThrow(); // not a real hash: ccxt's own code ran
  });
});
