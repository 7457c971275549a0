import { postgresPaymentProvider } from '../checkout/payment-provider-postgres.js';
import { openPool, postgresDatabase } from '../store/postgres/connect.js';
import { migratePostgres } from '../store/postgres/migrate.js';
import { postgresSagaStore } from '../store/postgres/saga-store.js';
import { redactUrl } from '../store/postgres/url.js';
import { DatabaseUnusableError } from '../errors.js';
import { noDatabase, type Backend, type CreateMode } from './app.js';
import type { GlobalSettings } from './settings.js';

/** The PostgreSQL wiring of `openApp`, in its own module so that it loads only for postgres:// URLs. */
export async function openPostgres(settings: GlobalSettings, create: CreateMode, beforeCreate?: () => void): Promise<Backend> {
  const label = redactUrl(settings.db);
  const pool = await openPool(settings.db, settings.durability);
  try {
    const probe = (await pool.query(`SELECT to_regclass('schema_migrations') IS NOT NULL AS saga, to_regclass('products') IS NOT NULL OR to_regclass('sagas') IS NOT NULL AS taken`)).rows[0] as { saga: boolean; taken: boolean };
    const hasSchema = probe.saga;
    if (!hasSchema && probe.taken) {
      throw new DatabaseUnusableError(`${label} already has tables named like saga's but no saga schema: it belongs to another program; point --db at another database`);
    }
    if (!hasSchema && create === 'never') throw noDatabase(label);
    if (!hasSchema) beforeCreate?.();
    const applied = await migratePostgres(pool, label);
    return { db: postgresDatabase(pool, settings.db), store: postgresSagaStore(pool), provider: postgresPaymentProvider(pool), created: !hasSchema && applied.length > 0 };
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}

