import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { onPostgres, type StoreTarget } from '../../../test-support/postgres.ts';
import { BarsNotStoredError, MIGRATIONS, type NewBacktest, openStore, type Store } from '../src/index.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-backtests-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (strategy: string, extra: Partial<NewBacktest> = {}): NewBacktest => ({
  strategy,
  params: { fast: 10, slow: 30 },
  symbols: ['BTC/USDT', 'ETH/USDT'],
  timeframe: '1h',
  firstBar: Date.UTC(2024, 0, 1),
  lastBar: Date.UTC(2024, 5, 30, 23),
  settings: { cash: 10_000, fee: 0.001, data: ['a.csv', 'b.csv'] },
  metrics: { totalReturn: 0.1 + 0.2, sharpe: null },
  pairs: [{ symbol: 'BTC/USDT' }, { symbol: 'ETH/USDT' }],
  summary: 'sma-cross on 2 pairs 1h\n  Final value  10,300.00 USDT',
  result: Uint8Array.from([0, 1, 2, 255, 128]),
  chart: new Uint8Array(Float64Array.from([1.5, Number.NaN, 1e300]).buffer),
  ...extra,
});

function contract(name: string, target: () => StoreTarget): void {
  describe(`backtests repository: ${name}`, () => {
    it('saves runs under 1, 2, 3, lists them newest first, and gives back what was saved, to the bit', async () => {
      const t = target();
      let now = 1_700_000_000_000;
      const s = await openStore({ url: t.url, clock: { now: () => now++ }, ...(t.schema ? { schema: t.schema } : {}) });
      try {
        const a = await s.backtests.save(run('sma-cross'));
        const b = await s.backtests.save(run('rsi-reversion', { firstBar: Number.NaN, lastBar: Number.NaN }));
        expect([a.id, b.id]).toEqual([1, 2]);
        expect((await s.backtests.list()).map((r) => r.id)).toEqual([2, 1]);
        expect((await s.backtests.list({ limit: 1 })).map((r) => r.id)).toEqual([2]);
        const got = await s.backtests.get(1);
        const { result, chart, ...rest } = run('sma-cross');
        expect(got).toEqual({ ...rest, id: 1, createdAt: 1_700_000_000_000 });
        expect((await s.backtests.get(2))?.firstBar).toBeNaN();
        const art = await s.backtests.artifacts(1);
        expect(art?.result).toEqual(result);
        expect(new Float64Array(art?.chart.slice().buffer as ArrayBuffer)).toEqual(new Float64Array(chart.buffer));
        expect(await s.backtests.get(3)).toBeUndefined();
        expect(await s.backtests.remove([1])).toMatchObject({ kind: 'removed', ids: [1], dryRun: false });
        expect(await s.backtests.artifacts(1)).toBeUndefined();
        expect(await s.backtests.remove([1])).toEqual({ kind: 'missing', ids: [1] });
        expect((await s.backtests.save(run('macd'))).id, 'ids are never reused while a later run exists').toBe(3);
        expect(await s.backtests.remove([3])).toMatchObject({ kind: 'removed', ids: [3] });
        expect((await s.backtests.save(run('macd'))).id, 'the newest run deleted, its id is not given again').toBe(4);
      } finally {
        await s.close();
      }
    });

    // SQLite: better-sqlite3 waits for a lock synchronously, so two connections of one process
    // would block each other's event loop; they save in turn here (processes take turns by the lock).
    it('two saves at once (PostgreSQL) or in turn (SQLite) from two connections get two ids', async () => {
      const t = target();
      const s = await openStore({ url: t.url, ...(t.schema ? { schema: t.schema } : {}) });
      const s2 = await openStore({ url: t.url, ...(t.schema ? { schema: t.schema } : {}) });
      try {
        const before = (await s.backtests.list()).length;
        const ids =
          s.dialect === 'postgres'
            ? await Promise.all([s.backtests.save(run('x')), s2.backtests.save(run('y'))])
            : [await s.backtests.save(run('x')), await s2.backtests.save(run('y'))];
        expect(new Set(ids.map((r) => r.id)).size).toBe(2);
        expect((await s.backtests.list()).length).toBe(before + 2);
      } finally {
        await s.close();
        await s2.close();
      }
    });
  });
}

const DAY = 86_400_000;
const bars = (hash: string, data?: Uint8Array) => ({ hash, count: 3, ...(data !== undefined ? { data } : {}) });
const BYTES = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);

function open(t: StoreTarget, now?: () => number): Promise<Store> {
  return openStore({ url: t.url, ...(now ? { clock: { now } } : {}), ...(t.schema ? { schema: t.schema } : {}) });
}

const barRows = async (s: Store) =>
  (await s.db.selectFrom('backtest_bars').select(['hash', 'bars']).orderBy('hash').execute()).map((r) => ({
    hash: r.hash,
    bars: Number(r.bars),
  }));

/**
 * A store as the build before migration 0008 left it (ids by max + 1, bars inside the chart), with
 * runs 1..3 of which 2 was deleted: the newest kept is 3.
 */
async function oldStore(t: StoreTarget): Promise<void> {
  const old = Object.fromEntries(Object.entries(MIGRATIONS).filter(([name]) => name < '0008'));
  // biome-ignore lint/suspicious/noExplicitAny: the schema as it was before migration 0008, not KeelDb
  let db: Kysely<any>;
  if (t.url.startsWith('sqlite:'))
    db = new Kysely({ dialect: new SqliteDialect({ database: new Database(t.url.slice(7)) }) });
  else {
    const c = new pg.Client({ connectionString: t.url });
    await c.connect();
    await c.query(`create schema if not exists ${t.schema}`);
    await c.end();
    const pool = new pg.Pool({ connectionString: t.url, options: `-c search_path=${t.schema}` });
    db = new Kysely({ dialect: new PostgresDialect({ pool }) });
  }
  try {
    const { error } = await new Migrator({
      db,
      provider: { getMigrations: async () => old },
      ...(t.schema ? { migrationTableSchema: t.schema } : {}),
    }).migrateToLatest();
    if (error) throw error;
    for (const id of [1, 3]) {
      await db
        .insertInto('backtests')
        .values({
          id,
          created_at: id,
          strategy: `s${id}`,
          params: '{}',
          symbols: '[]',
          timeframe: '1h',
          first_bar: null,
          last_bar: null,
          settings: '{}',
          metrics: '{}',
          pairs: '[]',
          summary: `run ${id}`,
        })
        .execute();
      await db.insertInto('backtest_artifacts').values({ backtest_id: id, result: 'AAEC', bars: 'AwQF' }).execute();
    }
  } finally {
    await db.destroy();
  }
}

function space(name: string, target: () => StoreTarget): void {
  describe(`backtests repository, deleting: ${name}`, () => {
    it('bars shared by two runs are stored once, kept while one run uses them, deleted with the last', async () => {
      const s = await open(target());
      try {
        const a = await s.backtests.save(run('a', { bars: bars('h1', BYTES) }));
        expect(await s.backtests.hasBars('h1')).toBe(true);
        // The second run sends them again (it did not look) or not at all (it looked): one row either way.
        const b = await s.backtests.save(run('b', { bars: bars('h1', BYTES) }));
        const c = await s.backtests.save(run('c', { bars: bars('h1') }));
        const other = await s.backtests.save(run('d', { bars: bars('h2', BYTES.subarray(10)) }));
        expect(await barRows(s)).toEqual([
          { hash: 'h1', bars: 3 },
          { hash: 'h2', bars: 3 },
        ]);
        expect((await s.backtests.artifacts(c.id))?.bars).toEqual({ hash: 'h1', count: 3, data: Buffer.from(BYTES) });
        expect(await s.backtests.remove([a.id, b.id])).toMatchObject({ kind: 'removed', barSets: 0 });
        expect((await s.backtests.artifacts(c.id))?.bars?.data, 'still there for the run that uses them').toEqual(
          Buffer.from(BYTES),
        );
        const dry = await s.backtests.remove([c.id], { dryRun: true });
        expect(dry).toMatchObject({ kind: 'removed', ids: [c.id], barSets: 1, dryRun: true });
        expect(await s.backtests.hasBars('h1'), 'a dry run deletes nothing').toBe(true);
        const gone = await s.backtests.remove([c.id]);
        expect(gone).toMatchObject({ kind: 'removed', ids: [c.id], barSets: 1 });
        if (gone.kind === 'removed')
          expect(gone.bytes, 'the bars count in the bytes freed').toBeGreaterThan(BYTES.length);
        expect(await barRows(s)).toEqual([{ hash: 'h2', bars: 3 }]);
        const room = await s.reclaim();
        if (room.kind === 'postgres') expect(room.backtestBytes, 'the backtest tables’ size').toBeGreaterThan(0);
        else expect(room).toMatchObject({ kind: 'sqlite-file', freeBytes: 0 });
        await s.backtests.remove([other.id]);
        expect(await barRows(s)).toEqual([]);
      } finally {
        await s.close();
      }
    });

    it('a save told its bars are stored, when they are not, writes nothing and takes no id', async () => {
      const s = await open(target());
      try {
        const before = (await s.backtests.save(run('w'))).id;
        await expect(s.backtests.save(run('x', { bars: bars('nowhere') }))).rejects.toBeInstanceOf(BarsNotStoredError);
        expect((await s.backtests.list())[0]?.id).toBe(before);
        expect((await s.backtests.save(run('y'))).id).toBe(before + 1);
      } finally {
        await s.close();
      }
    });

    it('a delete naming a missing id deletes nothing and names every missing id', async () => {
      const s = await open(target());
      try {
        const a = await s.backtests.save(run('a'));
        expect(await s.backtests.remove([a.id, 9_001, 9_002])).toEqual({ kind: 'missing', ids: [9_001, 9_002] });
        expect(await s.backtests.get(a.id)).toBeDefined();
      } finally {
        await s.close();
      }
    });

    it('prune: --keep keeps the newest n, --older-than goes by age, both: a run must be both to go; dry run deletes nothing', async () => {
      const t = target();
      let now = 0;
      const s = await open(t, () => now);
      try {
        for (const r of await s.backtests.list()) await s.backtests.remove([r.id]);
        const ids: number[] = [];
        for (let d = 0; d < 6; d++) {
          now = d * DAY;
          ids.push((await s.backtests.save(run(`day${d}`, { bars: bars(`p${d % 2}`, BYTES) }))).id);
        }
        now = 10 * DAY; // saved 10, 9, 8, 7, 6 and 5 days ago
        await expect(s.backtests.prune({})).rejects.toThrow(/keep or olderThanMs/);
        const dry = await s.backtests.prune({ keep: 2, dryRun: true });
        expect(dry).toMatchObject({ ids: ids.slice(0, 4), barSets: 0, dryRun: true });
        expect(await s.backtests.list()).toHaveLength(6);
        expect(await s.backtests.prune({ olderThanMs: 8.5 * DAY })).toMatchObject({ ids: ids.slice(0, 2) });
        expect(await s.backtests.prune({ keep: 1, olderThanMs: 6.5 * DAY })).toMatchObject({ ids: ids.slice(2, 4) });
        expect(await s.backtests.prune({ keep: 10 })).toMatchObject({ ids: [] });
        expect(await barRows(s)).toHaveLength(2);
        const last = await s.backtests.prune({ keep: 1 });
        expect(last).toMatchObject({ ids: [ids[4]], barSets: 1 });
        expect((await s.backtests.list()).map((r) => r.id)).toEqual([ids[5]]);
        expect(await barRows(s)).toEqual([{ hash: 'p1', bars: 3 }]);
        expect(await s.backtests.prune({ keep: 0 })).toMatchObject({ ids: [ids[5]], barSets: 1 });
        expect(await barRows(s)).toEqual([]);
        expect((await s.backtests.save(run('next'))).id, 'pruning every run reuses no id').toBe((ids[5] as number) + 1);
      } finally {
        await s.close();
      }
    });
  });

  describe(`backtests repository, a store from before migration 0008: ${name}`, () => {
    it('keeps its runs, reads them, and gives ids above the largest ever kept', async () => {
      const base = target();
      const t: StoreTarget = base.schema
        ? { ...base, schema: `${base.schema}_old` }
        : { url: `sqlite:${path.join(dir, 'old.db')}` };
      await oldStore(t);
      const s = await open(t);
      try {
        expect((await s.backtests.list()).map((r) => r.id)).toEqual([3, 1]);
        expect(await s.backtests.artifacts(3)).toEqual({
          result: Uint8Array.from([0, 1, 2]),
          chart: Uint8Array.from([3, 4, 5]),
        });
        await s.backtests.remove([3]);
        expect((await s.backtests.save(run('new'))).id).toBe(4);
      } finally {
        await s.close();
        if (t.schema) {
          const c = new pg.Client({ connectionString: t.url });
          await c.connect();
          await c.query(`drop schema if exists ${t.schema} cascade`);
          await c.end();
        }
      }
    });
  });
}

contract('sqlite (file)', () => ({ url: `sqlite:${path.join(dir, 'keel.db')}` }));
await onPostgres('backtests repository', contract, 'keel_backtests');
space('sqlite (file)', () => ({ url: `sqlite:${path.join(dir, 'space.db')}` }));
await onPostgres('backtests repository, deleting', space, 'keel_backtests_space');

describe('a SQLite store gives deleted runs’ room back to the file system', () => {
  /** Incompressible bytes: the room they take is their size. */
  const noise = (n: number, seed: number) => {
    const b = new Uint8Array(n);
    let x = seed;
    for (let i = 0; i < n; i++) {
      x = (x * 1_103_515_245 + 12_345) >>> 0;
      b[i] = x >>> 24;
    }
    return b;
  };
  const fill = async (s: Store) => {
    for (let i = 0; i < 8; i++) await s.backtests.save(run(`r${i}`, { bars: bars(`n${i}`, noise(1 << 20, i)) }));
  };

  it('a new store frees them at once (incremental vacuum) and says how big the file is', async () => {
    const s = await open({ url: `sqlite:${path.join(dir, 'reclaim-new.db')}` });
    try {
      await fill(s);
      const full = await s.reclaim();
      expect(full).toMatchObject({ kind: 'sqlite-file', autoVacuum: 'incremental' });
      const ids = (await s.backtests.list()).map((r) => r.id);
      await s.backtests.remove(ids.slice(1));
      const after = await s.reclaim();
      if (after.kind !== 'sqlite-file' || full.kind !== 'sqlite-file') throw new Error('a SQLite file');
      expect(after.freeBytes).toBe(0);
      expect(after.fileBytes + after.walBytes, 'the file shrank by the 7 MB deleted').toBeLessThan(
        full.fileBytes + full.walBytes - 6.5 * 2 ** 20,
      );
    } finally {
      await s.close();
    }
  });

  it('a store made before keeps free pages until --vacuum, which shrinks it and turns incremental vacuum on', async () => {
    const file = path.join(dir, 'reclaim-old.db');
    const pre = new Database(file);
    pre.pragma('journal_mode = WAL'); // as builds before made stores: auto_vacuum none
    pre.close();
    const s = await open({ url: `sqlite:${file}` });
    try {
      await fill(s);
      const ids = (await s.backtests.list()).map((r) => r.id);
      await s.backtests.remove(ids.slice(1));
      const kept = await s.reclaim();
      expect(kept).toMatchObject({ kind: 'sqlite-file', autoVacuum: 'none' });
      if (kept.kind !== 'sqlite-file') throw new Error('a SQLite file');
      expect(kept.freeBytes, 'free pages stay in the file').toBeGreaterThan(6.5 * 2 ** 20);
      const vacuumed = await s.reclaim({ vacuum: true });
      if (vacuumed.kind !== 'sqlite-file') throw new Error('a SQLite file');
      expect(vacuumed).toMatchObject({ autoVacuum: 'incremental', freeBytes: 0 });
      expect(vacuumed.fileBytes + vacuumed.walBytes).toBeLessThan(kept.fileBytes - 6.5 * 2 ** 20);
    } finally {
      await s.close();
    }
  });
});
