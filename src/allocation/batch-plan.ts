/**
 * The decisions of one actor batch, as pure functions (docs/design.md, Actor and commit): which
 * purchases and holds fit, in arrival order (first fit), and which operations on existing rows
 * (confirm, release, cancel) go into this commit. Those need no availability: the database
 * decides them from the row's state, under the option's row lock.
 */

/** What an operation of the queue is, as far as the decision goes. */
export type PlannedItem =
  | { kind: 'take'; quantity: number }
  /** Confirm, release or cancel of one row, named by its id. */
  | { kind: 'target'; target: string };

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

export interface BatchPlan<T> {
  /** Purchases and holds that fit, in arrival order. */
  accepted: T[];
  /** Purchases and holds that do not fit, with what remained when each was decided. */
  refused: Array<{ item: T; remaining: number }>;
  taken: number;
  /** Confirms, releases and cancels, each row at most once per commit. */
  targeted: T[];
  /**
   * Operations on a row that an earlier operation of this batch already changes: they wait for the
   * next commit (one statement may change a row only once), in arrival order.
   */
  deferred: T[];
}

/**
 * Plans one commit of a batch: first fit for what takes tickets, and every row targeted at most
 * once (a second confirm or release of the same reservation waits for the next commit, which
 * then sees the first one's result).
 */
export function planBatch<T>(
  remaining: number,
  items: T[],
  describe: (item: T) => PlannedItem,
): BatchPlan<T> {
  const takers: Array<{ item: T; quantity: number }> = [];
  const targeted: T[] = [];
  const deferred: T[] = [];
  const targets = new Set<string>();
  for (const item of items) {
    const planned = describe(item);
    if (planned.kind === 'take') {
      takers.push({ item, quantity: planned.quantity });
    } else if (targets.has(planned.target)) {
      deferred.push(item);
    } else {
      targets.add(planned.target);
      targeted.push(item);
    }
  }
  const decision = decideBatch(remaining, takers);
  return {
    accepted: decision.accepted.map(({ item }) => item),
    refused: decision.refused.map(({ item, remaining: left }) => ({
      item: item.item,
      remaining: left,
    })),
    taken: decision.taken,
    targeted,
    deferred,
  };
}
