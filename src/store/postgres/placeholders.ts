/**
 * Portable SQL marks parameters with `?`; PostgreSQL numbers them (`$1, $2, …`). Rewriting every
 * `?` would also rewrite one inside a string literal, a quoted identifier, a comment or a
 * dollar-quoted string, and PostgreSQL's jsonb operators `?`, `?|` and `?&`: so the text is read
 * as PostgreSQL lexes it, and only a `?` that stands where a value is expected becomes `$n`.
 * SQL that cannot be rewritten safely is refused, naming the reason: it is a bug in saga's SQL,
 * found by the first test that runs it.
 */

/** Words after which a value, so a `?` placeholder, may follow (a word not listed is a column or table name). */
const KEYWORDS = new Set([
  'all', 'and', 'any', 'array', 'as', 'between', 'both', 'by', 'case', 'cast', 'do', 'else', 'escape', 'exists',
  'first', 'for', 'from', 'having', 'ilike', 'in', 'into', 'is', 'leading', 'like', 'limit', 'next', 'not', 'offset', 'on', 'or', 'placing', 'return', 'returning', 'select', 'set', 'similar', 'some', 'symmetric', 'then', 'to',
  'trailing', 'using', 'values', 'when', 'where', 'with', 'zone',
]);

const IDENT_START = /[\p{L}_]/u;
const IDENT_PART = /[\p{L}\p{N}_$]/u;
const DOLLAR_TAG = /^\$(?:[\p{L}_][\p{L}\p{N}_]*)?\$/u;

/** A bug in saga's SQL, not the user's input: reported with its stack. */
function refuse(sql: string, at: number, why: string): never {
  throw new Error(`cannot number the ? placeholders of this SQL for PostgreSQL: ${why} (at offset ${at} of: ${sql.replace(/\s+/g, ' ').slice(0, 120)})`);
}

/** `?` to `$1, $2, …` for PostgreSQL, leaving every other `?` as it is; throws where that is ambiguous. */
export function toNumberedPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let i = 0;
  // Whether the last token was a value (a name, a literal, a closing bracket, a parameter):
  // a `?` after one is an operator (jsonb), not a parameter.
  let afterValue = false;
  let numbered = false;
  const fail = (why: string): never => refuse(sql, i, why);
  /** Copies sql[i, end) to the output and moves past it. */
  const take = (end: number) => {
    out += sql.slice(i, end);
    i = end;
  };
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (/\s/.test(c)) {
      take(i + 1);
    } else if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      take(eol === -1 ? sql.length : eol);
    } else if (c === '/' && next === '*') {
      take(endOfBlockComment(sql, i, fail));
    } else if (c === "'") {
      take(endOfQuoted(sql, i, "'", isEscapeString(sql, i), fail));
      afterValue = true;
    } else if (c === '"') {
      take(endOfQuoted(sql, i, '"', false, fail));
      afterValue = true;
    } else if (c === '$' && /[0-9]/.test(next ?? '')) {
      numbered = true;
      take(i + 1 + /^[0-9]*/.exec(sql.slice(i + 1))![0].length);
      afterValue = true;
    } else if (c === '$' && DOLLAR_TAG.test(sql.slice(i))) {
      const tag = DOLLAR_TAG.exec(sql.slice(i))![0];
      const close = sql.indexOf(tag, i + tag.length);
      if (close === -1) fail(`the dollar-quoted string ${tag}… is not closed`);
      take(close + tag.length);
      afterValue = true;
    } else if (IDENT_START.test(c)) {
      let end = i + 1;
      while (end < sql.length && IDENT_PART.test(sql[end]!)) end++;
      afterValue = !KEYWORDS.has(sql.slice(i, end).toLowerCase());
      take(end);
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(next ?? ''))) {
      const m = /^[0-9.]+(?:[eE][+-]?[0-9]+)?/.exec(sql.slice(i))!;
      take(i + m[0].length);
      afterValue = true;
    } else if (c === '?') {
      if (next === '&' || (next === '|' && sql[i + 2] !== '|')) fail(`?${next} is PostgreSQL's jsonb operator; write jsonb_exists_${next === '&' ? 'all' : 'any'}(a, b) instead`);
      if (afterValue) fail(`this ? follows a value, so it reads as PostgreSQL's jsonb ? operator; write jsonb_exists(a, b) instead`);
      n++;
      out += `$${n}`;
      i++;
      afterValue = true;
    } else {
      afterValue = c === ')' || c === ']';
      take(i + 1);
    }
  }
  if (numbered && n > 0) refuse(sql, 0, 'it mixes ? and $n parameters');
  return out;
}

/** E'…' (or e'…'): backslash escapes apply inside, so \' does not end the string. */
function isEscapeString(sql: string, quote: number): boolean {
  return /[eE]/.test(sql[quote - 1] ?? '') && !IDENT_PART.test(sql[quote - 2] ?? '');
}

/** The offset just past the quoted text starting at `start`: a doubled quote stands for itself. */
function endOfQuoted(sql: string, start: number, quote: string, backslashEscapes: boolean, fail: (why: string) => never): number {
  for (let i = start + 1; i < sql.length; i++) {
    const c = sql[i];
    if (backslashEscapes && c === '\\') {
      i++;
    } else if (c === quote) {
      if (sql[i + 1] !== quote) return i + 1;
      i++;
    }
  }
  return fail(quote === "'" ? 'a string literal is not closed' : 'a quoted identifier is not closed');
}

/** The offset just past the /* comment starting at `start`; PostgreSQL's block comments nest. */
function endOfBlockComment(sql: string, start: number, fail: (why: string) => never): number {
  let depth = 0;
  for (let i = start; i < sql.length - 1; i++) {
    if (sql[i] === '/' && sql[i + 1] === '*') {
      depth++;
      i++;
    } else if (sql[i] === '*' && sql[i + 1] === '/') {
      depth--;
      i++;
      if (depth === 0) return i + 1;
    }
  }
  return fail('a /* comment is not closed');
}
