import { describe, expect, it } from 'vitest';
import { resolveGlobals } from '../../src/cli/settings.js';

const PG = 'postgres://saga@db.internal:5432/shop';
const OTHER = 'postgres://saga@other:5432/x';

describe('which database --db, SAGA_DB and DATABASE_URL select', () => {
  const cases: [string, { flags?: Record<string, unknown>; env?: Record<string, string>; dotenv?: Record<string, string> }, string][] = [
    ['default', {}, './saga.db'],
    ['flag beats everything', { flags: { db: 'flag.db' }, env: { SAGA_DB: 'env.db', DATABASE_URL: PG } }, 'flag.db'],
    ['SAGA_DB beats DATABASE_URL', { env: { SAGA_DB: 'env.db', DATABASE_URL: PG } }, 'env.db'],
    ['DATABASE_URL when SAGA_DB is unset', { env: { DATABASE_URL: PG } }, PG],
    ['DATABASE_URL of another kind of database is ignored', { env: { DATABASE_URL: 'mysql://x@y/z' } }, './saga.db'],
    ['environment DATABASE_URL beats .env SAGA_DB', { env: { DATABASE_URL: PG }, dotenv: { SAGA_DB: 'dot.db' } }, PG],
    ['.env SAGA_DB beats .env DATABASE_URL', { dotenv: { SAGA_DB: 'dot.db', DATABASE_URL: OTHER } }, 'dot.db'],
    ['.env DATABASE_URL', { dotenv: { DATABASE_URL: OTHER } }, OTHER],
    ['postgresql:// scheme too', { env: { DATABASE_URL: 'postgresql://a@b/c' } }, 'postgresql://a@b/c'],
  ];
  it.each(cases)('%s', (_name, sources, expected) => {
    expect(resolveGlobals({ flags: sources.flags ?? {}, env: sources.env ?? {}, dotenv: sources.dotenv ?? {} }).db).toBe(expected);
  });
});
