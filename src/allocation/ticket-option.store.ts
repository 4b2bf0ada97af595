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
}

export type CommitOutcome =
  { committed: true; version: number; createdAt: Date } | { committed: false };

/**
 * The persistence port of the actor. `commit` must be atomic: either `purchased` moves from the
 * state at `expectedVersion` to `purchased` and every purchase row exists, or nothing changed.
 */
export interface TicketOptionStore {
  load(optionId: string): Promise<AllocationState | null>;
  commit(
    optionId: string,
    expectedVersion: number,
    purchased: number,
    purchases: AcceptedPurchase[],
  ): Promise<CommitOutcome>;
}

export const TICKET_OPTION_STORE = Symbol('TICKET_OPTION_STORE');
