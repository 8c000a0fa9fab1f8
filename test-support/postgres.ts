import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

/** How a store test reaches one backend: a url (plus PG schema), fresh for this run. */
export interface StoreTarget {
  readonly url: string;
  readonly schema?: string;
}

export const PG_URL = process.env.KEEL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REQUIRE = process.env.KEEL_REQUIRE_SERVICES === '1';

async function pgReachable(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2_000 });
  try {
    await c.connect();
    await c.query('select 1');
    return null;
  } catch (e) {
    return (e as Error).message || String(e);
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Registers `suite` against PostgreSQL in a fresh schema (dropped afterwards). When PostgreSQL is
 * unreachable the suite is skipped with a visible `[skip]` note, or fails under
 * KEEL_REQUIRE_SERVICES=1 (CI).
 */
export async function onPostgres(
  label: string,
  suite: (name: string, target: () => StoreTarget) => void,
  tag = 'keel_test',
): Promise<void> {
  const schema = `${tag}_${process.pid}_${Date.now().toString(36)}`;
  const pgError = await pgReachable();
  if (pgError === null) {
    afterAll(async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`);
      await c.end();
    });
    suite('postgres (fresh schema)', () => ({ url: PG_URL, schema }));
  } else if (REQUIRE) {
    describe(`${label}: postgres`, () => {
      it('needs a reachable PostgreSQL (KEEL_REQUIRE_SERVICES=1)', () => {
        expect.fail(`PostgreSQL at ${PG_URL} is not reachable: ${pgError}`);
      });
    });
  } else {
    console.warn(
      `[skip] ${label}: postgres: ${PG_URL} is not reachable (${pgError}); set KEEL_REQUIRE_SERVICES=1 to fail instead`,
    );
    describe.skip(`${label}: postgres (not reachable)`, () => {
      it('skipped', () => {});
    });
  }
}
