import Database from 'better-sqlite3';

/**
 * better-sqlite3 12 builds its Database and Statement objects on `node::ObjectWrap`. Compiled
 * against the headers of Node 24.19 or later, that class unregisters an exit hook when the garbage
 * collector frees an object, and the hook lookup needs a JavaScript context that a collection
 * triggered by an allocation does not have: Node 24 aborts the process with
 * `Assertion failed: (env) != nullptr` in `Statement::~Statement` (nodejs/node#65446; better-sqlite3
 * 13 avoids it but needs Node 22). So no such object may ever become garbage: every database saga
 * opens, and every statement prepared on it, stays referenced here until the process exits, and
 * Node deletes them then, safely, through those very exit hooks. Closing a database still
 * finalizes its statements and releases the file at once; what is kept is a few small wrappers
 * per database.
 *
 * Tests open their databases here too: a test process on Node 24 would abort the same way.
 *
 * This is why the code never calls `db.pragma()` (it prepares a statement this module cannot see
 * and drops it): run a pragma as a prepared statement instead.
 */
const KEY = Symbol.for('saga.sqlite-objects-kept-for-life');
// Rooted on `process`, not only in this module's scope: the CLI bundle runs in a vm.Script, and
// once a command is done nothing need reference this module's scope any more.
const keptForLife: object[] = ((process as unknown as Record<symbol, object[]>)[KEY] ??= []);

export function openKeptDatabase(path: string, options?: Database.Options): Database.Database {
  const db = new Database(path, options);
  keptForLife.push(db);
  const prepare = db.prepare.bind(db) as (sql: string) => Database.Statement;
  db.prepare = ((sql: string) => {
    const stmt = prepare(sql);
    keptForLife.push(stmt);
    return stmt;
  }) as Database.Database['prepare'];
  return db;
}
