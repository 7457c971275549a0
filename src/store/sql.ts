import type { SqlWrite } from '../engine/definition.js';

/**
 * The database as the commands and the checkout domain see it, whichever engine is behind it.
 * Queries are portable SQL with `?` placeholders; where the dialects differ, `dialect` says which
 * one to write. There is no callback-style transaction: a write that must be atomic is a `batch`
 * of statements (data in, one transaction), so no transaction is ever held across an await.
 */
export type Dialect = 'sqlite' | 'postgres';

/** `full` makes every commit durable; `normal` survives a process crash but may lose the last commits on power loss. */
export type Durability = 'full' | 'normal';

export interface SqlDatabase {
  readonly dialect: Dialect;
  /** What to call it in messages: a path, or a URL without its password. */
  readonly label: string;
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** All statements in one transaction that takes the write lock up front; changes per statement. */
  batch(writes: readonly SqlWrite[]): Promise<number[]>;
  /** One statement on its own, outside any transaction (VACUUM may not run inside one); rows changed. */
  run(sql: string): Promise<number>;
  close(): Promise<void>;
}

/** The saga id at the front of an idempotency key (`<sagaId>:<step>…`), as SQL. */
export function sagaIdOfKey(dialect: Dialect, column: string): string {
  return dialect === 'postgres' ? `split_part(${column}, ':', 1)` : `substr(${column}, 1, instr(${column}, ':') - 1)`;
}

/** Transactions committed by the saga log and by the payment provider; round trips to the server, where there is one. */
export interface WriteCounters {
  readonly commits: number;
  readonly providerCommits: number;
  readonly roundTrips?: number;
}
