import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toNumberedPlaceholders } from '../../src/store/postgres/placeholders.js';
import { BACKENDS } from '../support/backends.js';
import { tempDir } from '../support/cli.js';

// The rewrite is pure: every case but the last describe runs without a server.

describe('toNumberedPlaceholders numbers the ? that stand for values', () => {
  it.each([
    { sql: 'SELECT * FROM t WHERE a = ? AND b IN (?, ?)', pg: 'SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)' },
    { sql: 'UPDATE t SET a = coalesce(?, a), b = CASE WHEN ? = 1 THEN NULL ELSE b END WHERE c IS ? LIMIT ?', pg: 'UPDATE t SET a = coalesce($1, a), b = CASE WHEN $2 = 1 THEN NULL ELSE b END WHERE c IS $3 LIMIT $4' },
    { sql: 'SELECT ? || ?, ?::int, -?, x BETWEEN ? AND ?', pg: 'SELECT $1 || $2, $3::int, -$4, x BETWEEN $5 AND $6' },
    { sql: 'SELECT a$b FROM t WHERE x = ?', pg: 'SELECT a$b FROM t WHERE x = $1' },
  ])('$sql', ({ sql, pg }) => {
    expect(toNumberedPlaceholders(sql)).toBe(pg);
  });
});

describe('toNumberedPlaceholders leaves every other ? as it is', () => {
  it.each([
    { what: 'a string literal', sql: "SELECT 'why?' WHERE a = ?", pg: "SELECT 'why?' WHERE a = $1" },
    { what: "a string literal with '' inside", sql: "SELECT 'it''s ?', ?", pg: "SELECT 'it''s ?', $1" },
    { what: "an E'' string with \\' inside", sql: "SELECT E'\\'?', ?", pg: "SELECT E'\\'?', $1" },
    { what: 'a quoted identifier', sql: 'SELECT "a?b" FROM t WHERE x = ?', pg: 'SELECT "a?b" FROM t WHERE x = $1' },
    { what: 'a quoted identifier with "" inside', sql: 'SELECT "a""?" FROM t WHERE x = ?', pg: 'SELECT "a""?" FROM t WHERE x = $1' },
    { what: 'a -- comment', sql: 'SELECT 1 -- is it?\nWHERE a = ?', pg: 'SELECT 1 -- is it?\nWHERE a = $1' },
    { what: 'a nested /* */ comment', sql: '/* a? /* b? */ c? */ SELECT ?', pg: '/* a? /* b? */ c? */ SELECT $1' },
    { what: 'a $$ string', sql: 'SELECT $$a?b$$, ?', pg: 'SELECT $$a?b$$, $1' },
    { what: 'a $tag$ string holding $$', sql: 'SELECT $tag$?$$?$tag$, ?', pg: 'SELECT $tag$?$$?$tag$, $1' },
  ])('inside $what', ({ sql, pg }) => {
    expect(toNumberedPlaceholders(sql)).toBe(pg);
  });
});

describe('toNumberedPlaceholders refuses SQL it cannot rewrite safely', () => {
  it.each([
    { what: "jsonb's ? operator", sql: "SELECT * FROM t WHERE data ? 'k' AND a = ?", says: /follows a value.*jsonb \? operator.*jsonb_exists\(a, b\)/ },
    { what: "jsonb's ? operator after a bracket", sql: "SELECT * FROM t WHERE (data->'a') ? 'k'", says: /jsonb \? operator/ },
    { what: "jsonb's ?| operator", sql: "SELECT * FROM t WHERE data ?| array['a'] AND a = ?", says: /\?\| is PostgreSQL's jsonb operator.*jsonb_exists_any/ },
    { what: "jsonb's ?& operator", sql: "SELECT * FROM t WHERE data ?& array['a']", says: /\?& is PostgreSQL's jsonb operator.*jsonb_exists_all/ },
    { what: 'a string that is not closed', sql: "SELECT 'oops, ?", says: /string literal is not closed/ },
    { what: 'a comment that is not closed', sql: 'SELECT ? /* oops', says: /comment is not closed/ },
    { what: 'a dollar-quoted string that is not closed', sql: 'SELECT $x$ ?', says: /\$x\$… is not closed/ },
    { what: '? mixed with $n', sql: 'SELECT $1, ?', says: /mixes \? and \$n/ },
  ])('$what', ({ sql, says }) => {
    expect(() => toNumberedPlaceholders(sql)).toThrow(says);
  });
});

describe.each(BACKENDS)('a ? in a literal or a comment is text, not a parameter, on $name', (backend) => {
  it('reads back the literal and the one parameter', async () => {
    const dir = tempDir('saga-placeholders-');
    const opened = await backend.open(dir);
    try {
      const row = await opened.db.get<{ q: string; n: number }>(`SELECT 'why?' AS q, CAST(? AS INTEGER) AS n -- really?`, [7]);
      expect(row).toEqual({ q: 'why?', n: 7 });
    } finally {
      await opened.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
