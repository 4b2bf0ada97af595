import { UnavailableError } from '../common/domain.error';
import {
  AllocationConflictError,
  InsufficientAllocationError,
  InsufficientAvailabilityForHoldError,
  ReservationStateError,
  TicketOptionNotFoundError,
} from './allocation.errors';
import { IdempotencyClaimLostError } from '../idempotency/idempotency.errors';
import { decideBatch, TicketOptionActor } from './ticket-option.actor';
import {
  AcceptedPurchase,
  AllocationState,
  CommitMode,
  CommitOutcome,
  CommitRequest,
  RefreshedState,
  TargetOutcome,
  TicketOptionStore,
} from './ticket-option.store';

/** A reservation row of the fake store; `expiresAt` on the fake clock (ms). */
interface FakeReservation {
  quantity: number;
  status: 'held' | 'confirmed' | 'released' | 'expired';
  expiresAt: number;
}

const USER = '6f1f7b5e-8c1e-4a52-9d8e-0a4f6f7c1b11';

/** An in-memory store with the same guards as the PostgreSQL one (`cas` or `guarded`). */
class FakeStore implements TicketOptionStore {
  state: AllocationState | null;
  readonly rows: AcceptedPurchase[] = [];
  readonly commits: AcceptedPurchase[][] = [];
  loads = 0;
  refreshes = 0;
  /** The database clock (ms): what expiry is decided against, never the process's clock. */
  now = 1_000_000;
  readonly reservations = new Map<string, FakeReservation>();
  readonly purchases = new Map<string, { quantity: number; status: 'completed' | 'cancelled' }>();
  failNextCommit: Error | null = null;
  /** Idempotency keys whose claim another request has taken over: their purchases are "lost". */
  readonly takenOverKeys = new Set<string>();
  /** Runs just before a commit is checked: lets a test play "another instance wrote first". */
  beforeCommit: (() => void) | null = null;
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;
  private signalEntered: (() => void) | null = null;
  /** Resolves when a commit reaches the held gate. */
  entered: Promise<void> = Promise.resolve();

  constructor(
    state: AllocationState | null,
    private readonly mode: CommitMode = 'cas',
  ) {
    this.state = state ? { ...state } : null;
  }

  /** Holds commits until `release()`, so that purchases pile up in the actor's queue. */
  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
    this.entered = new Promise((resolve) => (this.signalEntered = resolve));
  }

  release(): void {
    this.openGate?.();
    this.gate = null;
  }

  load(): Promise<AllocationState | null> {
    this.loads++;
    return Promise.resolve(this.state ? { ...this.state } : null);
  }

  /** Expires the due holds (as the refresh statement does) and returns the newest state. */
  refresh(): Promise<RefreshedState | null> {
    this.refreshes++;
    if (!this.state) return Promise.resolve(null);
    let expiredHolds = 0;
    for (const reservation of this.reservations.values()) {
      if (reservation.status === 'held' && reservation.expiresAt <= this.now) {
        reservation.status = 'expired';
        this.state = { ...this.state, held: this.state.held - reservation.quantity };
        expiredHolds++;
      }
    }
    if (expiredHolds > 0) this.state = { ...this.state, version: this.state.version + 1 };
    return Promise.resolve({ ...this.state, expiredHolds });
  }

  async commit(request: CommitRequest): Promise<CommitOutcome> {
    const { expected, taken, purchases } = request;
    if (this.gate) {
      this.signalEntered?.();
      await this.gate;
    }
    this.beforeCommit?.();
    if (this.failNextCommit) {
      const error = this.failNextCommit;
      this.failNextCommit = null;
      throw error;
    }
    if (!this.state) return { committed: false, lostClaims: [] };
    const lostClaims = [...purchases, ...(request.holds ?? [])]
      .filter((p) => p.idempotency && this.takenOverKeys.has(p.idempotency.key))
      .map((p) => p.id);
    if (lostClaims.length > 0) return { committed: false, lostClaims };
    const { purchased: sold, held, allocation } = this.state;
    const fits =
      this.mode === 'cas'
        ? this.state.version === expected.version
        : sold + held + taken <= allocation;
    if (!fits) return { committed: false, lostClaims: [] };
    const targets = new Map<string, TargetOutcome>();
    const holds = new Map<string, { expiresAt: Date; createdAt: Date }>();
    const moved = this.applyChanges(request, targets, holds);
    const purchased = sold + moved.sold;
    const nowHeld = held + moved.held;
    if (purchased < 0 || nowHeld < 0 || purchased + nowHeld > allocation) {
      throw new Error('CHECK constraint violated');
    }
    this.state = { ...this.state, purchased, held: nowHeld, version: this.state.version + 1 };
    this.rows.push(...purchases);
    this.commits.push(purchases);
    for (const p of purchases)
      this.purchases.set(p.id, { quantity: p.quantity, status: 'completed' });
    return {
      committed: true,
      purchased,
      held: nowHeld,
      version: this.state.version,
      createdAt: new Date(this.now),
      holds,
      targets,
    };
  }

  /** The rows a commit changes, as the ledger statement does; returns how the counters move. */
  private applyChanges(
    request: CommitRequest,
    targets: Map<string, TargetOutcome>,
    holds: Map<string, { expiresAt: Date; createdAt: Date }>,
  ): { sold: number; held: number } {
    let sold = request.purchases.reduce((sum, p) => sum + p.quantity, 0);
    let held = 0;
    for (const hold of request.holds ?? []) {
      const expiresAt = this.now + hold.ttlSeconds * 1000;
      this.reservations.set(hold.id, { quantity: hold.quantity, status: 'held', expiresAt });
      holds.set(hold.id, { expiresAt: new Date(expiresAt), createdAt: new Date(this.now) });
      held += hold.quantity;
    }
    for (const confirm of request.confirms ?? []) {
      const r = this.reservations.get(confirm.reservationId);
      if (!r) targets.set(confirm.reservationId, 'missing');
      else if (r.status !== 'held') targets.set(confirm.reservationId, r.status);
      else if (r.expiresAt <= this.now) targets.set(confirm.reservationId, 'expired');
      else {
        r.status = 'confirmed';
        this.purchases.set(confirm.purchaseId, { quantity: r.quantity, status: 'completed' });
        sold += r.quantity;
        held -= r.quantity;
        targets.set(confirm.reservationId, 'changed');
      }
    }
    for (const id of request.releases ?? []) {
      const r = this.reservations.get(id);
      if (!r) targets.set(id, 'missing');
      else if (r.status === 'confirmed') targets.set(id, 'confirmed');
      else if (r.status !== 'held') targets.set(id, 'unchanged');
      else {
        r.status = r.expiresAt <= this.now ? 'expired' : 'released';
        held -= r.quantity;
        targets.set(id, r.status === 'released' ? 'changed' : 'unchanged');
      }
    }
    for (const id of request.cancels ?? []) {
      const p = this.purchases.get(id);
      if (!p) targets.set(id, 'missing');
      else if (p.status === 'cancelled') targets.set(id, 'unchanged');
      else {
        p.status = 'cancelled';
        sold -= p.quantity;
        targets.set(id, 'changed');
      }
    }
    return { sold, held };
  }

  /** Another instance sells `quantity` tickets. */
  foreignSale(quantity: number): void {
    this.state = {
      ...this.state!,
      purchased: this.state!.purchased + quantity,
      version: this.state!.version + 1,
    };
    this.rows.push({ id: `foreign-${this.rows.length}`, userId: USER, quantity });
  }
}

function actorOn(
  store: FakeStore,
  options: Partial<{ maxBatchSize: number; maxCommitAttempts: number; maxQueueDepth: number }> = {},
) {
  const backoffs: number[] = [];
  const notFound: string[] = [];
  const actor = new TicketOptionActor('option-1', store, {
    maxBatchSize: options.maxBatchSize ?? 512,
    maxCommitAttempts: options.maxCommitAttempts ?? 5,
    maxQueueDepth: options.maxQueueDepth ?? 10_000,
    backoff: (attempt) => {
      backoffs.push(attempt);
      return Promise.resolve();
    },
    onNotFound: (a) => notFound.push(a.optionId),
  });
  return { actor, backoffs, notFound };
}

const buy = (actor: TicketOptionActor, quantity: number) =>
  actor.purchase({ userId: USER, quantity });

describe('decideBatch (first fit in arrival order)', () => {
  it('accepts what fits and refuses the rest, without letting a big request block a small one', () => {
    const decision = decideBatch(5, [
      { quantity: 3 },
      { quantity: 4 },
      { quantity: 2 },
      { quantity: 1 },
    ]);
    expect(decision.accepted.map((r) => r.quantity)).toEqual([3, 2]);
    expect(decision.refused.map((r) => [r.item.quantity, r.remaining])).toEqual([
      [4, 2],
      [1, 0],
    ]);
    expect(decision.taken).toBe(5);
  });

  it('refuses everything when nothing remains', () => {
    const decision = decideBatch(0, [{ quantity: 1 }]);
    expect(decision.accepted).toEqual([]);
    expect(decision.taken).toBe(0);
  });
});

describe('TicketOptionActor', () => {
  it('activates lazily, commits a purchase and keeps the state cached', async () => {
    const store = new FakeStore({ allocation: 10, purchased: 0, held: 0, version: 1 });
    const { actor } = actorOn(store);

    const receipt = await buy(actor, 3);
    await buy(actor, 2);

    expect(receipt).toMatchObject({ ticketOptionId: 'option-1', userId: USER, quantity: 3 });
    expect(store.rows.map((r) => r.id)).toContain(receipt.id);
    expect(store.state).toMatchObject({ purchased: 5, version: 3 });
    expect(actor.cachedState).toEqual({ allocation: 10, purchased: 5, held: 0, version: 3 });
    expect(store.loads).toBe(1);
  });

  it('commits everything queued during a commit as ONE batch, answering each after it', async () => {
    const store = new FakeStore({ allocation: 100, purchased: 0, held: 0, version: 1 });
    const { actor } = actorOn(store);
    store.hold();
    const first = buy(actor, 1);
    await store.entered; // the first commit is in flight, held by the store
    const queued = [buy(actor, 2), buy(actor, 3), buy(actor, 4)];
    store.release();

    await Promise.all([first, ...queued]);

    expect(store.commits.map((batch) => batch.map((p) => p.quantity))).toEqual([[1], [2, 3, 4]]);
    expect(store.state).toMatchObject({ purchased: 10, version: 3 });
    expect(actor.stats).toMatchObject({ commits: 2, purchasesCommitted: 4 });
  });

  it('answers a purchase only once the store has committed it, and never when that commit failed', async () => {
    const store = new FakeStore({ allocation: 10, purchased: 0, held: 0, version: 1 });
    const { actor } = actorOn(store);
    // At the moment each answer arrives, its row must already be committed.
    const committedWhenAnswered = (receipt: { id: string }) =>
      store.rows.some((row) => row.id === receipt.id);

    store.hold();
    let settled = false;
    const failing = buy(actor, 2).finally(() => (settled = true));
    await store.entered; // its commit is in flight, held by the store
    await new Promise<void>((resolve) => setImmediate(resolve)); // any early answer would be out
    expect(settled).toBe(false);
    store.failNextCommit = new Error('connection lost');
    store.release();
    await expect(failing).rejects.toBeInstanceOf(UnavailableError);
    expect(store.rows).toEqual([]);

    store.hold();
    const succeeding = buy(actor, 3).then(committedWhenAnswered);
    await store.entered;
    store.release();
    await expect(succeeding).resolves.toBe(true);
  });

  it('bounds a batch at maxBatchSize', async () => {
    const store = new FakeStore({ allocation: 100, purchased: 0, held: 0, version: 1 });
    const { actor } = actorOn(store, { maxBatchSize: 2 });
    store.hold();
    const all = [1, 1, 1, 1, 1].map((q) => buy(actor, q));
    store.release();
    await Promise.all(all);
    expect(store.commits.map((batch) => batch.length)).toEqual([2, 2, 1]);
  });

  it('refuses with InsufficientAllocationError, writes nothing for it, and still serves a later small request', async () => {
    const store = new FakeStore({ allocation: 5, purchased: 3, held: 0, version: 7 });
    const { actor } = actorOn(store);
    store.hold();
    const big = buy(actor, 3);
    const small = buy(actor, 2);
    store.release();

    await Promise.all([
      expect(big).rejects.toBeInstanceOf(InsufficientAllocationError),
      expect(small).resolves.toMatchObject({ quantity: 2 }),
    ]);
    expect(store.rows.map((r) => r.quantity)).toEqual([2]);
    expect(store.state).toMatchObject({ purchased: 5 });
  });

  it('refuses without touching the store when the cached remainder is already too small', async () => {
    const store = new FakeStore({ allocation: 2, purchased: 2, held: 0, version: 4 });
    const { actor } = actorOn(store);
    const error = await buy(actor, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InsufficientAllocationError);
    expect(error).toMatchObject({ requested: 1, remaining: 0 });
    expect(store.commits).toEqual([]);
  });

  it('on a lost version race reloads, re-decides the whole batch and retries', async () => {
    const store = new FakeStore({ allocation: 10, purchased: 0, held: 0, version: 1 });
    const { actor, backoffs } = actorOn(store);
    await buy(actor, 1); // cached: purchased 1
    store.foreignSale(7); // truth: purchased 8, remaining 2

    store.hold();
    const three = buy(actor, 3);
    const two = buy(actor, 2);
    store.release();

    // The first attempt (against the stale remainder of 9) loses; on reload 3 no longer fits.
    await Promise.all([
      expect(three).rejects.toBeInstanceOf(InsufficientAllocationError),
      expect(two).resolves.toMatchObject({ quantity: 2 }),
    ]);
    expect(store.state).toMatchObject({ purchased: 10 });
    expect(store.rows.reduce((n, r) => n + r.quantity, 0)).toBe(10);
    expect(actor.stats.versionConflicts).toBe(1);
    expect(backoffs).toEqual([1]);
  });

  it('gives up after maxCommitAttempts lost races with a 503-class AllocationConflictError', async () => {
    const store = new FakeStore({ allocation: 1000, purchased: 0, held: 0, version: 1 });
    const { actor, backoffs } = actorOn(store, { maxCommitAttempts: 3 });
    store.beforeCommit = () => store.foreignSale(1); // another instance always wins

    await expect(buy(actor, 1)).rejects.toBeInstanceOf(AllocationConflictError);
    expect(backoffs).toEqual([1, 2]);
    expect(store.rows.every((r) => r.id.startsWith('foreign-'))).toBe(true);
  });

  it('answers every request of a failed commit with 503 and reloads before the next decision', async () => {
    const store = new FakeStore({ allocation: 10, purchased: 0, held: 0, version: 1 });
    const { actor } = actorOn(store);
    await buy(actor, 1);
    store.failNextCommit = new Error('connection terminated');
    store.hold();
    const failed = [buy(actor, 1), buy(actor, 2)];
    store.release();

    await Promise.all(
      failed.map((attempt) => expect(attempt).rejects.toBeInstanceOf(UnavailableError)),
    );
    expect(actor.cachedState).toBeNull();

    await expect(buy(actor, 2)).resolves.toMatchObject({ quantity: 2 });
    expect(store.loads).toBe(2);
    expect(store.state).toMatchObject({ purchased: 3 });
  });

  it('rejects with not found for an unknown option and tells its registry', async () => {
    const store = new FakeStore(null);
    const { actor, notFound } = actorOn(store);
    await expect(buy(actor, 1)).rejects.toBeInstanceOf(TicketOptionNotFoundError);
    expect(notFound).toEqual(['option-1']);
  });

  it('turns purchases away with 503 once its queue is full, and serves again after it drains', async () => {
    const store = new FakeStore({ allocation: 100, purchased: 0, held: 0, version: 1 });
    const { actor } = actorOn(store, { maxQueueDepth: 2 });
    store.hold();
    const inFlight = buy(actor, 1);
    await store.entered; // the queue is empty again: this one is being committed
    // Handlers attached before anything is awaited: a rejection fails the test readably.
    const admitted = Promise.all([inFlight, buy(actor, 1), buy(actor, 1)]);

    await expect(buy(actor, 1)).rejects.toBeInstanceOf(UnavailableError);
    expect(actor.stats.overloaded).toBe(1);

    store.release();
    await admitted;
    await expect(buy(actor, 1)).resolves.toMatchObject({ quantity: 1 });
    expect(store.state).toMatchObject({ purchased: 4 });
  });

  it('is idle again once everything queued has been answered', async () => {
    const store = new FakeStore({ allocation: 10, purchased: 0, held: 0, version: 1 });
    const { actor } = actorOn(store);
    store.hold();
    const pending = Promise.all([buy(actor, 1), buy(actor, 1)]);
    expect(actor.isIdle).toBe(false);
    const idle = actor.whenIdle();
    store.release();
    await Promise.all([idle, pending]);
    expect(actor.isIdle).toBe(true);
  });

  describe('with the capacity-guarded commit', () => {
    it('commits on top of a foreign write that left room, without a conflict, and refreshes from the row', async () => {
      const store = new FakeStore({ allocation: 10, purchased: 0, held: 0, version: 1 }, 'guarded');
      const { actor, backoffs } = actorOn(store);
      await buy(actor, 1); // cached: purchased 1, version 2
      store.foreignSale(4); // truth: purchased 5, version 3

      await expect(buy(actor, 2)).resolves.toMatchObject({ quantity: 2 });
      expect(actor.stats.versionConflicts).toBe(0);
      expect(actor.stats.foreignWritesSeen).toBe(1);
      expect(actor.cachedState).toEqual({ allocation: 10, purchased: 7, held: 0, version: 4 });
      expect(store.loads).toBe(1);
      expect(backoffs).toEqual([]);
    });

    it('reloads and re-decides when a foreign write took the capacity the batch counted on', async () => {
      const store = new FakeStore({ allocation: 10, purchased: 0, held: 0, version: 1 }, 'guarded');
      const { actor } = actorOn(store);
      await buy(actor, 1);
      store.foreignSale(7); // truth: 2 left, the cache says 9

      store.hold();
      const three = buy(actor, 3);
      const two = buy(actor, 2);
      store.release();

      await Promise.all([
        expect(three).rejects.toBeInstanceOf(InsufficientAllocationError),
        expect(two).resolves.toMatchObject({ quantity: 2 }),
      ]);
      expect(actor.stats.versionConflicts).toBe(1);
      expect(store.state).toMatchObject({ purchased: 10 });
      expect(store.rows.reduce((n, r) => n + r.quantity, 0)).toBe(10);
    });
  });
});

describe('TicketOptionActor with an idempotency claim lost before its commit', () => {
  it('refuses that purchase alone, without a retry delay, and re-decides the rest of its batch', async () => {
    const store = new FakeStore({ allocation: 5, purchased: 0, held: 0, version: 1 }, 'guarded');
    const { actor, backoffs } = actorOn(store);
    store.hold();
    const first = buy(actor, 1); // commits alone, holding the queue behind it
    await store.entered;
    store.takenOverKeys.add('lost-key');
    const lost = actor.purchase({
      userId: USER,
      quantity: 4,
      idempotency: { key: 'lost-key', claim: 'old-claim', responseBody: '{}' },
    });
    const kept = actor.purchase({
      userId: USER,
      quantity: 3,
      idempotency: { key: 'kept-key', claim: 'claim', responseBody: '{}' },
    });
    const plain = buy(actor, 1);
    const settled = Promise.allSettled([first, lost, kept, plain]);
    store.release();
    const [a, b, c, d] = await settled;

    expect(a.status).toBe('fulfilled');
    expect(b).toEqual({ status: 'rejected', reason: expect.any(IdempotencyClaimLostError) });
    // Without the lost purchase's 4 tickets, both others fit: 1 + 3 + 1 = 5.
    expect(c.status).toBe('fulfilled');
    expect(d.status).toBe('fulfilled');
    expect(store.state).toMatchObject({ purchased: 5 });
    expect(store.rows.map((row) => row.quantity).sort()).toEqual([1, 1, 3]);
    expect(backoffs).toEqual([]);
    expect(actor.stats).toMatchObject({ lostClaims: 1, versionConflicts: 0, refusals: 0 });
  });
});

describe('TicketOptionActor with reservations (fake store, fake database clock)', () => {
  const holdOf = (actor: TicketOptionActor, quantity: number, ttlSeconds = 60) =>
    actor.hold({ userId: USER, quantity, ttlSeconds });
  const confirmOf = (actor: TicketOptionActor, reservationId: string, quantity: number) =>
    actor.confirm({ reservationId, userId: USER, quantity });

  it('takes holds from what remains, first fit with purchases, and refuses a hold that does not fit', async () => {
    const store = new FakeStore({ allocation: 5, purchased: 0, held: 0, version: 1 }, 'guarded');
    const { actor } = actorOn(store);
    store.hold();
    const first = holdOf(actor, 3);
    await store.entered;
    const tooBig = holdOf(actor, 3).catch((e: unknown) => e);
    const fits = buy(actor, 2);
    store.release();
    await expect(first).resolves.toMatchObject({ quantity: 3 });
    await expect(fits).resolves.toMatchObject({ quantity: 2 });
    const refusal = await tooBig;
    expect(refusal).toBeInstanceOf(InsufficientAvailabilityForHoldError);
    expect(refusal).toMatchObject({ problems: [{ code: 'invalid_reservation_quantity' }] });
    expect(store.state).toMatchObject({ purchased: 2, held: 3 });
  });

  it('expires due holds before refusing: tickets of a hold past expires_at are sold to the next buyer', async () => {
    const store = new FakeStore({ allocation: 4, purchased: 0, held: 0, version: 1 }, 'guarded');
    const { actor } = actorOn(store);
    await holdOf(actor, 4, 30);
    store.now += 30_000; // expires_at reached on the database clock; nothing swept it
    await expect(buy(actor, 4)).resolves.toMatchObject({ quantity: 4 });
    expect(store.refreshes).toBe(1);
    expect(store.state).toMatchObject({ purchased: 4, held: 0 });
    expect(actor.stats.holdsExpired).toBe(1);
  });

  it('refuses only after reading the newest state, and then justifiably', async () => {
    const store = new FakeStore({ allocation: 4, purchased: 0, held: 0, version: 1 }, 'guarded');
    const { actor } = actorOn(store);
    await holdOf(actor, 4, 30);
    store.now += 29_999; // one millisecond before expires_at: still held
    const refusal = await buy(actor, 1).catch((e: unknown) => e);
    expect(refusal).toMatchObject({ requested: 1, remaining: 0 });
    expect(store.refreshes).toBe(1);
    expect(store.commits).toEqual([[]]); // only the hold was written: the refusal wrote nothing
  });

  it('never refuses a confirmation for availability: it moves the hold from held to sold', async () => {
    const store = new FakeStore({ allocation: 3, purchased: 0, held: 0, version: 1 }, 'guarded');
    const { actor } = actorOn(store);
    const hold = await holdOf(actor, 3);
    await expect(buy(actor, 1)).rejects.toBeInstanceOf(InsufficientAllocationError);
    const purchase = await confirmOf(actor, hold.id, 3);
    expect(purchase).toMatchObject({ quantity: 3, reservationId: hold.id });
    expect(store.state).toMatchObject({ purchased: 3, held: 0 });
    expect(store.purchases.get(purchase.id)).toEqual({ quantity: 3, status: 'completed' });
  });

  it('refuses to confirm a hold past expires_at (database clock), swept or not', async () => {
    const store = new FakeStore({ allocation: 3, purchased: 0, held: 0, version: 1 }, 'guarded');
    const { actor } = actorOn(store);
    const hold = await holdOf(actor, 2, 5);
    store.now += 5_000;
    const error = await confirmOf(actor, hold.id, 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReservationStateError);
    expect(error).toMatchObject({ state: 'expired', problems: [{ code: 'reservation_expired' }] });
    expect(store.purchases.size).toBe(0);
  });

  it('releases once: a second release changes nothing, and a confirmed hold cannot be released', async () => {
    const store = new FakeStore({ allocation: 5, purchased: 0, held: 0, version: 1 }, 'guarded');
    const { actor } = actorOn(store);
    const released = await holdOf(actor, 2);
    await expect(actor.release(released.id)).resolves.toEqual({ changed: true });
    await expect(actor.release(released.id)).resolves.toEqual({ changed: false });
    expect(store.state).toMatchObject({ held: 0 });
    const confirmed = await holdOf(actor, 1);
    await confirmOf(actor, confirmed.id, 1);
    await expect(actor.release(confirmed.id)).rejects.toMatchObject({
      problems: [{ code: 'reservation_confirmed' }],
    });
    expect(store.state).toMatchObject({ purchased: 1, held: 0 });
  });

  it('cancels once: tickets come back, a second cancel changes nothing', async () => {
    const store = new FakeStore({ allocation: 2, purchased: 0, held: 0, version: 1 }, 'guarded');
    const { actor } = actorOn(store);
    const purchase = await buy(actor, 2);
    await expect(actor.cancel(purchase.id)).resolves.toEqual({ changed: true });
    await expect(actor.cancel(purchase.id)).resolves.toEqual({ changed: false });
    expect(store.state).toMatchObject({ purchased: 0 });
    await expect(buy(actor, 2)).resolves.toMatchObject({ quantity: 2 });
  });

  it('changes a row once per commit: a second confirm of the same hold waits for the next commit and is refused', async () => {
    const store = new FakeStore({ allocation: 5, purchased: 0, held: 0, version: 1 }, 'guarded');
    const { actor } = actorOn(store);
    const hold = await holdOf(actor, 2);
    store.hold();
    const blocker = buy(actor, 1);
    await store.entered;
    const first = confirmOf(actor, hold.id, 2);
    const second = confirmOf(actor, hold.id, 2).catch((e: unknown) => e);
    store.release();
    await blocker;
    await expect(first).resolves.toMatchObject({ reservationId: hold.id });
    expect(await second).toMatchObject({ problems: [{ code: 'reservation_confirmed' }] });
    expect(store.state).toMatchObject({ purchased: 3, held: 0 });
  });

  it('takes expires_at from the store (the database clock), whatever the process clock says', async () => {
    const store = new FakeStore({ allocation: 5, purchased: 0, held: 0, version: 1 }, 'guarded');
    store.now = Date.UTC(2030, 0, 1); // years away from this process's clock
    const { actor } = actorOn(store);
    const hold = await holdOf(actor, 1, 90);
    expect(hold.expiresAt.getTime()).toBe(Date.UTC(2030, 0, 1) + 90_000);
  });
});

describe('TicketOptionActor pipelining', () => {
  it('submits the next batch before answering the previous one, and answers every batch', async () => {
    const store = new FakeStore({ allocation: 10, purchased: 0, held: 0, version: 1 }, 'guarded');
    const { actor } = actorOn(store);
    await buy(actor, 1); // activated: the state is cached
    const events: string[] = [];
    const commit = store.commit.bind(store);
    store.commit = (request) => {
      events.push(`commit ${request.purchases.map((p) => p.quantity).join(',')}`);
      return commit(request);
    };
    store.hold();
    const first = buy(actor, 2).then(() => events.push('answered 2'));
    await store.entered;
    const second = buy(actor, 3).then(() => events.push('answered 3'));
    store.release();
    await Promise.all([first, second]);
    expect(events).toEqual(['commit 2', 'commit 3', 'answered 2', 'answered 3']);
    expect(store.state).toMatchObject({ purchased: 6 });
  });
});
