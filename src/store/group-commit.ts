/**
 * What group commit (docs/guarantees.md, rule 12) shares between the databases: each has its own
 * write group (sqlite/write-group.ts, postgres/write-group.ts).
 *
 * How many sagas this process drives at a time, counted by the engine (`SagaStore.inFlight`): what
 * decides, for the saga log and the payment provider alike, between committing at once and waiting
 * for company (group commit, docs/guarantees.md rule 12). One counter per database connection pool,
 * shared by everything that commits through it.
 */
export interface SagasInFlight {
  enter(): void;
  leave(): void;
  readonly count: number;
  /**
   * Set by a server: sagas start from requests the engine cannot count before they are read. On
   * SQLite a lone saga's commits are synchronous, so without a turn of the event loop between them
   * no other request would ever be read while it runs, and none would share its commits: with
   * this set, a commit waits one turn even when its saga is alone.
   */
  expectCompany: boolean;
}

export function sagasInFlight(): SagasInFlight {
  let count = 0;
  return {
    enter: () => void (count += 1),
    leave: () => void (count -= 1),
    get count() {
      return count;
    },
    expectCompany: false,
  };
}

export interface WriteGroupOptions {
  /**
   * Crash points inside a shared transaction, for tests: called with `group:<k>:before` once all of
   * the k-th shared transaction's writes ran and before its COMMIT, and with `group:<k>:after` once
   * it committed and before any of its writers is told.
   */
  readonly point?: (name: string) => void;
}

