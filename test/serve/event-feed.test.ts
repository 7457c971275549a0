import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { EventCursor } from '../../src/serve/events.js';
import { BACKENDS, type OpenedBackend } from '../support/backends.js';
import { tempDir } from '../support/cli.js';

// The event feed's cursor against a real database. On PostgreSQL, transactions commit in any
// order: a row with a higher event_id can be visible before a lower one. The cursor must not move
// past the lower one (a client resuming after it would never see it).

const opened: OpenedBackend[] = [];
afterAll(async () => {
  for (const b of opened) await b.close();
});

// PostgreSQL only: a SQLite-only run leaves this file out (test/vitest.config.ts).
const postgres = BACKENDS.find((b) => b.name === 'postgres');

describe('the event cursor on postgres', () => {
  it('waits at a row still uncommitted, then sends it and the rows after it, in order', async () => {
    const backend = await postgres!.open(tempDir());
    opened.push(backend);
    await backend.exec(`INSERT INTO sagas (saga_id, definition, input, status, created_at, updated_at) VALUES ('s1', 'checkout', '{}', 'running', 0, 0)`);
    const insert = `INSERT INTO saga_events (saga_id, step, step_index, phase, event, attempt, at) VALUES ('s1', 'inventory', 0, 'action', 'started', 1, 0) RETURNING event_id`;
    const cursor = new EventCursor(backend.db, 0);

    const slow = new pg.Client({ connectionString: backend.dbArg, options: '-c search_path=saga' });
    await slow.connect();
    try {
      await slow.query('BEGIN');
      const held = Number((await slow.query(insert)).rows[0].event_id);
      // A later transaction takes the next id and commits first.
      await backend.exec(insert);
      expect(await cursor.next()).toEqual([]);
      expect(cursor.lastId).toBe(0);
      await new Promise((r) => setTimeout(r, 400));
      // Still open after the settling time: still waited for.
      expect(await cursor.next()).toEqual([]);
      await slow.query('COMMIT');
      const rows = await cursor.next();
      expect(rows.map((r) => r.eventId)).toEqual([held, held + 1]);
    } finally {
      await slow.end();
    }
  });

  it('skips an id no row will ever have (a rolled-back insert) once the transactions of its time have ended', async () => {
    const backend = await postgres!.open(tempDir());
    opened.push(backend);
    await backend.exec(`INSERT INTO sagas (saga_id, definition, input, status, created_at, updated_at) VALUES ('s1', 'checkout', '{}', 'running', 0, 0)`);
    const insert = `INSERT INTO saga_events (saga_id, step, step_index, phase, event, attempt, at) VALUES ('s1', 'inventory', 0, 'action', 'started', 1, 0)`;
    await backend.exec(`BEGIN; ${insert}; ROLLBACK`);
    await backend.exec(insert);
    const cursor = new EventCursor(backend.db, 0);
    const deadline = Date.now() + 10_000;
    let rows = await cursor.next();
    while (rows.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      rows = await cursor.next();
    }
    expect(rows.map((r) => r.eventId)).toEqual([2]);
  });
});
