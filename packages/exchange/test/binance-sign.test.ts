import ccxt from 'ccxt';
import { describe, expect, it } from 'vitest';
import { signBinancePrivatePost } from '../src/binance-sign.ts';

// Keel signs Binance spot order requests itself (the live latency path). Oracle: ccxt's own
// binance sign(), on a plain ccxt client (its own JavaScript HMAC), at the same frozen instant.
type CcxtBinance = InstanceType<typeof ccxt.binance> & {
  sign(
    path: string,
    api: string,
    method: string,
    params: Record<string, unknown>,
  ): { url: string; method: string; body?: string; headers?: Record<string, string> };
  milliseconds(): number;
};

const NOW = 1_700_000_123_456;

function client(opts: { timeDifference?: number; recvWindow?: unknown; secret?: string; apiKey?: string } = {}) {
  const c = new ccxt.binance({
    apiKey: opts.apiKey ?? 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A',
    secret: opts.secret ?? 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j',
    options: opts.recvWindow === undefined ? {} : { recvWindow: opts.recvWindow },
  }) as CcxtBinance;
  c.milliseconds = () => NOW;
  if (opts.timeDifference !== undefined) (c.options as Record<string, unknown>)['timeDifference'] = opts.timeDifference;
  return c;
}

const market = {
  symbol: 'BTCUSDT',
  side: 'BUY',
  newClientOrderId: 'kbot-1700000000000-0',
  newOrderRespType: 'FULL',
  type: 'MARKET',
  quantity: '0.01',
};
const limit = {
  symbol: 'ETHBTC',
  side: 'SELL',
  newClientOrderId: 'kbot-1700000060000-12',
  newOrderRespType: 'RESULT',
  type: 'LIMIT',
  quantity: '1234567',
  price: '0.00000098',
  timeInForce: 'GTC',
};
// Not what Keel sends, but whatever a field holds is encoded as ccxt encodes it.
const odd = { symbol: 'A B/C', newClientOrderId: "x!'()*~._-é+&=?#", quantity: '1e-7', n: 3 };

describe('signBinancePrivatePost: byte-equal to ccxt binance sign()', () => {
  const cases: [string, Record<string, string | number>, Parameters<typeof client>[0]][] = [
    ['market order, default options', market, {}],
    ['limit order, recvWindow set', limit, { recvWindow: 59_000 }],
    ['a measured clock offset', market, { timeDifference: 1_234 }],
    ['a negative clock offset and recvWindow', limit, { timeDifference: -250, recvWindow: 5_000 }],
    ['characters that need encoding', odd, { recvWindow: 10_000 }],
  ];
  for (const [name, request, opts] of cases) {
    it(name, () => {
      const c = client(opts);
      const ours = signBinancePrivatePost(c as never, 'order', request);
      const theirs = c.sign('order', 'private', 'POST', { ...request });
      expect(ours).toBeDefined();
      expect(ours).toEqual({ url: theirs.url, method: theirs.method, headers: theirs.headers, body: theirs.body });
      expect(ours?.url).toBe('https://api.binance.com/api/v3/order');
      expect(ours?.body).toContain(`timestamp=${NOW - (opts?.timeDifference ?? 0)}`);
    });
  }

  it('leaves to ccxt what it does not sign the same way', () => {
    const rsa = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI...\n-----END PRIVATE KEY-----';
    expect(signBinancePrivatePost(client({ secret: rsa }) as never, 'order', market)).toBeUndefined();
    expect(signBinancePrivatePost(client({ apiKey: '' }) as never, 'order', market)).toBeUndefined();
    expect(signBinancePrivatePost(client({ recvWindow: '5000' }) as never, 'order', market)).toBeUndefined();
    expect(signBinancePrivatePost(client() as never, 'order', { ...market, recvWindow: 1_000 })).toBeUndefined();
    expect(signBinancePrivatePost(client() as never, 'order', { ...market, timestamp: 1 })).toBeUndefined();
    const kraken = new ccxt.kraken({ apiKey: 'k', secret: 'c2VjcmV0' });
    expect(signBinancePrivatePost(kraken as never, 'order', market)).toBeUndefined();
  });
});
