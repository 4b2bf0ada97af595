interface Waiter<V> {
  resolve(value: V): void;
  reject(error: unknown): void;
}

/**
 * Group reads, the way the actors group commits: at most one read per key is in flight, and the
 * requests for that key that arrive meanwhile share the NEXT read, one statement for all of them.
 * A request is never answered by a read that started before it arrived, so every answer is at
 * least as new as anything acknowledged before the request came in (a purchase answered 201, then
 * a read, sees it), exactly as with one statement per request. Under a flash sale, where
 * thousands of buyers poll the same option, this turns N statements into one per round trip.
 *
 * `read` is called with one key at a time; if it throws or rejects, every request that shared
 * that read gets the error (and only those).
 */
export class ReadCoalescer<K, V> {
  /** Per key with a read in flight: who waits for the next read (they arrived while it ran). */
  private readonly waiting = new Map<K, Array<Waiter<V>>>();
  private reads = 0;
  private requests = 0;

  constructor(private readonly read: (key: K) => Promise<V>) {}

  get(key: K): Promise<V> {
    this.requests++;
    const next = this.waiting.get(key);
    if (next) return new Promise<V>((resolve, reject) => next.push({ resolve, reject }));
    this.waiting.set(key, []);
    return new Promise<V>((resolve, reject) => this.run(key, [{ resolve, reject }]));
  }

  /** Statements run and requests answered so far (requests / reads = sharing factor). */
  get stats(): { reads: number; requests: number } {
    return { reads: this.reads, requests: this.requests };
  }

  private run(key: K, waiters: Array<Waiter<V>>): void {
    this.reads++;
    let pending: Promise<V>;
    try {
      pending = this.read(key);
    } catch (error) {
      pending = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    pending.then(
      (value) => {
        for (const waiter of waiters) waiter.resolve(value);
        this.next(key);
      },
      (error: unknown) => {
        for (const waiter of waiters) waiter.reject(error);
        this.next(key);
      },
    );
  }

  /** The read of `key` finished: the requests that arrived meanwhile get a read of their own. */
  private next(key: K): void {
    const waiters = this.waiting.get(key)!;
    if (waiters.length === 0) {
      this.waiting.delete(key);
      return;
    }
    this.waiting.set(key, []);
    this.run(key, waiters);
  }
}
