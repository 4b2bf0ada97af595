import { Mutex } from 'async-mutex';
import { randomUUID } from 'node:crypto';
import { UnavailableError } from '../common/domain.error';
import {
  AllocationConflictError,
  InsufficientAllocationError,
  TicketOptionNotFoundError,
} from './allocation.errors';
import {
  AcceptedPurchase,
  AllocationState,
  CommitOutcome,
  TicketOptionStore,
} from './ticket-option.store';
import type { IdempotencyCompletion } from '../idempotency/idempotency-claim';
import { IdempotencyClaimLostError } from '../idempotency/idempotency.errors';

export interface PurchaseRequest {
  /** The purchase's id, when the caller chose it (e.g. to render the answer a key records). */
  id?: string;
  userId: string;
  quantity: number;
  /** Completed by the same commit that writes the purchase (docs/design.md, Idempotency). */
  idempotency?: IdempotencyCompletion;
}

/** What a buyer gets back once the purchase is committed. */
export interface PurchaseReceipt {
  id: string;
  ticketOptionId: string;
  userId: string;
  quantity: number;
  createdAt: Date;
}

export interface ActorOptions {
  maxBatchSize: number;
  maxCommitAttempts: number;
  maxQueueDepth: number;
  /** Waits before retrying a lost version race; injectable so unit tests need no timers. */
  backoff?: (attempt: number) => Promise<void>;
  /** Told when the option turned out not to exist, so the registry forgets this actor at once. */
  onNotFound?: (actor: TicketOptionActor) => void;
  /** Told when a keyed purchase was refused because its claim was taken over (for the log). */
  onClaimLost?: (optionId: string, key: string) => void;
  /** Told after every successful commit: how many purchases it wrote and on which attempt. */
  onCommitted?: (batchSize: number, attempt: number) => void;
}

/** Counters of one actor since it was created. */
export interface ActorStats {
  /** Successful commits (each wrote one batch). */
  commits: number;
  purchasesCommitted: number;
  /** Tickets sold by those purchases (sum of their quantities). */
  ticketsCommitted: number;
  refusals: number;
  /**
   * Commits refused by their guard, i.e. races lost to another writer (`cas`: the version moved;
   * `guarded`: the capacity was taken). Each is followed by a reload and a retry, or a 503.
   */
  versionConflicts: number;
  /** Commits that found the row changed by another writer since our read (and still fitted). */
  foreignWritesSeen: number;
  /** Commits that failed for another reason (database error): the batch got 503. */
  failedCommits: number;
  /** Purchases turned away because the queue was full. */
  overloaded: number;
  /** Purchases refused because their Idempotency-Key claim was taken over meanwhile. */
  lostClaims: number;
}

export function emptyStats(): ActorStats {
  return {
    commits: 0,
    purchasesCommitted: 0,
    ticketsCommitted: 0,
    refusals: 0,
    versionConflicts: 0,
    foreignWritesSeen: 0,
    failedCommits: 0,
    overloaded: 0,
    lostClaims: 0,
  };
}

interface PendingPurchase {
  request: PurchaseRequest;
  resolve(receipt: PurchaseReceipt): void;
  reject(error: Error): void;
}

/** A pending purchase as the decision sees it. */
interface Decided {
  pending: PendingPurchase;
  quantity: number;
}

function acceptedPurchase(request: PurchaseRequest): AcceptedPurchase {
  return {
    id: request.id ?? randomUUID(),
    userId: request.userId,
    quantity: request.quantity,
    idempotency: request.idempotency,
  };
}

/** The outcome of deciding a batch in arrival order against a remainder (first fit). */
export interface BatchDecision<T> {
  accepted: T[];
  refused: Array<{ item: T; remaining: number }>;
  /** Tickets taken by the accepted requests. */
  taken: number;
}

/**
 * First fit, in arrival order: each request is accepted if it fits in what is left, else refused.
 * A large refused request does not block a later small one.
 */
export function decideBatch<T extends { quantity: number }>(
  remaining: number,
  requests: T[],
): BatchDecision<T> {
  const accepted: T[] = [];
  const refused: BatchDecision<T>['refused'] = [];
  let left = remaining;
  for (const request of requests) {
    if (request.quantity <= left) {
      accepted.push(request);
      left -= request.quantity;
    } else {
      refused.push({ item: request, remaining: left });
    }
  }
  return { accepted, refused, taken: remaining - left };
}

const defaultBackoff = (attempt: number): Promise<void> => {
  // Full jitter, capped: contenders spread out instead of colliding again in lock-step.
  const ceiling = Math.min(50, 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
};

/**
 * The single writer of one ticket option inside this process (an Orleans-style grain / Akka
 * entity). Purchases queue up; the mutex lets one commit run at a time, and each commit takes the
 * whole queue (up to `maxBatchSize`): it decides every request against the cached state, writes
 * them in ONE version-checked statement, and answers them only after that statement committed.
 * When another instance wrote first, the version check fails: the actor reloads and re-decides.
 */
export class TicketOptionActor {
  private state: AllocationState | null = null;
  private readonly queue: PendingPurchase[] = [];
  private readonly mutex = new Mutex();
  private drainRun: Promise<void> | null = null;
  private lastUsed = Date.now();
  readonly stats: ActorStats = emptyStats();

  constructor(
    readonly optionId: string,
    private readonly store: TicketOptionStore,
    private readonly options: ActorOptions,
  ) {}

  /** Purchases waiting for a commit. */
  get queueDepth(): number {
    return this.queue.length;
  }

  /** True while no purchase is queued or being committed: the actor can be passivated. */
  get isIdle(): boolean {
    return this.drainRun === null && this.queue.length === 0;
  }

  get lastUsedAt(): number {
    return this.lastUsed;
  }

  /** The cached state, if activated (for reads and tests; may lag behind other instances). */
  get cachedState(): Readonly<AllocationState> | null {
    return this.state;
  }

  /** Queues a purchase; settles after the commit that includes it (or with its refusal). */
  purchase(request: PurchaseRequest): Promise<PurchaseReceipt> {
    this.lastUsed = Date.now();
    if (this.queue.length >= this.options.maxQueueDepth) {
      this.stats.overloaded++;
      return Promise.reject(
        new UnavailableError(
          'Too many purchases are waiting for this ticket option; retry shortly.',
        ),
      );
    }
    return new Promise<PurchaseReceipt>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.scheduleDrain();
    });
  }

  /** Resolves once everything queued so far has been answered. */
  async whenIdle(): Promise<void> {
    while (this.drainRun) await this.drainRun;
  }

  /** Forgets the cached state; the next commit reloads it (used on passivation and after faults). */
  deactivate(): void {
    this.state = null;
  }

  private scheduleDrain(): void {
    if (this.drainRun) return;
    this.drainRun = this.mutex.runExclusive(async () => {
      try {
        while (this.queue.length > 0) {
          const batch = this.queue.splice(0, this.options.maxBatchSize);
          await this.commit(batch);
        }
      } finally {
        // Cleared in the same tick as the empty-queue check, so no purchase is ever stranded.
        this.drainRun = null;
      }
    });
  }

  /**
   * The only writer. Never throws: every pending purchase of the batch is settled. Each attempt
   * decides the batch against the cached state (loaded if missing) and writes the accepted
   * purchases in one commit; a lost race reloads and re-decides, a lost idempotency claim refuses
   * that purchase alone and re-decides the others.
   */
  private async commit(batch: PendingPurchase[]): Promise<void> {
    let pending = batch;
    for (let attempt = 1; pending.length > 0; attempt++) {
      const state = await this.activeState(pending);
      if (state === null) return;
      const decision = decideBatch(
        state.allocation - state.purchased,
        pending.map((item) => ({ pending: item, quantity: item.request.quantity })),
      );
      const accepted = decision.accepted.map(({ pending: item }) => acceptedPurchase(item.request));
      if (accepted.length === 0) {
        this.refuse(decision.refused);
        return;
      }
      let outcome: CommitOutcome;
      try {
        outcome = await this.store.commit({
          optionId: this.optionId,
          expected: state,
          taken: decision.taken,
          purchases: accepted,
        });
      } catch (error) {
        // The outcome may be unknown (e.g. connection lost around COMMIT): reload before deciding again.
        this.state = null;
        this.failAll(pending, error);
        return;
      }
      if (outcome.committed) {
        this.settle(state, decision, accepted, outcome, attempt);
        return;
      }
      if (outcome.lostClaims.length > 0) {
        // Nothing was written for this option: only the purchases whose claim was lost fail.
        pending = this.refuseLostClaims(pending, decision.accepted, accepted, outcome.lostClaims);
        continue;
      }
      this.stats.versionConflicts++;
      this.state = null;
      if (attempt >= this.options.maxCommitAttempts) {
        const conflict = new AllocationConflictError(attempt);
        for (const item of pending) item.reject(conflict);
        return;
      }
      await (this.options.backoff ?? defaultBackoff)(attempt);
    }
  }

  /** The cached state, or the stored one; null once the batch has been settled (error, not found). */
  private async activeState(batch: PendingPurchase[]): Promise<AllocationState | null> {
    if (this.state) return this.state;
    let state: AllocationState | null;
    try {
      state = await this.store.load(this.optionId);
    } catch (error) {
      this.failAll(batch, error);
      return null;
    }
    if (state === null) {
      const notFound = new TicketOptionNotFoundError(this.optionId);
      for (const pending of batch) pending.reject(notFound);
      this.options.onNotFound?.(this);
      return null;
    }
    this.state = state;
    return state;
  }

  /** Answers a committed batch: 201s for the accepted, justified refusals for the rest. */
  private settle(
    state: AllocationState,
    decision: BatchDecision<Decided>,
    accepted: AcceptedPurchase[],
    outcome: Extract<CommitOutcome, { committed: true }>,
    attempt: number,
  ): void {
    if (outcome.version !== state.version + 1) this.stats.foreignWritesSeen++;
    // The row as this commit left it: foreign commits since our read are included.
    this.state = {
      allocation: state.allocation,
      purchased: outcome.purchased,
      version: outcome.version,
    };
    this.stats.commits++;
    this.stats.purchasesCommitted += accepted.length;
    this.stats.ticketsCommitted += decision.taken;
    this.options.onCommitted?.(accepted.length, attempt);
    decision.accepted.forEach(({ pending }, index) => {
      pending.resolve({
        id: accepted[index].id,
        ticketOptionId: this.optionId,
        userId: accepted[index].userId,
        quantity: accepted[index].quantity,
        createdAt: outcome.createdAt,
      });
    });
    this.refuse(decision.refused);
  }

  /** Refusals are justified by the state they were decided against: availability only shrinks. */
  private refuse(refused: BatchDecision<Decided>['refused']): void {
    this.stats.refusals += refused.length;
    for (const { item, remaining } of refused) {
      item.pending.reject(new InsufficientAllocationError(item.quantity, remaining));
    }
  }

  /** Rejects the purchases whose claim was lost; returns the rest of the batch, to re-decide. */
  private refuseLostClaims(
    batch: PendingPurchase[],
    decided: Decided[],
    accepted: AcceptedPurchase[],
    lostIds: string[],
  ): PendingPurchase[] {
    const lost = new Set<PendingPurchase>();
    accepted.forEach((purchase, index) => {
      if (lostIds.includes(purchase.id)) lost.add(decided[index].pending);
    });
    for (const pending of lost) {
      const key = pending.request.idempotency?.key ?? '';
      this.stats.lostClaims++;
      this.options.onClaimLost?.(this.optionId, key);
      pending.reject(new IdempotencyClaimLostError(key));
    }
    return batch.filter((pending) => !lost.has(pending));
  }

  private failAll(batch: PendingPurchase[], cause: unknown): void {
    this.stats.failedCommits++;
    const error = new UnavailableError(
      'The purchase could not be recorded because the database is unavailable; retry.',
      1,
      { cause },
    );
    for (const pending of batch) pending.reject(error);
  }
}
