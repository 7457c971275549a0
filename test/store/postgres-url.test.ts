import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { isUrl, parsePgSchema, parsePostgresUrl, redactUrl, scrubPassword } from '../../src/store/postgres/url.js';
import { resolveGlobals } from '../../src/cli/settings.js';

// The URL checks are pure: every case here runs without a server.

describe('parsePostgresUrl', () => {
  it.each([
    { url: 'postgres://u:secret@db:5432/shop', connectionString: 'postgres://u:secret@db:5432/shop', sslMode: undefined, label: 'postgres://u:***@db:5432/shop' },
    { url: 'postgresql://u@db/shop', connectionString: 'postgresql://u@db/shop', sslMode: undefined, label: 'postgresql://u@db/shop' },
    { url: 'postgres://u:secret@db/shop?sslmode=require', connectionString: 'postgres://u:secret@db/shop', sslMode: 'require', label: 'postgres://u:***@db/shop?sslmode=require' },
    { url: 'postgres://u:secret@db/shop?sslmode=verify-full&application_name=x&uselibpqcompat=true', connectionString: 'postgres://u:secret@db/shop?application_name=x', sslMode: 'verify-full', label: 'postgres://u:***@db/shop?sslmode=verify-full&application_name=x&uselibpqcompat=true' },
    { url: 'postgres://u@db/shop?password=secret', connectionString: 'postgres://u@db/shop?password=secret', sslMode: undefined, label: 'postgres://u@db/shop?password=***' },
  ])('$url', ({ url, connectionString, sslMode, label }) => {
    const t = parsePostgresUrl(url);
    expect(t).toMatchObject({ connectionString, sslMode, label });
    expect(t.label).not.toContain('secret');
  });

  it('keeps the URL options and certificate files for saga to pass on itself', () => {
    const t = parsePostgresUrl('postgres://u@db/shop?options=-c%20statement_timeout%3D5000&sslmode=verify-ca&sslrootcert=/etc/ca.pem');
    expect(t).toMatchObject({ options: '-c statement_timeout=5000', sslMode: 'verify-ca', sslFiles: { rootcert: '/etc/ca.pem' }, connectionString: 'postgres://u@db/shop' });
    expect(parsePostgresUrl('postgres://u:p%40ss@db/shop').password).toBe('p@ss');
  });

  it.each([
    { url: 'postgres://u:secret@localhost:notaport/db', says: /not a valid URL.*postgres:\/\/user:password@host:5432\/database/ },
    { url: 'postgres://u:secret@localhost:99999/db', says: /not a valid URL/ },
    { url: 'postgres://u:sec ret@local host/db', says: /not a valid URL/ },
    { url: 'postgres://u:secret@db/shop?sslmode=always', says: /sslmode=always .* not one of disable, allow, prefer, require, verify-ca, verify-full/ },
  ])('refuses $url as bad input, without the password', ({ url, says }) => {
    let thrown: unknown;
    try {
      parsePostgresUrl(url);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(UsageError);
    expect((thrown as UsageError).exitCode).toBe(2);
    expect((thrown as Error).message).toMatch(says);
    expect((thrown as Error).message).not.toMatch(/secret|sec ret/);
  });
});

describe('redactUrl and scrubPassword', () => {
  it.each([
    ['postgres://u:secret@h/db', 'postgres://u:***@h/db'],
    ['mysql://u:secret@h/db', 'mysql://u:***@h/db'],
    ['postgres://u:secret@h:notaport/db', 'postgres://u:***@h:notaport/db'],
    ['postgres://u:se@cr/et@h:x/db', 'postgres://u:***@h:x/db'],
    ['postgres://u@h:x/db?password=secret&a=1', 'postgres://u@h:x/db?password=***&a=1'],
    ['./saga.db', './saga.db'],
  ])('%s -> %s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });

  it('scrubs a password a library echoed, plain or percent-encoded', () => {
    expect(scrubPassword('failed for postgres://u:p@ss w@h and p%40ss%20w', 'p@ss w')).toBe('failed for postgres://u:***@h and ***');
    expect(scrubPassword('nothing to hide', '')).toBe('nothing to hide');
  });

  it('leaves text alone for a password of a few characters, which would star letters inside words', () => {
    expect(scrubPassword('saga: cannot connect to postgres://u:***@127.0.0.1:1/db: check the URL and that the server is running', 'a')).toBe(
      'saga: cannot connect to postgres://u:***@127.0.0.1:1/db: check the URL and that the server is running',
    );
  });
});

describe('--db and SAGA_PG_SCHEMA as settings', () => {
  const resolve = (flags: Record<string, unknown>, env: Record<string, string> = {}) => resolveGlobals({ flags, env, dotenv: {} });
  const refusal = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return err as UsageError;
    }
    throw new Error('not refused');
  };

  it.each(['mysql://u:secret@h/db', 'file:///tmp/x.db', 'sqlite://x.db', 'MYSQL://u:secret@h/db'])('%s is a URL saga does not support: exit 2, naming the supported kinds', (db) => {
    expect(isUrl(db)).toBe(true);
    const err = refusal(() => resolve({ db }));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(/does not support .*:\/\/ databases; give a SQLite file path .* or a postgres:\/\/ \(postgresql:\/\/\) URL/);
    expect(err.message).not.toContain('secret');
  });

  it('SAGA_DB and DATABASE_URL are checked like --db; a non-postgres DATABASE_URL is not ours and is ignored', () => {
    expect(refusal(() => resolve({}, { SAGA_DB: 'postgres://u:secret@h:bad/db' })).message).not.toContain('secret');
    expect(refusal(() => resolve({}, { DATABASE_URL: 'postgres://u:secret@h:bad/db' }))).toBeInstanceOf(UsageError);
    expect(resolve({}, { DATABASE_URL: 'mysql://u:secret@h/db' }).db).toBe('./saga.db');
  });

  it.each<{ env: Record<string, string>; schema: string }>([
    { env: {}, schema: 'saga' },
    { env: { SAGA_PG_SCHEMA: 'shop_saga' }, schema: 'shop_saga' },
    { env: { SAGA_PG_SCHEMA: '_x1' }, schema: '_x1' },
  ])('SAGA_PG_SCHEMA $env -> $schema', ({ env, schema }) => {
    expect(resolve({ db: 'postgres://u@h/db' }, env).pgSchema).toBe(schema);
  });

  it.each(['Saga', 'saga-x', '1saga', 'pg_saga', 'a;drop', '"saga"', 'x'.repeat(64)])('SAGA_PG_SCHEMA=%s is refused for PostgreSQL, ignored for SQLite', (name) => {
    expect(() => parsePgSchema(name)).toThrow(UsageError);
    expect(refusal(() => resolve({ db: 'postgres://u@h/db' }, { SAGA_PG_SCHEMA: name })).message).toMatch(/SAGA_PG_SCHEMA=.* is not a usable schema name/);
    expect(resolve({ db: './saga.db' }, { SAGA_PG_SCHEMA: name }).db).toBe('./saga.db');
  });
});
