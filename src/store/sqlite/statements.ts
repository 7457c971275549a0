import type Database from 'better-sqlite3';
import type { Db } from './open.js';

/** Prepares each SQL text once per connection and reuses it: preparing costs more than running. */
export function statementCache(db: Db): (sql: string) => Database.Statement {
  const cache = new Map<string, Database.Statement>();
  return (sql) => {
    let stmt = cache.get(sql);
    if (stmt === undefined) {
      stmt = db.prepare(sql);
      cache.set(sql, stmt);
    }
    return stmt;
  };
}
