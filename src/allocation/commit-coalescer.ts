export interface CoalescerOptions<I> {
  /** Writes allowed in flight at once; submissions wait (and coalesce) beyond it. */
  maxInFlight: number;
  /**
   * While a write runs, another starts only once the latest one has run this long (ms): a quick
   * write lets what arrives meanwhile grow into one bigger next write, and a slow one (e.g. waiting
   * for a row lock another instance holds) does not hold up every other option for longer than
   * this. 0: start writes as long as fewer than `maxInFlight` run.
   */
  slowWriteMs?: number;
  /** The clock `slowWriteMs` is measured with (tests give a fake one). */
  now?: () => number;
  /** Upper bound on the summed weight of one write (e.g. rows of one statement). */
  maxWeightPerWrite: number;
  weight(item: I): number;
}

interface Submission<I, O> {
  item: I;
  resolve(outcome: O): void;
  reject(error: unknown): void;
}

/**
 * Group commit across ticket options. Each actor commits one batch at a time, but with many
 * options each batch is tiny (one purchase per option): written one by one they cost one round
 * trip and one WAL flush each. The coalescer turns the batches submitted in the same event-loop
 * turn, and those that arrive while writes are running, into ONE write: while one runs, the next
 * starts only once the latest has run `slowWriteMs`, and never more than `maxInFlight` at once.
 *
 * `write` returns one outcome per item, in order; if it throws, every item of that write gets the
 * error (and only those: other writes are independent).
 */
export class CommitCoalescer<I, O> {
  private pending: Array<Submission<I, O>> = [];
  private inFlight = 0;
  private scheduled = false;
  /** When the latest write started, and the timer that starts the next one once it is slow. */
  private lastStart = 0;
  private slowTimer: NodeJS.Timeout | undefined;
  private writes = 0;
  private itemsWritten = 0;

  constructor(
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly options: CoalescerOptions<I>,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.scheduled && this.inFlight < this.options.maxInFlight) {
        // Let every batch submitted in this event-loop turn join the same write.
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  /** Writes so far and the items they carried (items / writes = coalescing factor). */
  get stats(): { writes: number; items: number; waiting: number; inFlight: number } {
    return {
      writes: this.writes,
      items: this.itemsWritten,
      waiting: this.pending.length,
      inFlight: this.inFlight,
    };
  }

  private flush(): void {
    const { slowWriteMs = 0, now = Date.now } = this.options;
    while (this.pending.length > 0 && this.inFlight < this.options.maxInFlight) {
      if (this.inFlight > 0 && slowWriteMs > 0) {
        const wait = this.lastStart + slowWriteMs - now();
        if (wait > 0) {
          this.flushAfter(wait);
          return;
        }
      }
      const chunk = this.takeChunk();
      this.lastStart = now();
      this.inFlight++;
      this.writes++;
      this.itemsWritten += chunk.length;
      void this.run(chunk);
    }
  }

  /** Flushes in `ms` unless a timer is already set (a finished write flushes sooner anyway). */
  private flushAfter(ms: number): void {
    if (this.slowTimer) return;
    this.slowTimer = setTimeout(() => {
      this.slowTimer = undefined;
      this.flush();
    }, ms);
    // The running writes keep the process alive; their end flushes what waits.
    this.slowTimer.unref();
  }

  private takeChunk(): Array<Submission<I, O>> {
    let weight = 0;
    let count = 0;
    for (const submission of this.pending) {
      const next = this.options.weight(submission.item);
      // Always take at least one item, whatever its weight.
      if (count > 0 && weight + next > this.options.maxWeightPerWrite) break;
      weight += next;
      count++;
    }
    return this.pending.splice(0, count);
  }

  private async run(chunk: Array<Submission<I, O>>): Promise<void> {
    try {
      const outcomes = await this.write(chunk.map((submission) => submission.item));
      if (outcomes.length !== chunk.length) {
        throw new Error(`write answered ${outcomes.length} of ${chunk.length} items`);
      }
      chunk.forEach((submission, index) => submission.resolve(outcomes[index]));
    } catch (error) {
      for (const submission of chunk) submission.reject(error);
    } finally {
      this.inFlight--;
      // Whatever queued meanwhile has waited a whole write already: send it at once.
      this.flush();
    }
  }
}
