import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate } from '../../src/store/sqlite/migrate.js';

/**
 * `saga list` and `saga show` must stay fast with 100,000 sagas: they answer from indexes. This
 * checks SQLite's plan for each query they run (the benchmark measures the time). A plan that
 * scans the table or sorts in a temporary B-tree would grow with the history.
 */
function plan(db: Database.Database, sql: string, ...params: unknown[]): string {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join(' | ');
}

describe('query plans on SQLite', () => {
  const db = new Database(':memory:');
  migrate(db);
  const cols = `saga_id, json_extract(input, '$.productId'), status, created_at`;
  const cases: [string, string, unknown[], RegExp][] = [
    ['list', `SELECT ${cols} FROM sagas ORDER BY created_at DESC, saga_id LIMIT ?`, [20], /SCAN sagas USING INDEX sagas_created/],
    ['list --status', `SELECT ${cols} FROM sagas WHERE status = ? ORDER BY created_at DESC LIMIT ?`, ['stuck', 20], /SEARCH sagas USING INDEX sagas_status_created \(status=\?\)/],
    ['show: the saga', 'SELECT * FROM sagas WHERE saga_id = ?', ['x'], /SEARCH sagas USING INDEX sqlite_autoindex_sagas_1 \(saga_id=\?\)/],
    ['show: its events', 'SELECT * FROM saga_events WHERE saga_id = ? ORDER BY event_id', ['x'], /SEARCH saga_events USING INDEX saga_events_saga \(saga_id=\?\)/],
    ['show: its order', 'SELECT order_id FROM orders WHERE saga_id = ?', ['x'], /SEARCH orders USING (COVERING )?INDEX sqlite_autoindex_orders_1 \(saga_id=\?\)/],
  ];
  it.each(cases)('%s uses an index and no temporary sort', (_name, sql, params, expected) => {
    const p = plan(db, sql, ...params);
    expect(p).toMatch(expected);
    expect(p).not.toMatch(/TEMP B-TREE/);
  });
});
