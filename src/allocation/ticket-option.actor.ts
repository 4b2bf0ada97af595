import { randomUUID } from 'node:crypto';
import { NotFoundError, UnavailableError } from '../common/domain.error';
import {
  AllocationConflictError,
  InsufficientAllocationError,
  InsufficientAvailabilityForHoldError,
  ReservationStateError,
  TicketOptionNotFoundError,
} from './allocation.errors';
import { BatchPlan, PlannedItem, planBatch } from './batch-plan';
import {
  AllocationState,
  CommitOutcome,
  CommitRequest,
  remainingOf,
  TargetOutcome,
  TicketOptionStore,
} from './ticket-option.store';
import type { IdempotencyCompletion } from '../idempotency/idempotency-claim';
import { IdempotencyClaimLostError } from '../idempotency/idempotency.errors';

export { decideBatch } from './batch-plan';
export type { BatchDecision } from './batch-plan';

export interface PurchaseRequest {
  /** The purchase's id, when the caller chose it (e.g. to render the answer a key records). */
  id?: string;
  userId: string;
  quantity: number;
  /** Completed by the same commit that writes the purchase (docs/design.md, Idempotency). */
  idempotency?: IdempotencyCompletion;
}

export interface HoldRequest extends PurchaseRequest {
  ttlSeconds: number;
}

/** Confirms a reservation (read by the caller: its user and quantity) into a new purchase. */
export interface ConfirmRequest {
  reservationId: string;
  /** The new purchase's id, when the caller chose it. */
  purchaseId?: string;
  userId: string;
  quantity: number;
  idempotency?: IdempotencyCompletion;
}

/** What a buyer gets back once the purchase is committed. */
export interface PurchaseReceipt {
  id: string;
  ticketOptionId: string;
  userId: string;
  quantity: number;
  createdAt: Date;
  /** The reservation this purchase confirmed, if any. */
  reservationId?: string;
}

/** A committed hold, with its expiry from the database clock. */
export interface HoldReceipt {
  id: string;
  ticketOptionId: string;
  userId: string;
  quantity: number;
  expiresAt: Date;
  createdAt: Date;
}

/** Whether a release or cancellation changed anything (a second one does not). */
export interface ChangeReceipt {
  changed: boolean;
}

export interface ActorOptions {
  maxBatchSize: number;
  maxCommitAttempts: number;
  maxQueueDepth: number;
  /** Waits before retrying a lost version race; injectable so unit tests need no timers. */
  backoff?: (attempt: number) => Promise<void>;
  /** Told when the option turned out not to exist, so the registry forgets this actor at once. */
  onNotFound?: (actor: TicketOptionActor) => void;
  /** Told when a keyed request was refused because its claim was taken over (for the log). */
  onClaimLost?: (optionId: string, key: string) => void;
  /** Told after every successful commit: how many operations it wrote and on which attempt. */
  onCommitted?: (batchSize: number, attempt: number) => void;
}

/** Counters of one actor since it was created. */
export interface ActorStats {
  /** Successful commits (each wrote one batch). */
  commits: number;
  purchasesCommitted: number;
  /** Tickets sold by those purchases (sum of their quantities; confirmations included). */
  ticketsCommitted: number;
  /** Purchases refused for lack of tickets. */
  refusals: number;
  holdsCommitted: number;
  /** Holds refused for lack of tickets. */
  holdRefusals: number;
  holdsConfirmed: number;
  holdsReleased: number;
  /** Due holds this actor expired before deciding a refusal. */
  holdsExpired: number;
  purchasesCancelled: number;
  /** Reads of the newest state, with due holds expired, before a refusal. */
  refreshes: number;
  /**
   * Commits refused by their guard, i.e. races lost to another writer (`cas`: the version moved;
   * `guarded`: the capacity was taken). Each is followed by a reload and a retry, or a 503.
   */
  versionConflicts: number;
  /** Commits that found the row changed by another writer since our read (and still fitted). */
  foreignWritesSeen: number;
  /** Commits that failed for another reason (database error): the batch got 503. */
  failedCommits: number;
  /** Operations turned away because the queue was full. */
  overloaded: number;
  /** Operations refused because their Idempotency-Key claim was taken over meanwhile. */
  lostClaims: number;
}

export function emptyStats(): ActorStats {
  return {
    commits: 0,
    purchasesCommitted: 0,
    ticketsCommitted: 0,
    refusals: 0,
    holdsCommitted: 0,
    holdRefusals: 0,
    holdsConfirmed: 0,
    holdsReleased: 0,
    holdsExpired: 0,
    purchasesCancelled: 0,
    refreshes: 0,
    versionConflicts: 0,
    foreignWritesSeen: 0,
    failedCommits: 0,
    overloaded: 0,
    lostClaims: 0,
  };
}

/** One queued operation; ids of what it creates are chosen once, so retries write the same rows. */
type Operation =
  | { kind: 'purchase'; id: string; request: PurchaseRequest }
  | { kind: 'hold'; id: string; request: HoldRequest }
  | { kind: 'confirm'; id: string; request: ConfirmRequest }
  | { kind: 'release'; reservationId: string }
  | { kind: 'cancel'; purchaseId: string };

interface Pending {
  op: Operation;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

function planned(pending: Pending): PlannedItem {
  const { op } = pending;
  switch (op.kind) {
    case 'purchase':
    case 'hold':
      return { kind: 'take', quantity: op.request.quantity };
    case 'confirm':
      return { kind: 'target', target: op.request.reservationId };
    case 'release':
      return { kind: 'target', target: op.reservationId };
    case 'cancel':
      return { kind: 'target', target: op.purchaseId };
  }
}

/** The id an operation's idempotency claim is reported lost under (what it would have created). */
function createdId(op: Operation): string | undefined {
  return op.kind === 'purchase' || op.kind === 'hold' || op.kind === 'confirm' ? op.id : undefined;
}

/** The commit of one plan: rows to create and rows to change. */
function commitRequestOf(
  optionId: string,
  state: AllocationState,
  plan: BatchPlan<Pending>,
): CommitRequest {
  const request: Required<CommitRequest> = {
    optionId,
    expected: state,
    taken: plan.taken,
    purchases: [],
    holds: [],
    confirms: [],
    releases: [],
    cancels: [],
  };
  for (const { op } of [...plan.accepted, ...plan.targeted]) {
    if (op.kind === 'purchase') request.purchases.push({ ...op.request, id: op.id });
    else if (op.kind === 'hold') request.holds.push({ ...op.request, id: op.id });
    else if (op.kind === 'confirm') {
      const { reservationId, idempotency } = op.request;
      request.confirms.push({ reservationId, purchaseId: op.id, idempotency });
    } else if (op.kind === 'release') request.releases.push(op.reservationId);
    else request.cancels.push(op.purchaseId);
  }
  return request;
}

const defaultBackoff = (attempt: number): Promise<void> => {
  // Full jitter, capped: contenders spread out instead of colliding again in lock-step.
  const ceiling = Math.min(50, 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
};

/**
 * The single writer of one ticket option inside this process (an Orleans-style grain / Akka
 * entity). Purchases, holds, confirmations, releases and cancellations queue up; one drain loop lets
 * one commit run at a time, and each commit takes the whole queue (up to `maxBatchSize`): it
 * decides every request against the cached state, writes them in ONE guarded statement, and
 * answers them only after that statement committed. When another instance wrote first, the guard
 * fails: the actor reloads and re-decides. Nothing is refused for lack of tickets before the
 * newest state, with due holds expired, has been read (docs/design.md, Reservations).
 */
export class TicketOptionActor {
  private state: AllocationState | null = null;
  private readonly queue: Pending[] = [];
  private drainRun: Promise<void> | null = null;
  /** Answers of committed batches not delivered yet (see scheduleDrain). */
  private readonly answers: Array<() => void> = [];
  private lastUsed = Date.now();
  readonly stats: ActorStats = emptyStats();

  constructor(
    readonly optionId: string,
    private readonly store: TicketOptionStore,
    private readonly options: ActorOptions,
  ) {}

  /** Operations waiting for a commit. */
  get queueDepth(): number {
    return this.queue.length;
  }

  /** True while nothing is queued or being committed: the actor can be passivated. */
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
    return this.enqueue({ kind: 'purchase', id: request.id ?? randomUUID(), request });
  }

  /** Queues a hold of `quantity` tickets for `ttlSeconds` (from the commit's database time). */
  hold(request: HoldRequest): Promise<HoldReceipt> {
    return this.enqueue({ kind: 'hold', id: request.id ?? randomUUID(), request });
  }

  /** Queues the confirmation of a reservation of this option; never refused for availability. */
  confirm(request: ConfirmRequest): Promise<PurchaseReceipt> {
    return this.enqueue({ kind: 'confirm', id: request.purchaseId ?? randomUUID(), request });
  }

  /** Queues the release of a reservation of this option. */
  release(reservationId: string): Promise<ChangeReceipt> {
    return this.enqueue({ kind: 'release', reservationId });
  }

  /** Queues the cancellation of a purchase of this option. */
  cancel(purchaseId: string): Promise<ChangeReceipt> {
    return this.enqueue({ kind: 'cancel', purchaseId });
  }

  /** Resolves once everything queued so far has been answered. */
  async whenIdle(): Promise<void> {
    while (this.drainRun) await this.drainRun;
  }

  /** Forgets the cached state; the next commit reloads it (used on passivation and after faults). */
  deactivate(): void {
    this.state = null;
  }

  private enqueue<R>(op: Operation): Promise<R> {
    this.lastUsed = Date.now();
    if (this.queue.length >= this.options.maxQueueDepth) {
      this.stats.overloaded++;
      return Promise.reject(
        new UnavailableError(
          'Too many requests are waiting for this ticket option; retry shortly.',
        ),
      );
    }
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve, reject });
      this.scheduleDrain();
    });
  }

  /** Starts the drain loop unless it runs: one loop per actor, so one commit at a time. */
  private scheduleDrain(): void {
    if (this.drainRun) return;
    this.drainRun = this.drain();
  }

  private async drain(): Promise<void> {
    // Operations queued in this same turn join the first batch.
    await Promise.resolve();
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.options.maxBatchSize);
        const committing = this.commit(batch);
        // The previous commit's answers go out once this one is on its way to the database:
        // writing them (serialising, syscalls) overlaps the next statement instead of delaying it.
        this.answerSoon();
        await committing;
      }
    } finally {
      this.answerNow();
      // Cleared in the same tick as the empty-queue check, so nothing is ever stranded.
      this.drainRun = null;
    }
  }

  /**
   * The only writer. Never throws: every pending operation of the batch is settled (or deferred
   * to the next commit). Each attempt plans the batch against the cached state (loaded if
   * missing; refreshed before any refusal) and writes it in one commit; a lost race reloads and
   * re-decides, a lost idempotency claim refuses that operation alone and re-decides the others.
   */
  private async commit(batch: Pending[]): Promise<void> {
    let pending = batch;
    let refreshed = false;
    for (let attempt = 1; pending.length > 0;) {
      // Synchronous while the state is cached: the statement is submitted before anything else
      // runs (see scheduleDrain).
      const state = this.state ?? (await this.activeState(pending));
      if (state === null) return;
      const plan = planBatch(remainingOf(state), pending, planned);
      if (plan.refused.length > 0 && !refreshed) {
        if (!(await this.refreshState(pending))) return;
        refreshed = true;
        continue;
      }
      if (plan.deferred.length > 0) {
        // They arrived before whatever is queued now: first in the next commit.
        this.queue.unshift(...plan.deferred);
        pending = pending.filter((item) => !plan.deferred.includes(item));
      }
      if (plan.accepted.length === 0 && plan.targeted.length === 0) {
        this.refuse(plan.refused);
        return;
      }
      let outcome: CommitOutcome;
      try {
        outcome = await this.store.commit(commitRequestOf(this.optionId, state, plan));
      } catch (error) {
        // The outcome may be unknown (e.g. connection lost around COMMIT): reload before deciding again.
        this.state = null;
        this.failAll(pending, error);
        return;
      }
      if (outcome.committed) {
        this.settle(state, plan, outcome, attempt);
        return;
      }
      if (outcome.lostClaims.length > 0) {
        // Nothing was written for this option: only the operations whose claim was lost fail.
        pending = this.refuseLostClaims(pending, outcome.lostClaims);
        continue;
      }
      this.stats.versionConflicts++;
      this.state = null;
      refreshed = false;
      if (attempt >= this.options.maxCommitAttempts) {
        const conflict = new AllocationConflictError(attempt);
        for (const item of pending) item.reject(conflict);
        return;
      }
      await (this.options.backoff ?? defaultBackoff)(attempt);
      attempt++;
    }
  }

  /** The cached state, or the stored one; null once the batch has been settled (error, not found). */
  private async activeState(batch: Pending[]): Promise<AllocationState | null> {
    if (this.state) return this.state;
    let state: AllocationState | null;
    try {
      state = await this.store.load(this.optionId);
    } catch (error) {
      this.failAll(batch, error);
      return null;
    }
    if (state === null) return this.notFound(batch);
    this.state = state;
    return state;
  }

  /** Replaces the cached state by the newest one, due holds expired; false once the batch is settled. */
  private async refreshState(batch: Pending[]): Promise<boolean> {
    this.stats.refreshes++;
    try {
      const fresh = await this.store.refresh(this.optionId);
      if (fresh === null) return this.notFound(batch) !== null;
      this.stats.holdsExpired += fresh.expiredHolds;
      const { allocation, purchased, held, version } = fresh;
      this.state = { allocation, purchased, held, version };
      return true;
    } catch (error) {
      this.state = null;
      this.failAll(batch, error);
      return false;
    }
  }

  private notFound(batch: Pending[]): null {
    const notFound = new TicketOptionNotFoundError(this.optionId);
    for (const pending of batch) pending.reject(notFound);
    this.options.onNotFound?.(this);
    return null;
  }

  /** Answers a committed batch: receipts for what was written, justified refusals for the rest. */
  private settle(
    state: AllocationState,
    plan: BatchPlan<Pending>,
    outcome: Extract<CommitOutcome, { committed: true }>,
    attempt: number,
  ): void {
    if (outcome.version !== state.version + 1) this.stats.foreignWritesSeen++;
    // The row as this commit left it: foreign commits since our read are included.
    const { purchased, held, version } = outcome;
    this.state = { allocation: state.allocation, purchased, held, version };
    this.stats.commits++;
    this.options.onCommitted?.(plan.accepted.length + plan.targeted.length, attempt);
    // Committed: the answers are decided; they are delivered by scheduleDrain.
    this.answers.push(() => {
      for (const pending of plan.accepted) this.settleTaken(pending, outcome);
      for (const pending of plan.targeted) {
        const item = planned(pending);
        const result = item.kind === 'target' ? outcome.targets.get(item.target) : undefined;
        this.settleTargeted(pending, result ?? 'missing', outcome.createdAt);
      }
      this.refuse(plan.refused);
    });
  }

  /** Delivers the answers of committed batches after the statement just submitted is sent. */
  private answerSoon(): void {
    if (this.answers.length === 0) return;
    // After the store's own setImmediate (which sends the statement), scheduled just before;
    // in commit order, whoever delivers first (this, or answerNow when the drain ends).
    setImmediate(() => this.answerNow());
  }

  private answerNow(): void {
    for (const answer of this.answers.splice(0)) answer();
  }

  private settleTaken(pending: Pending, outcome: Extract<CommitOutcome, { committed: true }>) {
    const { op } = pending;
    if (op.kind === 'purchase') {
      this.stats.purchasesCommitted++;
      this.stats.ticketsCommitted += op.request.quantity;
      pending.resolve({
        id: op.id,
        ticketOptionId: this.optionId,
        userId: op.request.userId,
        quantity: op.request.quantity,
        createdAt: outcome.createdAt,
      } satisfies PurchaseReceipt);
    } else if (op.kind === 'hold') {
      const times = outcome.holds.get(op.id);
      if (!times) return pending.reject(new Error(`hold ${op.id} was not written by its commit`));
      this.stats.holdsCommitted++;
      pending.resolve({
        id: op.id,
        ticketOptionId: this.optionId,
        userId: op.request.userId,
        quantity: op.request.quantity,
        ...times,
      } satisfies HoldReceipt);
    }
  }

  private settleTargeted(pending: Pending, result: TargetOutcome, createdAt: Date): void {
    const { op } = pending;
    if (result === 'missing') {
      return pending.reject(new NotFoundError('The resource does not exist (any more).'));
    }
    if (op.kind === 'confirm') {
      const { reservationId, userId, quantity } = op.request;
      if (result !== 'changed') {
        const state = result === 'unchanged' ? 'expired' : result;
        return pending.reject(new ReservationStateError(state, reservationId));
      }
      this.stats.holdsConfirmed++;
      this.stats.purchasesCommitted++;
      this.stats.ticketsCommitted += quantity;
      pending.resolve({
        id: op.id,
        ticketOptionId: this.optionId,
        userId,
        quantity,
        reservationId,
        createdAt,
      } satisfies PurchaseReceipt);
    } else if (op.kind === 'release') {
      if (result === 'confirmed') {
        return pending.reject(new ReservationStateError('confirmed', op.reservationId, undefined));
      }
      if (result === 'changed') this.stats.holdsReleased++;
      pending.resolve({ changed: result === 'changed' } satisfies ChangeReceipt);
    } else if (op.kind === 'cancel') {
      if (result === 'changed') this.stats.purchasesCancelled++;
      pending.resolve({ changed: result === 'changed' } satisfies ChangeReceipt);
    }
  }

  /** Refusals are justified by the state they were decided against: the newest, due holds expired. */
  private refuse(refused: BatchPlan<Pending>['refused']): void {
    for (const { item, remaining } of refused) {
      const { op } = item;
      if (op.kind === 'hold') {
        this.stats.holdRefusals++;
        item.reject(new InsufficientAvailabilityForHoldError(op.request.quantity, remaining));
      } else if (op.kind === 'purchase') {
        this.stats.refusals++;
        item.reject(new InsufficientAllocationError(op.request.quantity, remaining));
      }
    }
  }

  /** Rejects the operations whose claim was lost; returns the rest of the batch, to re-decide. */
  private refuseLostClaims(batch: Pending[], lostIds: string[]): Pending[] {
    const lost = new Set(lostIds);
    const kept: Pending[] = [];
    for (const pending of batch) {
      const id = createdId(pending.op);
      if (id === undefined || !lost.has(id)) {
        kept.push(pending);
        continue;
      }
      const key = 'request' in pending.op ? (pending.op.request.idempotency?.key ?? '') : '';
      this.stats.lostClaims++;
      this.options.onClaimLost?.(this.optionId, key);
      pending.reject(new IdempotencyClaimLostError(key));
    }
    return kept;
  }

  private failAll(batch: Pending[], cause: unknown): void {
    this.stats.failedCommits++;
    const error = new UnavailableError(
      'The request could not be recorded because the database is unavailable; retry.',
      1,
      { cause },
    );
    for (const pending of batch) pending.reject(error);
  }
}
