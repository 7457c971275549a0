/**
 * The sagas this server is driving for requests (answered or not: a `Prefer: respond-async`
 * checkout runs after its 202). Shutdown waits for them, bounded by the grace period; whatever
 * is still running then keeps its lease and is finished by recovery (the next start, or another
 * server or `saga recover` on the same database).
 */
export class InFlight {
  private readonly running = new Set<Promise<unknown>>();

  get size(): number {
    return this.running.size;
  }

  track<T>(work: Promise<T>): Promise<T> {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    void settled.then(() => this.running.delete(settled));
    return work;
  }

  /** Resolves true once every saga ended, false if `ms` passed first. */
  async drain(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    try {
      while (this.running.size > 0) {
        if ((await Promise.race([Promise.all([...this.running]).then(() => true as const), timeout])) === false) return false;
      }
      return true;
    } finally {
      clearTimeout(timer);
    }
  }
}
