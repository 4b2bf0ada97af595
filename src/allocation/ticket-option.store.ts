import type { IdempotencyCompletion } from '../idempotency/idempotency-claim';

/**
 * What the actor keeps of a ticket option: the only fields that decide a purchase or a hold.
 * `purchased` counts the tickets sold (purchases not cancelled), `held` those held by
 * reservations; both may lag behind other instances, and `held` may over-count holds that expired
 * and were not swept yet (the safe direction, docs/design.md, Reservations).
 */
export interface AllocationState {
  allocation: number;
  purchased: number;
  held: number;
  version: number;
}

export function remainingOf(state: AllocationState): number {
  return state.allocation - state.purchased - state.held;
}

/** One accepted purchase, ready to be written. */
export interface AcceptedPurchase {
  id: string;
  userId: string;
  quantity: number;
  /** Completed by the same commit that writes the purchase, atomically. */
  idempotency?: IdempotencyCompletion;
}

/** One accepted hold: a reservation row, expiring `ttlSeconds` after the commit's database time. */
export interface AcceptedHold {
  id: string;
  userId: string;
  quantity: number;
  ttlSeconds: number;
  /** Its answer holds `"@expires_at@"` and `"@created_at@"`, filled in by the commit. */
  idempotency?: IdempotencyCompletion;
}

/** A reservation to confirm into the purchase `purchaseId` (decided by the database: its state). */
export interface ConfirmOperation {
  reservationId: string;
  purchaseId: string;
  idempotency?: IdempotencyCompletion;
}

/** One actor's batch: what it accepted against the state it decided them on. */
export interface CommitRequest {
  optionId: string;
  /** The state the batch was decided against (the actor's cached state). */
  expected: AllocationState;
  /** Tickets taken by the batch's purchases and holds (the sum of their quantities). */
  taken: number;
  purchases: AcceptedPurchase[];
  holds?: AcceptedHold[];
  confirms?: ConfirmOperation[];
  /** Reservations to release (held → released; a due one → expired). */
  releases?: string[];
  /** Purchases to cancel (completed → cancelled). */
  cancels?: string[];
}

/** What happened to one confirm, release or cancel, as the commit found the row it changed. */
export type TargetOutcome =
  'changed' | 'unchanged' | 'expired' | 'released' | 'confirmed' | 'missing';

export type CommitOutcome =
  | {
      committed: true;
      /** The option after this commit: authoritative, foreign writes included. */
      purchased: number;
      held: number;
      version: number;
      createdAt: Date;
      /** Per accepted hold id: its expiry and creation time, from the database clock. */
      holds: Map<string, { expiresAt: Date; createdAt: Date }>;
      /** Per reservation id (confirms, releases) and purchase id (cancels). */
      targets: Map<string, TargetOutcome>;
    }
  | {
      committed: false;
      /**
       * Purchases, holds or confirms whose Idempotency-Key claim was taken over (by a retry of the
       * same request on another instance): the option was not written because of them. Empty:
       * the guard refused.
       */
      lostClaims: string[];
    };

/** An option's state with its due holds expired, by the statement that read it. */
export interface RefreshedState extends AllocationState {
  /** Holds this refresh found due and expired. */
  expiredHolds: number;
}

/**
 * How a commit guards the option row against other writers (other instances):
 * - `guarded`: the counters move where `purchased + held + taken` still fits the allocation.
 *   Foreign commits do not invalidate ours unless capacity ran out; the version is still bumped,
 *   and the returned row refreshes the actor.
 * - `cas`: the classic compare-and-set on `version`; any foreign commit since the actor's read
 *   makes ours fail, and the actor reloads and retries.
 */
export type CommitMode = 'guarded' | 'cas';
export const COMMIT_MODES: readonly CommitMode[] = ['guarded', 'cas'];

/**
 * The persistence port of the actor. `commit` must be atomic per request: either the option row
 * moved and every row of the request changed (and its idempotency completions exist), or nothing
 * of that request changed. `committed: false` means the guard refused it (a lost race: reload,
 * re-decide), or some operations lost their idempotency claim (refuse those, re-decide the rest).
 * `refresh` expires the option's due holds and returns its newest state: what a refusal is
 * decided against.
 */
export interface TicketOptionStore {
  load(optionId: string): Promise<AllocationState | null>;
  refresh(optionId: string): Promise<RefreshedState | null>;
  commit(request: CommitRequest): Promise<CommitOutcome>;
}

export const TICKET_OPTION_STORE = Symbol('TICKET_OPTION_STORE');
