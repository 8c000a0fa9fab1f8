import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onPostgres } from '../../../test-support/postgres.ts';
import { openStore } from '../src/index.ts';
import { BINANCE, keyStoreContract, PASS, TEST_KDF } from './keys-contract.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
keyStoreContract('sqlite (file, WAL)', () => ({ url: `sqlite:${path.join(dir, 'keys.db')}` }));
await onPostgres('key store', keyStoreContract, 'keel_keys_test');

describe('key store on disk', () => {
  it('the SQLite files (database and WAL) never contain the secret, the api key or the passphrase', async () => {
    const file = path.join(dir, 'raw.db');
    const store = await openStore({ url: `sqlite:${file}` });
    const ks = await store.keys.unlock(PASS, { create: true, kdf: TEST_KDF });
    await ks.add(BINANCE);
    await ks.add({ ...BINANCE, name: 'second' }, {});
    await store.keys.rotatePassphrase(PASS, `${PASS}!`, { kdf: TEST_KDF });
    const files = () => [file, `${file}-wal`].filter(existsSync);
    const check = () => {
      for (const f of files()) {
        const bytes = readFileSync(f);
        for (const s of [BINANCE.secret, BINANCE.apiKey, PASS]) {
          expect(bytes.includes(Buffer.from(s, 'utf8')), `${s.slice(0, 6)}… in ${path.basename(f)}`).toBe(false);
          expect(bytes.includes(Buffer.from(s, 'utf16le'))).toBe(false);
        }
      }
    };
    expect(files().length).toBe(2); // the WAL holds the recent writes: it is checked too
    check();
    await store.close(); // checkpoint into the main file
    check();
    const again = await openStore({ url: `sqlite:${file}` });
    expect((await (await again.keys.unlock(`${PASS}!`)).get('main')).reveal().secret).toBe(BINANCE.secret);
    await again.close();
  });
});
