import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { checkoutSaga, CHECKOUT_SAGA, type CheckoutInput } from '../checkout/checkout-saga.js';
import { seedCatalog } from '../checkout/catalog.js';
import { simulatedPaymentProvider, type PaymentProvider } from '../checkout/payment-provider.js';
import type { SagaDefinition } from '../engine/definition.js';
import type { DefinitionRegistry } from '../engine/recovery.js';
import type { Owner, SagaStore } from '../engine/store.js';
import { UsageError } from '../errors.js';
import { migrate } from '../store/sqlite/migrate.js';
import { checkDatabasePath, openSqlite, type Db } from '../store/sqlite/open.js';
import { sqliteSagaStore } from '../store/sqlite/saga-store.js';
import type { GlobalSettings } from './settings.js';

/** Everything a command needs, built once here: the composition root's wiring of dependencies. */
export interface App {
  readonly db: Db;
  readonly store: SagaStore;
  readonly provider: PaymentProvider;
  readonly checkout: SagaDefinition<CheckoutInput>;
  readonly definitions: DefinitionRegistry;
  /** True when this command created the database (and loaded the demo catalog). */
  readonly created: boolean;
  close(): void;
}

export type CreateMode = 'never' | 'if-missing';

/**
 * Opens (or, with `if-missing`, creates and seeds) the database, applying pending migrations.
 * `beforeCreate` runs before a new file is made, so a command can refuse bad input first and
 * leave nothing behind.
 */
export function openApp(settings: GlobalSettings, create: CreateMode, beforeCreate?: () => void): App {
  const { exists } = checkDatabasePath(settings.db);
  if (!exists && create === 'never') {
    throw new UsageError(`no database at ${settings.db}: run \`saga seed\` (or \`saga checkout\`) first, or point --db at one`);
  }
  if (!exists) beforeCreate?.();
  const db = openSqlite(settings.db, { durability: settings.durability, mustExist: exists });
  try {
    migrate(db, undefined, settings.db);
    if (!exists) seedCatalog(db);
    const provider = simulatedPaymentProvider(db);
    const checkout = checkoutSaga({ provider, now: Date.now, timeoutMs: settings.stepTimeoutMs, retryBaseDelayMs: settings.retryBaseMs });
    return {
      db,
      store: sqliteSagaStore(db),
      provider,
      checkout,
      definitions: new Map([[CHECKOUT_SAGA, checkout]]),
      created: !exists,
      close: () => db.close(),
    };
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Who is driving sagas in this process: host and pid let `recover` see at once that it died. */
export function processOwner(): Owner {
  return { id: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`, host: hostname(), pid: process.pid };
}
