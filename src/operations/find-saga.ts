import type { SagaRecord, SagaStore } from '../engine/store.js';
import { UsageError } from '../errors.js';
import { sagaIdsMatching } from '../store/read-models.js';
import type { SqlDatabase } from '../store/sql.js';

/** Where a saga is looked up: its log, and the database for the short-id search. */
export interface SagaSource {
  readonly store: Pick<SagaStore, 'getSaga'>;
  readonly db: SqlDatabase;
}

/**
 * The saga with the full id, else the one whose id starts or ends with what was given (6
 * characters or more: the console prints the last 8). Shared by every command and endpoint that
 * takes a saga id, so they all accept the same ids.
 */
export async function findSaga(source: SagaSource, raw: string): Promise<SagaRecord | undefined> {
  // A pasted id often brings a space with it.
  const given = raw.trim();
  const exact = await source.store.getSaga(given);
  if (exact === undefined && /^[0-9a-f-]{1,5}$/i.test(given)) {
    throw new UsageError(`${given} is too short to find a saga by: give at least 6 characters of its id (the 8 that \`saga list\` and the log lines show will do)`, 'invalid_value');
  }
  if (exact !== undefined || !/^[0-9a-f-]{6,36}$/i.test(given)) return exact;
  const matches = await sagaIdsMatching(source.db, given.toLowerCase());
  if (matches.length > 1) throw new UsageError(`${given} matches more than one saga: give more of the id (see \`saga list\`)`, 'ambiguous_saga_id');
  return matches[0] === undefined ? undefined : source.store.getSaga(matches[0]);
}

/** `findSaga`, or the `unknown_saga` error (exit 2) that says where to find ids. */
export async function requireSaga(source: SagaSource, given: string): Promise<SagaRecord> {
  const saga = await findSaga(source, given);
  if (saga === undefined) throw new UsageError(`no saga ${given} in ${source.db.label}: run \`saga list\` to see saga ids`, 'unknown_saga');
  return saga;
}
