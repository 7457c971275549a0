/**
 * Tells the database's trouble (server stopped or restarting, connection lost, out of
 * connections, disk full, file unwritable) from a bug in saga: the first is said in one line,
 * the second with its stack. Pure: it looks only at the error's `code` and message, so it loads
 * neither `pg` nor better-sqlite3.
 */

/**
 * PostgreSQL SQLSTATE classes that are about the server or its surroundings, not our SQL:
 * 08 connection exception, 28 invalid authorization (a password changed under a running saga),
 * 3D invalid catalog name (the database was dropped), 53 insufficient resources (disk full, too
 * many connections), 55 object not in prerequisite state (database not accepting connections),
 * 57 operator intervention (admin shutdown, crash shutdown, cannot connect now), 58 system error
 * (I/O), XX internal error (data corrupted). Two single codes are about the setup, not our SQL:
 * 42501 insufficient privilege (the role may not create or write saga's tables) and 25006 read-only
 * transaction (the URL points at a hot standby).
 */
const PG_CLASSES = /^((08|28|3D|53|55|57|58|XX)[0-9A-Z]{3}|42501|25006)$/;

/** Node's socket errors: the server is unreachable or went away. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** pg's own connection errors, which carry no code. */
const PG_CONNECTION_MESSAGES = /Connection terminated|connection error and is not queryable|timeout exceeded when trying to connect|does not support SSL connections/i;

/** SQLite's: the file (unwritable or damaged), its disk, or another process holding the write lock past the busy timeout. */
const SQLITE_CODES = /^SQLITE_(READONLY|IOERR|FULL|CANTOPEN|PERM|BUSY|LOCKED|CORRUPT|NOTADB)/;

/** A short description of the database's trouble, or undefined when the error may be a bug. */
export function databaseTrouble(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  const message = err.message.split('\n')[0]!;
  if (typeof code === 'string') {
    if (PG_CLASSES.test(code) && 'severity' in err) return `${message} (SQLSTATE ${code})`;
    if (SOCKET_CODES.has(code)) return message;
    if (SQLITE_CODES.test(code)) return `${code}: ${message}`;
  }
  if (PG_CONNECTION_MESSAGES.test(message)) return message;
  return undefined;
}
