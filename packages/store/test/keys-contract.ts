import { inspect } from 'node:util';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreTarget } from '../../../test-support/postgres.ts';
import { type KdfParams, KeyStoreError, openStore, type Store } from '../src/index.ts';
import { ManualClock } from './store-contract.ts';

/** Cheap scrypt for tests (the real default, 2^17, is checked by the CLI test). */
export const TEST_KDF: KdfParams = { N: 2 ** 14, r: 8, p: 1 };
export const PASS = 'correct horse battery staple';

/** Api keys and secrets as long and random-looking as real ones, so their bytes are unmistakable. */
export const BINANCE = {
  name: 'main',
  exchange: 'binance',
  apiKey: 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A',
  secret: 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j',
};
const OKX = {
  name: 'okx-sub',
  exchange: 'okx',
  apiKey: '4b8f0c2e-77aa-4d1e-9a3b-5c6d7e8f9a0b',
  secret: '0F1E2D3C4B5A69788796A5B4C3D2E1F0',
  password: 'okx trading passphrase 42',
};

async function expectKeyStoreError(p: Promise<unknown>, code: string, msg: RegExp): Promise<KeyStoreError> {
  const e = await p.then(
    () => expect.fail(`expected a KeyStoreError ${code}`),
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(KeyStoreError);
  expect((e as KeyStoreError).code).toBe(code);
  expect((e as KeyStoreError).message).toMatch(msg);
  for (const s of [BINANCE.secret, BINANCE.apiKey, OKX.secret, OKX.password, PASS])
    expect((e as Error).message).not.toContain(s);
  return e as KeyStoreError;
}

/** The key store on one backend; `target()` gives a fresh, empty database. */
export function keyStoreContract(name: string, target: () => StoreTarget): void {
  describe(`key store: ${name}`, () => {
    const clock = new ManualClock(1_700_000_000_000);
    let store: Store;
    beforeAll(async () => {
      const t = target();
      store = await openStore({ url: t.url, clock, ...(t.schema !== undefined ? { schema: t.schema } : {}) });
    });
    afterAll(async () => {
      await store?.close();
    });

    it('before the first key: nothing to unlock, an empty passphrase is refused, bad KDF params are refused', async () => {
      expect(await store.keys.initialized()).toBe(false);
      await expectKeyStoreError(store.keys.unlock(PASS), 'not-initialized', /key store is empty.*keel keys add/);
      await expectKeyStoreError(store.keys.unlock('', { create: true }), 'empty-passphrase', /passphrase is empty/);
      await expectKeyStoreError(store.keys.unlock('   ', { create: true }), 'empty-passphrase', /passphrase is empty/);
      await expectKeyStoreError(
        store.keys.unlock(PASS, { create: true, kdf: { N: 1000, r: 8, p: 1 } }),
        'invalid',
        /N must be a power of two/,
      );
      expect(await store.keys.initialized()).toBe(false);
    });

    it('round trip: what goes in comes out; list, JSON and inspect show no secret', async () => {
      const ks = await store.keys.unlock(PASS, { create: true, kdf: TEST_KDF });
      expect(await store.keys.info()).toMatchObject({ kdf: 'scrypt', params: TEST_KDF, passphraseSetAt: clock.t });
      const info = await ks.add(BINANCE);
      expect(info).toEqual({
        name: 'main',
        exchange: 'binance',
        fingerprint: '…Eh8A',
        hasPassword: false,
        hasUid: false,
        createdAt: clock.t,
        rotatedAt: null,
      });
      await ks.add(OKX);
      const again = await store.keys.unlock(PASS);
      const c = await again.get('main');
      expect(c.reveal()).toEqual({ apiKey: BINANCE.apiKey, secret: BINANCE.secret });
      expect((await again.get('okx-sub')).reveal()).toEqual({
        apiKey: OKX.apiKey,
        secret: OKX.secret,
        password: OKX.password,
      });
      const list = await store.keys.list();
      expect(list.map((k) => [k.name, k.exchange, k.fingerprint, k.hasPassword])).toEqual([
        ['main', 'binance', '…Eh8A', false],
        ['okx-sub', 'okx', '…9a0b', true],
      ]);
      for (const shown of [JSON.stringify(list), JSON.stringify(c), inspect(c), String(c), `${c}`, inspect(list)]) {
        expect(shown).not.toContain(BINANCE.secret);
        expect(shown).not.toContain(BINANCE.apiKey);
        expect(shown).not.toContain(OKX.password);
      }
      expect(JSON.parse(JSON.stringify(c))).toEqual({ name: 'main', exchange: 'binance', fingerprint: '…Eh8A' });
    });

    it('a wrong passphrase is a clear error, never garbage keys', async () => {
      await expectKeyStoreError(
        store.keys.unlock('correct horse battery stapler'),
        'wrong-passphrase',
        /^the key store passphrase is wrong/,
      );
      await expectKeyStoreError(store.keys.unlock(''), 'empty-passphrase', /empty/);
    });

    it('names are checked, a name is never silently overwritten, --replace rotates the credentials', async () => {
      const ks = await store.keys.unlock(PASS);
      await expectKeyStoreError(ks.add({ ...BINANCE, name: 'bad name!' }), 'invalid', /invalid key name "bad name!"/);
      await expectKeyStoreError(ks.add({ ...BINANCE, exchange: 'Bin ance' }), 'invalid', /invalid exchange id/);
      await expectKeyStoreError(
        ks.add({ ...BINANCE, name: 'x', secret: ' ' }),
        'invalid',
        /secret of key "x" is empty/,
      );
      await expectKeyStoreError(ks.add(BINANCE), 'exists', /already exists.*--replace/);
      await expectKeyStoreError(ks.get('nope'), 'not-found', /no exchange key named "nope".*keel keys list/);
      clock.t += 1_000;
      const newSecret = 'Zr0tat3dZr0tat3dZr0tat3dZr0tat3dZr0tat3dZr0tat3dZr0tat3dZr0tat3d';
      const info = await ks.add({ ...BINANCE, secret: newSecret }, { replace: true });
      expect(info.rotatedAt).toBe(clock.t);
      expect(info.createdAt).toBe(clock.t - 1_000);
      expect((await ks.get('main')).reveal().secret).toBe(newSecret);
      await ks.add(BINANCE, { replace: true });
    });

    it('a tampered ciphertext fails GCM authentication: a clear error naming the key and field', async () => {
      const before = await store.db
        .selectFrom('exchange_keys')
        .selectAll()
        .where('name', '=', 'main')
        .executeTakeFirstOrThrow();
      const raw = Buffer.from(before.secret_enc.slice(3), 'base64');
      raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 0x01; // one bit of the ciphertext
      await store.db
        .updateTable('exchange_keys')
        .set({ secret_enc: `v1:${raw.toString('base64')}` })
        .where('name', '=', 'main')
        .execute();
      const ks = await store.keys.unlock(PASS);
      await expectKeyStoreError(ks.get('main'), 'tampered', /stored secret of key "main" failed its integrity check/);
      await store.db
        .updateTable('exchange_keys')
        .set({ secret_enc: before.secret_enc })
        .where('name', '=', 'main')
        .execute();
      expect((await ks.get('main')).reveal().secret).toBe(BINANCE.secret);
    });

    it('ciphertexts are bound to their row and field (AAD): swapped between rows or fields, they do not open', async () => {
      const ks = await store.keys.unlock(PASS);
      const rows = await store.db.selectFrom('exchange_keys').selectAll().orderBy('name').execute();
      const [main, okx] = rows as [(typeof rows)[0], (typeof rows)[0]];
      // okx's secret pasted into main's row.
      await store.db
        .updateTable('exchange_keys')
        .set({ secret_enc: okx.secret_enc })
        .where('name', '=', 'main')
        .execute();
      await expectKeyStoreError(ks.get('main'), 'tampered', /secret of key "main"/);
      // main's api key and secret swapped within the row.
      await store.db
        .updateTable('exchange_keys')
        .set({ api_key_enc: main.secret_enc, secret_enc: main.api_key_enc })
        .where('name', '=', 'main')
        .execute();
      await expectKeyStoreError(ks.get('main'), 'tampered', /api key of key "main"/);
      // The row relabelled to another exchange.
      await store.db
        .updateTable('exchange_keys')
        .set({ api_key_enc: main.api_key_enc, secret_enc: main.secret_enc, exchange: 'kraken' })
        .where('name', '=', 'main')
        .execute();
      await expectKeyStoreError(ks.get('main'), 'tampered', /key "main"/);
      await store.db.updateTable('exchange_keys').set({ exchange: 'binance' }).where('name', '=', 'main').execute();
      expect((await ks.get('main')).reveal()).toEqual({ apiKey: BINANCE.apiKey, secret: BINANCE.secret });
    });

    it('every value has its own IV: the same secret twice gives different ciphertexts', async () => {
      const ks = await store.keys.unlock(PASS);
      await ks.add({ ...BINANCE, name: 'twin' });
      const r = await store.db
        .selectFrom('exchange_keys')
        .select(['name', 'secret_enc'])
        .where('name', 'in', ['main', 'twin'])
        .execute();
      expect(new Set(r.map((x) => x.secret_enc)).size).toBe(2);
      expect(await store.keys.remove('twin')).toBe(true);
      expect(await store.keys.remove('twin')).toBe(false);
    });

    it('rotate-passphrase is atomic: a row that does not open aborts it and nothing moves', async () => {
      const setAt = (await store.keys.info())!.passphraseSetAt;
      const good = await store.db.selectFrom('exchange_keys').selectAll().orderBy('name').execute();
      await store.db
        .updateTable('exchange_keys')
        .set({ uid_enc: good[0]!.secret_enc })
        .where('name', '=', 'okx-sub')
        .execute();
      clock.t += 1_000;
      await expectKeyStoreError(
        store.keys.rotatePassphrase(PASS, 'new passphrase'),
        'tampered',
        /uid of key "okx-sub"/,
      );
      expect((await store.keys.info())!.passphraseSetAt).toBe(setAt);
      await expectKeyStoreError(store.keys.unlock('new passphrase'), 'wrong-passphrase', /wrong/);
      await store.db.updateTable('exchange_keys').set({ uid_enc: null }).where('name', '=', 'okx-sub').execute();
      expect(await store.db.selectFrom('exchange_keys').selectAll().orderBy('name').execute()).toEqual(good);
    });

    it('rotate-passphrase re-encrypts every key under the new passphrase, new salt and raised KDF cost', async () => {
      const stale = await store.keys.unlock(PASS); // another process, still on the old passphrase
      const before = await store.db.selectFrom('exchange_keys').selectAll().orderBy('name').execute();
      const saltBefore = (await store.db.selectFrom('keystore').select('kdf_salt').executeTakeFirstOrThrow()).kdf_salt;
      await expectKeyStoreError(store.keys.rotatePassphrase('nope', 'new passphrase'), 'wrong-passphrase', /wrong/);
      await expectKeyStoreError(store.keys.rotatePassphrase(PASS, ''), 'empty-passphrase', /empty/);
      const raised = { N: 2 ** 15, r: 8, p: 1 };
      expect(await store.keys.rotatePassphrase(PASS, 'new passphrase', { kdf: raised })).toBe(2);
      expect(await store.keys.info()).toMatchObject({ params: raised, passphraseSetAt: clock.t });
      const after = await store.db.selectFrom('exchange_keys').selectAll().orderBy('name').execute();
      for (const [i, r] of after.entries()) {
        expect(r.api_key_enc).not.toBe(before[i]!.api_key_enc);
        expect(r.secret_enc).not.toBe(before[i]!.secret_enc);
      }
      expect((await store.db.selectFrom('keystore').select('kdf_salt').executeTakeFirstOrThrow()).kdf_salt).not.toBe(
        saltBefore,
      );
      await expectKeyStoreError(store.keys.unlock(PASS), 'wrong-passphrase', /wrong/);
      const ks = await store.keys.unlock('new passphrase');
      expect((await ks.get('main')).reveal()).toEqual({ apiKey: BINANCE.apiKey, secret: BINANCE.secret });
      expect((await ks.get('okx-sub')).reveal().password).toBe(OKX.password);
      // The handle unlocked before the rotation may not write under the old passphrase any more.
      await expectKeyStoreError(
        stale.add({ ...BINANCE, name: 'late' }),
        'concurrent-change',
        /changed by another process/,
      );
      expect((await store.keys.list()).map((k) => k.name)).toEqual(['main', 'okx-sub']);
      const n = await sql<{ n: number }>`select count(*) as n from exchange_keys`.execute(store.db);
      expect(Number(n.rows[0]?.n)).toBe(2);
    });
  });
}
