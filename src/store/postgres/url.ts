import { UsageError } from '../../errors.js';

// Pure and free of `pg`: telling a URL from a path, and checking it, must not load `pg` (40 ms at start-up).

export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

/** Anything shaped `scheme://…` is a URL, never a file path (`mysql://u:p@h/db` is not a file name). */
export function isUrl(db: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(db);
}

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** A checked postgres:// URL, split into what `pg` is given and what saga handles itself. */
export interface PostgresTarget {
  /** The URL without the parameters saga translates itself (`sslmode`, `uselibpqcompat`, `options`). */
  readonly connectionString: string;
  /** libpq's `sslmode`, with libpq's meaning; saga turns it into pg's `ssl` option (connect.ts). */
  readonly sslMode: SslMode | undefined;
  /** `sslrootcert`, `sslcert`, `sslkey`: file paths, read when connecting. */
  readonly sslFiles: { readonly rootcert?: string; readonly cert?: string; readonly key?: string };
  /** The URL's own `options` (server settings), kept and sent after saga's own. */
  readonly options: string | undefined;
  /** The URL for messages and logs: password replaced by `***`. */
  readonly label: string;
  /** The password (decoded), so that messages from pg can be scrubbed of it; '' if none. */
  readonly password: string;
}

/**
 * Checks a postgres:// URL the way a user wrote it. Anything wrong with it is bad input (exit 2),
 * said with the password hidden.
 */
export function parsePostgresUrl(raw: string): PostgresTarget {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`the database URL ${redactUrl(raw)} is not a valid URL (check the port, and percent-encode special characters in the password): write postgres://user:password@host:5432/database`);
  }
  const params = u.searchParams;
  const sslMode = params.get('sslmode') ?? undefined;
  if (sslMode !== undefined && !(SSL_MODES as readonly string[]).includes(sslMode)) {
    throw new UsageError(`sslmode=${sslMode} in the database URL is not one of ${SSL_MODES.join(', ')}`);
  }
  const file = (name: string) => params.get(name) ?? undefined;
  const sslFiles = { rootcert: file('sslrootcert'), cert: file('sslcert'), key: file('sslkey') };
  const options = params.get('options') ?? undefined;
  for (const name of ['sslmode', 'uselibpqcompat', 'sslrootcert', 'sslcert', 'sslkey', 'options']) params.delete(name);
  let password = '';
  try {
    password = decodeURIComponent(u.password) || (params.get('password') ?? '');
  } catch {
    throw new UsageError(`the database URL ${redactUrl(raw)} has a badly percent-encoded password: encode special characters as %XX`);
  }
  return {
    connectionString: u.toString(),
    sslMode: sslMode as SslMode | undefined,
    sslFiles: Object.fromEntries(Object.entries(sslFiles).filter(([, v]) => v !== undefined)),
    options,
    label: redactUrl(raw),
    password,
  };
}

/**
 * The URL without its password (in the user part or a `password=` parameter), for messages and
 * logs. An unparseable URL is masked by its shape: everything between `user:` and the last `@`.
 */
export function redactUrl(url: string): string {
  if (!isUrl(url)) return url;
  const byShape = () => url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:).*@/i, '$1***@').replace(/([?&]password=)[^&]*/gi, '$1***');
  // Two `@`: maybe an unencoded `@` in the password, which a parser would split at the first one.
  if (url.indexOf('@') !== url.lastIndexOf('@')) return byShape();
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    if (u.searchParams.has('password')) u.searchParams.set('password', '***');
    return u.toString();
  } catch {
    return byShape();
  }
}

/** `text` with every occurrence of `password` hidden: for messages a library wrote, which may echo it. */
export function scrubPassword(text: string, password: string): string {
  // A password of a few characters would be starred inside ordinary words, garbling the message
  // and showing where its letters are. URLs in messages are redacted by redactUrl whatever the
  // password's length; this only catches a password quoted by another library's text.
  if (password.length < 4) return text;
  let out = text;
  for (const form of new Set([password, encodeURIComponent(password)])) out = out.replaceAll(form, '***');
  return out;
}

/**
 * `SAGA_PG_SCHEMA`: the PostgreSQL schema saga's tables live in. A plain lower-case identifier,
 * so it needs no quoting anywhere (search_path, advisory-lock keys, messages).
 */
export function parsePgSchema(text: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(text) || text.startsWith('pg_')) {
    throw new UsageError(`SAGA_PG_SCHEMA=${text} is not a usable schema name: use lower-case letters, digits and _, starting with a letter (not pg_…), at most 63 characters, e.g. saga`);
  }
  return text;
}
