import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/index.ts';
import { onPostgres } from './backends.ts';
import { storeContract } from './store-contract.ts';

// SQLite: a file in a fresh temp dir (WAL needs a real file; :memory: is covered below).
const dir = mkdtempSync(path.join(tmpdir(), 'keel-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
storeContract('sqlite (file, WAL)', () => ({ url: `sqlite:${path.join(dir, 'keel.db')}` }));

// PostgreSQL: a fresh schema per run, dropped afterwards.
await onPostgres('store contract', storeContract);

describe('openStore', () => {
  it('opens sqlite::memory: and rejects unknown urls with a helpful message', async () => {
    const s = await openStore({ url: 'sqlite::memory:' });
    expect(s.dialect).toBe('sqlite');
    await s.bots.create({ id: 'm', strategy: 's', params: {}, mode: 'paper', exchange: 'x', symbols: [] });
    expect((await s.bots.list()).length).toBe(1);
    await s.close();
    await expect(openStore({ url: 'mysql://x' })).rejects.toThrow(/Unsupported store url/);
  });

  it('uses WAL and the documented synchronous level on a file database', async () => {
    const { sql } = await import('kysely');
    const s = await openStore({ url: `sqlite:${path.join(dir, 'pragmas.db')}` });
    const jm = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(s.db);
    const sy = await sql<{ synchronous: number }>`pragma synchronous`.execute(s.db);
    expect(jm.rows[0]?.journal_mode).toBe('wal');
    expect(sy.rows[0]?.synchronous).toBe(2); // FULL
    await s.close();
  });
});
