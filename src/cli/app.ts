import { checkoutSaga, CHECKOUT_SAGA, type CheckoutInput } from '../checkout/checkout-saga.js';
import { seedWrites } from '../checkout/catalog.js';
import type { PaymentProvider } from '../checkout/payment-provider.js';
import { sqlitePaymentProvider } from '../checkout/payment-provider-sqlite.js';
import type { SagaDefinition } from '../engine/definition.js';
import type { DefinitionRegistry } from '../engine/recovery.js';
import { noFaults, type FaultInjector } from '../engine/faults.js';
import type { SagaStore } from '../engine/store.js';
import { SagaError, UsageError } from '../errors.js';
import { isPostgresUrl } from '../store/postgres/url.js';
import type { SqlDatabase, WriteCounters } from '../store/sql.js';
import { migrateSqlite } from '../store/sqlite/migrate.js';
import type { OnLockWait } from '../store/sqlite/lock-wait.js';
import { checkDatabasePath, openSqlite } from '../store/sqlite/open.js';
import { snapshotCopy, whyUncreatable, whyUnwritable } from '../store/sqlite/read-only.js';
import { sqliteSagaStore } from '../store/sqlite/saga-store.js';
import { sqliteDatabase } from '../store/sqlite/database.js';
import { sagasInFlight, type SagasInFlight } from '../store/group-commit.js';
import { startCheckpointer, type Checkpointer } from '../store/sqlite/checkpointer.js';
import type { GlobalSettings } from './settings.js';

/**
 * Everything a command needs, built once here: the composition root's wiring of dependencies.
 * `--db` is a file path (SQLite) or a postgres:// URL; nothing below this file knows which.
 */
export interface App {
  readonly db: SqlDatabase;
  readonly store: SagaStore;
  readonly provider: PaymentProvider;
  readonly checkout: SagaDefinition<CheckoutInput>;
  readonly definitions: DefinitionRegistry;
  /** True when this command created the database (and loaded the demo catalog). */
  readonly created: boolean;
  /** For commands that run for long: WAL checkpoints in a thread of their own (sqlite/checkpointer.ts). */
  checkpointInBackground(): void;
  /** For a server: commits wait a turn of the event loop for requests not read yet (group-commit.ts, `expectCompany`). */
  expectConcurrentSagas(): void;
  /** What this process has made the database do so far (`saga bench` reports it per checkout). */
  readonly counters?: () => WriteCounters;
  close(): Promise<void>;
}

/**
 * `read-only`: the command only reads; a database saga may not write is read from a private
 * copy. `never`: it must exist. `if-missing`: it is created (and seeded) when missing. The last
 * two write, so a database or directory saga may not write is refused before anything starts.
 */
export type CreateMode = 'read-only' | 'never' | 'if-missing';

export interface Backend {
  readonly db: SqlDatabase;
  readonly store: SagaStore;
  readonly provider: PaymentProvider;
  readonly created: boolean;
  readonly checkpointInBackground?: () => void;
  readonly counters?: () => WriteCounters;
  readonly inFlight?: SagasInFlight;
}

/**
 * Opens (or, with `if-missing`, creates and seeds) the database, applying pending migrations. A
 * new database gets its demo catalog in the same transaction that creates its tables, so a
 * process that finds the tables always finds the catalog, whoever created them and even if that
 * process died right after. `beforeCreate` runs before a new database is made, so a command can
 * refuse bad input first and leave nothing behind. `onLockWait` is told when a SQLite write
 * waits on another process's lock for more than a moment, so the command can say so.
 */
export async function openApp(settings: GlobalSettings, create: CreateMode, beforeCreate?: () => void, faults: FaultInjector = noFaults, onLockWait?: OnLockWait): Promise<App> {
  // PostgreSQL's modules (and `pg`) load only when asked for: SQLite users do not pay for them.
  const backend = isPostgresUrl(settings.db)
    ? await (await import('./app-postgres.js')).openPostgresBackend(settings, create, beforeCreate, faults)
    : openSqliteBackend(settings, create, beforeCreate, onLockWait, faults);
  // A crash here, just after the creating transaction committed, must leave a usable database.
  if (backend.created) faults.point('open:create:after-commit');
  const checkout = checkoutSaga({ provider: backend.provider, now: Date.now, timeoutMs: settings.stepTimeoutMs, retryBaseDelayMs: settings.retryBaseMs });
  return { ...backend, checkout, definitions: new Map([[CHECKOUT_SAGA, checkout]]), checkpointInBackground: backend.checkpointInBackground ?? (() => undefined),
    expectConcurrentSagas: () => {
      if (backend.inFlight !== undefined) backend.inFlight.expectCompany = true;
    },
    close: () => backend.db.close(),
  };
}

function openSqliteBackend(settings: GlobalSettings, create: CreateMode, beforeCreate?: () => void, onLockWait?: OnLockWait, faults: FaultInjector = noFaults): Backend {
  const { exists } = checkDatabasePath(settings.db);
  if (!exists && create !== 'if-missing') throw noDatabase(settings.db);
  const unwritable = settings.db === ':memory:' ? undefined : exists ? whyUnwritable(settings.db) : whyUncreatable(settings.db);
  if (unwritable !== undefined && create !== 'read-only') throw readOnly(settings.db, unwritable, exists);
  if (!exists) beforeCreate?.();
  // Read from a copy (migrated there if it is older): the original stays exactly as it was.
  const snapshot = unwritable === undefined ? undefined : snapshotCopy(settings.db);
  const raw = openSqlite(snapshot?.path ?? settings.db, { durability: settings.durability, mustExist: exists, ...(onLockWait === undefined ? {} : { onLockWait }) });
  try {
    const { created } = migrateSqlite(raw, settings.db, { initialWrites: seedWrites() });
    const db = sqliteDatabase(raw, settings.db);
    let checkpointer: Checkpointer | undefined;
    const close = async () => {
      try {
        await checkpointer?.stop();
        await db.close();
      } finally {
        snapshot?.remove();
      }
    };
    // The saga log and the provider each group the commits of concurrent sagas (write-group.ts);
    // both need to know how many sagas are in flight.
    const inFlight = sagasInFlight();
    const store = sqliteSagaStore(raw, { inFlight, group: { point: (name) => faults.point(name) } });
    const checkpointInBackground = () => {
      if (snapshot === undefined) checkpointer ??= startCheckpointer(raw, settings.db, settings.durability);
    };
    const provider = sqlitePaymentProvider(raw, { inFlight });
    const counters = () => ({ commits: store.commits(), providerCommits: provider.commits() });
    return { db: { ...db, close }, store, provider, created, checkpointInBackground, counters, inFlight };
  } catch (err) {
    raw.close();
    snapshot?.remove();
    throw err;
  }
}

function readOnly(path: string, why: string, exists: boolean): SagaError {
  return new SagaError(
    'database_read_only',
    `cannot ${exists ? 'write' : 'create'} ${path}: ${why}; fix the permissions or point --db elsewhere (list, show, verify and inventory can still read a read-only database)`,
  );
}

export function noDatabase(label: string): UsageError {
  return new UsageError(`no saga database at ${label}: run \`saga seed\` (or \`saga checkout\`) first, or point --db at one`, 'no_database');
}
