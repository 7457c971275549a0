import { randomUUID } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { postgresPaymentProvider } from '../../src/checkout/payment-provider-postgres.js';
import type { PaymentProvider } from '../../src/checkout/payment-provider.js';
import { sqlitePaymentProvider } from '../../src/checkout/payment-provider-sqlite.js';
import type { SagaStore } from '../../src/engine/store.js';
import { postgresDatabase } from '../../src/store/postgres/database.js';
import { openPostgres } from '../../src/store/postgres/open.js';
import { migratePostgres } from '../../src/store/postgres/migrate.js';
import { postgresSagaStore } from '../../src/store/postgres/saga-store.js';
import type { SqlDatabase } from '../../src/store/sql.js';
import { migrateSqlite } from '../../src/store/sqlite/migrate.js';
import { openSqlite } from '../../src/store/sqlite/open.js';
import { sagasInFlight } from '../../src/store/group-commit.js';
import { sqliteSagaStore } from '../../src/store/sqlite/saga-store.js';
import { sqliteDatabase } from '../../src/store/sqlite/database.js';
import { createPostgresDatabase } from './pg-database.js';

/**
 * The databases every backend-neutral suite runs against: `describe.each(BACKENDS)`. SQLite
 * always; PostgreSQL unless the run is SQLite only (see global-setup.ts).
 */
export interface TestBackend {
  readonly name: 'sqlite' | 'postgres';
  /** A `--db` value naming a new, empty database (SQLite: a file in `dir`). */
  freshDb(dir: string): Promise<string>;
  /** A `--db` value naming a new database already seeded by `saga seed` (a copy of a template). */
  seededDb(dir: string): Promise<string>;
  /** A `--db` value naming a new copy of the database `dbArg` names (no process may have it open). */
  copyDb(dbArg: string, dir: string): Promise<string>;
  /** A new, migrated database opened in this process, as the CLI would open it. */
  open(dir: string): Promise<OpenedBackend>;
}

export interface OpenedBackend {
  readonly dbArg: string;
  readonly db: SqlDatabase;
  readonly store: SagaStore;
  readonly provider: PaymentProvider;
  /** Transactions the saga log committed so far (concurrent sagas' commits share them). */
  commits(): number;
  /** Runs DDL or any statement text (test tables). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

const sqlite: TestBackend = {
  name: 'sqlite',
  freshDb: async (dir) => join(dir, `saga-${randomUUID().slice(0, 8)}.db`),
  async seededDb(dir) {
    const path = await this.freshDb(dir);
    copyFileSync(inject('sqliteTemplate'), path);
    return path;
  },
  async copyDb(dbArg, dir) {
    const path = await this.freshDb(dir);
    copyFileSync(dbArg, path);
    return path;
  },
  async open(dir) {
    const path = await this.freshDb(dir);
    const raw = openSqlite(path, { durability: 'normal' });
    migrateSqlite(raw, path);
    // Wired as the CLI wires them: concurrent sagas in a test share their commits too.
    const inFlight = sagasInFlight();
    const store = sqliteSagaStore(raw, { inFlight });
    return {
      dbArg: path,
      db: sqliteDatabase(raw, path),
      store,
      provider: sqlitePaymentProvider(raw, { inFlight }),
      commits: () => store.commits(),
      exec: async (sql) => void raw.exec(sql),
      close: async () => void raw.close(),
    };
  },
};

function postgres(adminUrl: string): TestBackend {
  return {
    name: 'postgres',
    freshDb: () => createPostgresDatabase(adminUrl),
    seededDb: () => createPostgresDatabase(adminUrl, inject('pgTemplate')),
    copyDb: (dbArg) => createPostgresDatabase(adminUrl, new URL(dbArg).pathname.slice(1)),
    async open() {
      const url = await createPostgresDatabase(adminUrl);
      const pool = await openPostgres(url);
      await migratePostgres(pool, url);
      // Wired as the CLI wires them: concurrent sagas in a test share their commits too.
      const inFlight = sagasInFlight();
      const store = postgresSagaStore(pool, { inFlight });
      return {
        dbArg: url,
        db: postgresDatabase(pool, url),
        store,
        provider: postgresPaymentProvider(pool, { inFlight }),
        commits: () => store.commits(),
        exec: async (sql) => void (await pool.query(sql)),
        close: () => pool.end(),
      };
    },
  };
}

const adminUrl = inject('pgAdminUrl');
export const BACKENDS: readonly TestBackend[] = adminUrl === '' ? [sqlite] : [sqlite, postgres(adminUrl)];
