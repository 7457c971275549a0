import { seedWrites } from '../checkout/catalog.js';
import { postgresPaymentProvider } from '../checkout/payment-provider-postgres.js';
import { postgresDatabase } from '../store/postgres/database.js';
import { openPostgres, type Pool } from '../store/postgres/open.js';
import { migratePostgres } from '../store/postgres/migrate.js';
import { postgresSagaStore } from '../store/postgres/saga-store.js';
import { sagasInFlight } from '../store/group-commit.js';
import { DatabaseUnusableError, UsageError } from '../errors.js';
import { noFaults, type FaultInjector } from '../engine/faults.js';
import { noDatabase, type Backend, type CreateMode } from './app.js';
import type { GlobalSettings } from './settings.js';

/**
 * The PostgreSQL wiring of `openApp`, in its own module so that it loads only for postgres:// URLs.
 * Everything of saga's lives in its own schema (`settings.pgSchema`); the rest of the database
 * (an application's `public.orders`, say) is never read or written.
 */
export async function openPostgresBackend(settings: GlobalSettings, create: CreateMode, beforeCreate?: () => void, faults: FaultInjector = noFaults): Promise<Backend> {
  const schema = settings.pgSchema;
  const pool = await openPostgres(settings.db, { durability: settings.durability, schema });
  const db = postgresDatabase(pool, settings.db, schema);
  try {
    // A hot standby, or a database whose transactions default to read-only: a command that writes
    // is refused before it starts anything, as on a read-only SQLite file.
    if (create !== 'read-only' && (await readOnlyTransactions(pool))) {
      throw new UsageError(`cannot write ${db.label}: its transactions are read-only (a standby, or default_transaction_read_only); point --db at a writable database (list, show, verify and inventory can still read it)`, 'database_read_only');
    }
    const state = await schemaState(pool, schema);
    if (state === 'foreign') {
      throw new DatabaseUnusableError(`schema ${schema} in ${db.label} holds another program's tables (no saga bookkeeping): set SAGA_PG_SCHEMA to another schema, or point --db at another database`);
    }
    // An older saga kept its tables in `public`. Creating a new, empty schema beside them would
    // hide that saga's unfinished sagas (held stock, charges to refund) from recover and verify.
    if (state === 'absent' && schema !== 'public' && (await olderSagaInPublic(pool))) {
      throw new DatabaseUnusableError(`${db.label} has saga's tables from an older version in schema public: set SAGA_PG_SCHEMA=public to keep using them (or move them to schema ${schema})`);
    }
    if (state === 'absent' && create !== 'if-missing') throw noDatabase(db.label);
    if (state === 'absent') beforeCreate?.();
    const { created } = await migratePostgres(pool, db.label, { schema, initialWrites: seedWrites() });
    // The saga log and the provider each group the commits of concurrent sagas
    // (store/postgres/write-group.ts); both need to know how many sagas are in flight.
    const inFlight = sagasInFlight();
    const store = postgresSagaStore(pool, { inFlight, group: { point: (name) => faults.point(name) } });
    const provider = postgresPaymentProvider(pool, { inFlight });
    const counters = () => ({ commits: store.commits(), providerCommits: provider.commits(), roundTrips: store.roundTrips() + provider.roundTrips() });
    return { db, store, provider, created, counters };
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}

async function readOnlyTransactions(pool: Pool): Promise<boolean> {
  const row = (await pool.query(`SELECT current_setting('transaction_read_only') = 'on' AS read_only`)).rows[0] as { read_only: boolean };
  return row.read_only;
}

async function olderSagaInPublic(pool: Pool): Promise<boolean> {
  const row = (await pool.query(`SELECT to_regclass('public.schema_migrations') IS NOT NULL AND to_regclass('public.saga_events') IS NOT NULL AS found`)).rows[0] as { found: boolean };
  return row.found;
}

/** Ours (has `schema_migrations`), absent (no such schema, or an empty one), or another program's. */
async function schemaState(pool: Pool, schema: string): Promise<'ours' | 'absent' | 'foreign'> {
  const row = (
    await pool.query(
      `SELECT count(*) AS relations, count(*) FILTER (WHERE c.relname = 'schema_migrations' AND c.relkind = 'r') AS bookkeeping
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`,
      [schema],
    )
  ).rows[0] as { relations: number; bookkeeping: number };
  if (row.bookkeeping > 0) return 'ours';
  return row.relations > 0 ? 'foreign' : 'absent';
}
