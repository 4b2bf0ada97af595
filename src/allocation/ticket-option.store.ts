import type { IdempotencyCompletion } from '../idempotency/idempotency-claim';

/** What the actor keeps of a ticket option: the only fields that decide a purchase. */
export interface AllocationState {
  allocation: number;
  purchased: number;
  version: number;
}

/** One accepted purchase, ready to be written. */
export interface AcceptedPurchase {
  id: string;
  userId: string;
  quantity: number;
  /** Completed by the same commit that writes the purchase, atomically. */
  idempotency?: IdempotencyCompletion;
}

/** One actor's batch: the purchases it accepted against the state it decided them on. */
export interface CommitRequest {
  optionId: string;
  /** The state the batch was decided against (the actor's cached state). */
  expected: AllocationState;
  /** Tickets taken by the batch (the sum of the purchases' quantities). */
  taken: number;
  purchases: AcceptedPurchase[];
}

export type CommitOutcome =
  | {
      committed: true;
      /** The option after this commit: authoritative, foreign writes included. */
      purchased: number;
      version: number;
      createdAt: Date;
    }
  | {
      committed: false;
      /**
       * Purchases whose Idempotency-Key claim was taken over (by a retry of the same request on
       * another instance): the option was not bumped because of them. Empty: the guard refused.
       */
      lostClaims: string[];
    };

/**
 * How a commit guards the option row against other writers (other instances):
 * - `guarded`: `purchased = purchased + taken` where it still fits the allocation. Foreign
 *   commits do not invalidate ours unless capacity ran out; the version is still bumped, and the
 *   returned row refreshes the actor.
 * - `cas`: the classic compare-and-set on `version`; any foreign commit since the actor's read
 *   makes ours fail, and the actor reloads and retries.
 */
export type CommitMode = 'guarded' | 'cas';
export const COMMIT_MODES: readonly CommitMode[] = ['guarded', 'cas'];

/**
 * The persistence port of the actor. `commit` must be atomic per request: either the option row
 * moved by `taken` and every purchase row (and idempotency completion) exists, or nothing of that
 * request changed. `committed: false` means the guard refused it (a lost race: reload, re-decide),
 * or some purchases lost their idempotency claim (refuse those, re-decide the rest).
 */
export interface TicketOptionStore {
  load(optionId: string): Promise<AllocationState | null>;
  commit(request: CommitRequest): Promise<CommitOutcome>;
}

export const TICKET_OPTION_STORE = Symbol('TICKET_OPTION_STORE');
