import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startPostgres, type PostgresServer } from './postgres-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the throwaway PostgreSQL server, or '' when the run is SQLite only. */
    pgAdminUrl: string;
    /** A PostgreSQL database seeded by `saga seed`, to copy with CREATE DATABASE … TEMPLATE. */
    pgTemplate: string;
    /** A SQLite file seeded by `saga seed`, to copy. */
    sqliteTemplate: string;
  }
}

const PG_TEMPLATE = 'saga_seeded_template';
let server: PostgresServer | undefined;
let work: string | undefined;

/**
 * Before any test: bundle src/ into dist/saga.cjs (spawned `saga` processes run the code under
 * test), start a throwaway PostgreSQL server on loopback, and seed one database of each kind with
 * the real `saga seed`: suites that need a seeded shop copy it (a file copy, or CREATE DATABASE …
 * TEMPLATE) instead of spawning `saga seed` again each time. After all tests: stop and remove
 * everything.
 *
 * Which backends run:
 * - SAGA_TEST_SKIP_POSTGRES=1: SQLite only, for a quick local run; refused when CI=true.
 * - SAGA_TEST_BACKENDS=sqlite: SQLite only, said out loud; what `.ci/run` sets for its extra passes
 *   on other Node versions. `.ci/run` unsets both variables for its main pass, which therefore
 *   always tests PostgreSQL too.
 */
export async function setup(project: TestProject): Promise<void> {
  const onlySqlite = sqliteOnly(); // first: a refused setting leaves nothing behind
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  work = mkdtempSync(join(tmpdir(), 'saga-templates-'));
  const seed = (db: string) =>
    execFileSync(process.execPath, [join(root, 'bin/saga.cjs'), 'seed'], { cwd: work, env: { ...process.env, SAGA_DB: db, LOG_LEVEL: 'silent' }, stdio: 'pipe' });
  const sqliteTemplate = join(work, 'seeded.db');
  seed(sqliteTemplate);
  project.provide('sqliteTemplate', sqliteTemplate);
  if (onlySqlite) {
    project.provide('pgAdminUrl', '');
    project.provide('pgTemplate', '');
    return;
  }
  // The suites test saga's logic, not the server's disk: fsync off makes each new database and
  // commit cheap. The benchmark starts its own server with fsync on.
  server = await startPostgres({ fsync: false });
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${PG_TEMPLATE}`);
  } finally {
    await admin.end();
  }
  seed(server.url(PG_TEMPLATE));
  project.provide('pgAdminUrl', server.adminUrl);
  project.provide('pgTemplate', PG_TEMPLATE);
}

function sqliteOnly(): boolean {
  const backends = process.env.SAGA_TEST_BACKENDS;
  if (backends !== undefined && backends !== 'sqlite' && backends !== 'sqlite,postgres') {
    throw new Error(`SAGA_TEST_BACKENDS=${backends}: use sqlite (SQLite only) or sqlite,postgres (the default)`);
  }
  if (backends === 'sqlite') {
    process.stderr.write('SAGA_TEST_BACKENDS=sqlite: the PostgreSQL suites are skipped in this run\n');
    return true;
  }
  if (process.env.SAGA_TEST_SKIP_POSTGRES === '1') {
    if (process.env.CI === 'true') throw new Error('SAGA_TEST_SKIP_POSTGRES=1 is for local runs only; a CI pass that means to skip PostgreSQL sets SAGA_TEST_BACKENDS=sqlite');
    return true;
  }
  return false;
}

export async function teardown(): Promise<void> {
  server?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
}
