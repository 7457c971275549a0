import type { FaultInjector } from './faults.js';
import type { SagaStore } from './store.js';

/**
 * Crash points around every commit of the saga log: `commit:<n>:before` (the n-th commit (batch) of
 * this process is not applied) and `commit:<n>:after` (it is durable, and the process dies before
 * it learns so). Counting from 1 over the whole run, they name every boundary at which a process
 * can be killed, whatever the step; `saga explore` enumerates them and `SAGA_CRASH_AT` replays one.
 * The store is wrapped only when such a point is armed, so a normal run pays nothing.
 */
export function withCommitPoints(store: SagaStore, faults: FaultInjector): SagaStore {
  if (!faults.armedAny((name) => name.startsWith('commit:'))) return store;
  let n = 0;
  return {
    ...store,
    commit: async (batch) => {
      n += 1;
      faults.point(`commit:${n}:before`);
      const result = await store.commit(batch);
      faults.point(`commit:${n}:after`);
      return result;
    },
  };
}

/** Counts the commits a store makes (the fault space of a run is measured with it). */
export function countingCommits(store: SagaStore): { store: SagaStore; count(): number } {
  let n = 0;
  return {
    store: { ...store, commit: (batch) => ((n += 1), store.commit(batch)) },
    count: () => n,
  };
}
