import { createCipheriv, createDecipheriv, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';
import type { Clock } from '@keel/core';
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { ExchangeKeysTable, KeelDb, KeystoreTable } from './schema.ts';

/**
 * The encrypted exchange-key store (docs/keys.md). Every secret is sealed with AES-256-GCM under a
 * key derived from the user's passphrase by scrypt (a random salt per store, the parameters stored
 * beside it so they can be raised later), with a fresh random 12-byte IV per value and the key's
 * name, exchange and field bound as additional authenticated data, so that a ciphertext copied to
 * another row or field fails to open. Nothing here ever puts a plaintext secret into an error, a
 * log line, `list()` or JSON.
 */

/** scrypt cost parameters. Memory used is 128 · N · r · p bytes (128 MiB for the defaults). */
export interface KdfParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** OWASP's recommendation for scrypt (N = 2^17, r = 8, p = 1): about 0.3 s and 128 MiB per unlock. */
export const DEFAULT_KDF: KdfParams = { N: 2 ** 17, r: 8, p: 1 };

export type KeyStoreErrorCode =
  | 'wrong-passphrase'
  | 'empty-passphrase'
  | 'tampered'
  | 'not-found'
  | 'exists'
  | 'not-initialized'
  | 'invalid'
  | 'concurrent-change';

/** Every key-store failure: a stable code and a message that names the problem and the way out. */
export class KeyStoreError extends Error {
  constructor(
    readonly code: KeyStoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KeyStoreError';
  }
}

export interface NewExchangeKey {
  readonly name: string;
  /** ccxt exchange id, e.g. `binance`. */
  readonly exchange: string;
  readonly apiKey: string;
  readonly secret: string;
  /** Some exchanges (OKX, KuCoin, Coinbase…) need a passphrase ("password" in ccxt). */
  readonly password?: string;
  readonly uid?: string;
}

/** What `list()` shows: never a secret. */
export interface ExchangeKeyInfo {
  readonly name: string;
  readonly exchange: string;
  /** The last 4 characters of the api key (`…ab12`), or `…` for keys too short to show any. */
  readonly fingerprint: string;
  readonly hasPassword: boolean;
  readonly hasUid: boolean;
  readonly createdAt: number;
  readonly rotatedAt: number | null;
}

type SecretFields = { apiKey: string; secret: string; password?: string; uid?: string };
const SECRET_FIELDS = new WeakMap<ExchangeCredentials, SecretFields>();

/**
 * Decrypted credentials. The secrets are not properties: JSON.stringify, console.log, util.inspect
 * and string conversion show the name, exchange and fingerprint only. `reveal()` hands them to the
 * exchange client and nowhere else.
 */
export class ExchangeCredentials {
  readonly name: string;
  readonly exchange: string;
  readonly fingerprint: string;

  constructor(key: NewExchangeKey) {
    this.name = key.name;
    this.exchange = key.exchange;
    this.fingerprint = fingerprintOf(key.apiKey);
    SECRET_FIELDS.set(this, {
      apiKey: key.apiKey,
      secret: key.secret,
      ...(key.password !== undefined ? { password: key.password } : {}),
      ...(key.uid !== undefined ? { uid: key.uid } : {}),
    });
  }

  /** The plaintext credentials, for the exchange client's constructor only. */
  reveal(): { readonly apiKey: string; readonly secret: string; readonly password?: string; readonly uid?: string } {
    // Set by the constructor for every instance.
    return { ...(SECRET_FIELDS.get(this) as SecretFields) };
  }

  toJSON(): { name: string; exchange: string; fingerprint: string } {
    return { name: this.name, exchange: this.exchange, fingerprint: this.fingerprint };
  }

  toString(): string {
    return `ExchangeCredentials(${this.name}, ${this.exchange}, ${this.fingerprint})`;
  }

  [inspect.custom](): string {
    return `ExchangeCredentials { name: '${this.name}', exchange: '${this.exchange}', fingerprint: '${this.fingerprint}', secrets: [redacted] }`;
  }
}

export interface UnlockedKeyStore {
  /** Encrypts and stores a key. An existing name is refused unless `replace` (which sets rotatedAt). */
  add(key: NewExchangeKey, opts?: { readonly replace?: boolean }): Promise<ExchangeKeyInfo>;
  /** Decrypts one key; a row that fails GCM authentication is a `tampered` error, never garbage. */
  get(name: string): Promise<ExchangeCredentials>;
}

export interface KeyStore {
  /** Names, exchanges and fingerprints: needs no passphrase and shows no secret. */
  list(): Promise<ExchangeKeyInfo[]>;
  /** Deletes a key; false when there was no such name. */
  remove(name: string): Promise<boolean>;
  /** True once a passphrase has been set (the first `unlock` with `create`). */
  initialized(): Promise<boolean>;
  /** The KDF in use and when the passphrase was last set, or undefined before the first key. */
  info(): Promise<{ kdf: string; params: KdfParams; createdAt: number; passphraseSetAt: number } | undefined>;
  /**
   * Derives the key and checks it against the stored verifier (`wrong-passphrase` if it does not
   * open it). With `create`, a store that has no passphrase yet gets this one, a fresh random salt
   * and `kdf` (default DEFAULT_KDF); without it, an uninitialised store is a `not-initialized` error.
   */
  unlock(passphrase: string, opts?: { readonly create?: boolean; readonly kdf?: KdfParams }): Promise<UnlockedKeyStore>;
  /**
   * Re-encrypts every key under a new passphrase (new salt, `kdf` or the current parameters, fresh
   * IVs) in one transaction: all rows move, or none do. Returns how many keys were re-encrypted.
   */
  rotatePassphrase(oldPassphrase: string, newPassphrase: string, opts?: { readonly kdf?: KdfParams }): Promise<number>;
}

const KEYSTORE_ID = 'default';
const VERIFIER_PLAINTEXT = 'keel key store verifier v1';
const FORMAT = 'v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const EXCHANGE_RE = /^[a-z][a-z0-9]{1,31}$/;

type Field = 'apiKey' | 'secret' | 'password' | 'uid';
const FIELD_LABEL: Record<Field, string> = { apiKey: 'api key', secret: 'secret', password: 'password', uid: 'uid' };

/**
 * The last 4 characters of an api key, when it is long enough (12 characters) that they give
 * little away; a shorter key says so rather than show most of itself (`…(short key, not shown)`).
 */
export function fingerprintOf(apiKey: string): string {
  return apiKey.length >= 12 ? `…${apiKey.slice(-4)}` : '…(short key, not shown)';
}

export function checkPassphrase(passphrase: string): Buffer {
  if (passphrase.length === 0 || passphrase.trim().length === 0) {
    throw new KeyStoreError(
      'empty-passphrase',
      'the key store passphrase is empty: set KEEL_KEYSTORE_PASSPHRASE (or type one at the prompt); an empty passphrase would protect nothing',
    );
  }
  return Buffer.from(passphrase.normalize('NFC'), 'utf8');
}

export function checkKdf(kdf: KdfParams, where = 'KDF parameters'): KdfParams {
  const { N, r, p } = kdf;
  const pow2 = Number.isInteger(N) && N >= 2 ** 14 && N <= 2 ** 22 && (N & (N - 1)) === 0;
  if (!pow2 || !Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) {
    throw new KeyStoreError(
      'invalid',
      `${where} ${JSON.stringify(kdf)} are out of range: N must be a power of two from 2^14 to 2^22, r from 1 to 32, p from 1 to 16`,
    );
  }
  return { N, r, p };
}

function deriveKey(passphrase: Buffer, salt: Buffer, kdf: KdfParams): Promise<Buffer> {
  const maxmem = 128 * kdf.N * kdf.r * kdf.p + 16 * 1024 * 1024;
  return new Promise((resolve, reject) =>
    scrypt(passphrase, salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** Unambiguous AAD: the row's identity and the field, so ciphertexts cannot move between them. */
function aadFor(name: string, exchange: string, field: Field | 'verifier'): Buffer {
  return Buffer.from(JSON.stringify(['keel-keystore', 1, name, exchange, field]), 'utf8');
}

function seal(key: Buffer, plaintext: string, aad: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return FORMAT + Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64');
}

/** Opens a sealed value; null when authentication fails (wrong key, altered bytes, other AAD). */
function open(key: Buffer, sealed: string, aad: Buffer): string | null {
  if (!sealed.startsWith(FORMAT)) return null;
  const raw = Buffer.from(sealed.slice(FORMAT.length), 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) return null;
  try {
    const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
    d.setAAD(aad);
    d.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([d.update(raw.subarray(IV_BYTES + TAG_BYTES)), d.final()]).toString('utf8');
  } catch {
    return null;
  }
}

function verifierOk(key: Buffer, verifier: string): boolean {
  const v = open(key, verifier, aadFor('', '', 'verifier'));
  const want = Buffer.from(VERIFIER_PLAINTEXT);
  return v !== null && v.length === want.length && timingSafeEqual(Buffer.from(v), want);
}

type Db = Kysely<KeelDb> | Transaction<KeelDb>;

function checkName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new KeyStoreError(
      'invalid',
      `invalid key name "${name}": use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
}

function toInfo(r: Selectable<ExchangeKeysTable>): ExchangeKeyInfo {
  return {
    name: r.name,
    exchange: r.exchange,
    fingerprint: r.fingerprint,
    hasPassword: r.password_enc !== null,
    hasUid: r.uid_enc !== null,
    createdAt: Number(r.created_at),
    rotatedAt: r.rotated_at === null ? null : Number(r.rotated_at),
  };
}

const kdfOf = (m: Selectable<KeystoreTable>): KdfParams =>
  checkKdf({ N: Number(m.kdf_n), r: Number(m.kdf_r), p: Number(m.kdf_p) }, 'the stored KDF parameters');

function wrongPassphrase(): KeyStoreError {
  return new KeyStoreError(
    'wrong-passphrase',
    'the key store passphrase is wrong: it does not open this key store (check KEEL_KEYSTORE_PASSPHRASE, or the --store you meant)',
  );
}

function concurrentChange(): KeyStoreError {
  return new KeyStoreError(
    'concurrent-change',
    'the key store passphrase was changed by another process while this one had the store open: run the command again with the new passphrase',
  );
}

/** Decrypts every field of a row; any failure names the row and field, never the content. */
function openRow(key: Buffer, r: Selectable<ExchangeKeysTable>): NewExchangeKey {
  const field = (f: Field, sealed: string): string => {
    const v = open(key, sealed, aadFor(r.name, r.exchange, f));
    if (v === null) {
      throw new KeyStoreError(
        'tampered',
        `the stored ${FIELD_LABEL[f]} of key "${r.name}" failed its integrity check (AES-GCM authentication): the row was altered, corrupted or copied from another key. Nothing was decrypted; add the key again with 'keel keys add ${r.name} --exchange ${r.exchange} --replace'`,
      );
    }
    return v;
  };
  return {
    name: r.name,
    exchange: r.exchange,
    apiKey: field('apiKey', r.api_key_enc),
    secret: field('secret', r.secret_enc),
    ...(r.password_enc !== null ? { password: field('password', r.password_enc) } : {}),
    ...(r.uid_enc !== null ? { uid: field('uid', r.uid_enc) } : {}),
  };
}

function sealRow(key: Buffer, k: NewExchangeKey) {
  return {
    api_key_enc: seal(key, k.apiKey, aadFor(k.name, k.exchange, 'apiKey')),
    secret_enc: seal(key, k.secret, aadFor(k.name, k.exchange, 'secret')),
    password_enc: k.password === undefined ? null : seal(key, k.password, aadFor(k.name, k.exchange, 'password')),
    uid_enc: k.uid === undefined ? null : seal(key, k.uid, aadFor(k.name, k.exchange, 'uid')),
  };
}

/**
 * A write that encrypts under the key we unlocked with first "touches" the keystore row on the
 * condition that its verifier is still ours. On PostgreSQL that row lock serialises it with a
 * concurrent passphrase rotation (which updates the same row first), on SQLite BEGIN IMMEDIATE
 * already does; either way a key can never be written under a passphrase that is no longer current.
 */
async function claimKeystore(trx: Db, verifier: string, set: Partial<KeystoreTable> = { verifier }): Promise<void> {
  const r = await trx
    .updateTable('keystore')
    .set(set)
    .where('id', '=', KEYSTORE_ID)
    .where('verifier', '=', verifier)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw concurrentChange();
}

export function keyStore(db: Kysely<KeelDb>, clock: Clock): KeyStore {
  const meta = () => db.selectFrom('keystore').selectAll().where('id', '=', KEYSTORE_ID).executeTakeFirst();

  async function unlockWith(passphrase: Buffer, m: Selectable<KeystoreTable>): Promise<Buffer> {
    const key = await deriveKey(passphrase, Buffer.from(m.kdf_salt, 'base64'), kdfOf(m));
    if (!verifierOk(key, m.verifier)) throw wrongPassphrase();
    return key;
  }

  function unlocked(key: Buffer, verifier: string): UnlockedKeyStore {
    return {
      async add(k, opts = {}) {
        checkName(k.name);
        if (!EXCHANGE_RE.test(k.exchange))
          throw new KeyStoreError('invalid', `invalid exchange id "${k.exchange}": expected a ccxt id such as binance`);
        for (const [f, v] of [
          ['apiKey', k.apiKey],
          ['secret', k.secret],
        ] as const) {
          if (v.trim() === '') throw new KeyStoreError('invalid', `the ${FIELD_LABEL[f]} of key "${k.name}" is empty`);
        }
        const now = clock.now();
        const sealed = sealRow(key, k);
        const fingerprint = fingerprintOf(k.apiKey);
        return db.transaction().execute(async (trx) => {
          await claimKeystore(trx, verifier);
          const existing = await trx
            .selectFrom('exchange_keys')
            .select(['created_at'])
            .where('name', '=', k.name)
            .executeTakeFirst();
          if (existing && !opts.replace) {
            throw new KeyStoreError(
              'exists',
              `a key named "${k.name}" already exists (added ${new Date(Number(existing.created_at)).toISOString()}): add --replace to replace its credentials, or remove it first with 'keel keys remove ${k.name}'`,
            );
          }
          if (existing) {
            await trx
              .updateTable('exchange_keys')
              .set({ ...sealed, exchange: k.exchange, fingerprint, rotated_at: now })
              .where('name', '=', k.name)
              .execute();
          } else {
            await trx
              .insertInto('exchange_keys')
              .values({ name: k.name, exchange: k.exchange, ...sealed, fingerprint, created_at: now, rotated_at: null })
              .execute();
          }
          const row = await trx
            .selectFrom('exchange_keys')
            .selectAll()
            .where('name', '=', k.name)
            .executeTakeFirstOrThrow();
          return toInfo(row);
        });
      },
      async get(name) {
        checkName(name);
        const r = await db.selectFrom('exchange_keys').selectAll().where('name', '=', name).executeTakeFirst();
        if (!r) {
          throw new KeyStoreError(
            'not-found',
            `no exchange key named "${name}" in the key store ('keel keys list' shows the stored names; 'keel keys add ${name} --exchange <id>' adds one)`,
          );
        }
        return new ExchangeCredentials(openRow(key, r));
      },
    };
  }

  return {
    async list() {
      return (await db.selectFrom('exchange_keys').selectAll().orderBy('name').execute()).map(toInfo);
    },
    async remove(name) {
      checkName(name);
      const r = await db.deleteFrom('exchange_keys').where('name', '=', name).executeTakeFirst();
      return Number(r.numDeletedRows) === 1;
    },
    async initialized() {
      return (await meta()) !== undefined;
    },
    async info() {
      const m = await meta();
      return (
        m && {
          kdf: m.kdf,
          params: kdfOf(m),
          createdAt: Number(m.created_at),
          passphraseSetAt: Number(m.updated_at),
        }
      );
    },
    async unlock(passphrase, opts = {}) {
      const pw = checkPassphrase(passphrase);
      let m = await meta();
      if (!m) {
        if (!opts.create) {
          throw new KeyStoreError(
            'not-initialized',
            "the key store is empty: no key has been added yet (add one with 'keel keys add <name> --exchange <id>')",
          );
        }
        const kdf = checkKdf(opts.kdf ?? DEFAULT_KDF);
        const salt = randomBytes(16);
        const key = await deriveKey(pw, salt, kdf);
        const now = clock.now();
        // Two processes creating the store at once: the first row wins, the other unlocks against it.
        await db
          .insertInto('keystore')
          .values({
            id: KEYSTORE_ID,
            kdf: 'scrypt',
            kdf_salt: salt.toString('base64'),
            kdf_n: kdf.N,
            kdf_r: kdf.r,
            kdf_p: kdf.p,
            verifier: seal(key, VERIFIER_PLAINTEXT, aadFor('', '', 'verifier')),
            created_at: now,
            updated_at: now,
          })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
        const created = await meta();
        if (created === undefined) throw new Error('Invariant violated: the key store row is missing after its insert');
        m = created;
      }
      return unlocked(await unlockWith(pw, m), m.verifier);
    },
    async rotatePassphrase(oldPassphrase, newPassphrase, opts = {}) {
      const oldPw = checkPassphrase(oldPassphrase);
      const newPw = checkPassphrase(newPassphrase);
      const m = await meta();
      if (!m) {
        throw new KeyStoreError(
          'not-initialized',
          'the key store is empty: there is no passphrase to change yet (the first `keel keys add` sets it)',
        );
      }
      const oldKey = await unlockWith(oldPw, m);
      const kdf = checkKdf(opts.kdf ?? kdfOf(m));
      const salt = randomBytes(16);
      const newKey = await deriveKey(newPw, salt, kdf);
      return db.transaction().execute(async (trx) => {
        // The keystore row first: from here no other writer can add a key under the old passphrase.
        await claimKeystore(trx, m.verifier, {
          kdf: 'scrypt',
          kdf_salt: salt.toString('base64'),
          kdf_n: kdf.N,
          kdf_r: kdf.r,
          kdf_p: kdf.p,
          verifier: seal(newKey, VERIFIER_PLAINTEXT, aadFor('', '', 'verifier')),
          updated_at: clock.now(),
        });
        const rows = await trx.selectFrom('exchange_keys').selectAll().orderBy('name').execute();
        for (const r of rows) {
          // A row that does not open aborts the whole rotation: nothing is left half-moved.
          const plain = openRow(oldKey, r);
          await trx.updateTable('exchange_keys').set(sealRow(newKey, plain)).where('name', '=', r.name).execute();
        }
        return rows.length;
      });
    },
  };
}
