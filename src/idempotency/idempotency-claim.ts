/**
 * The claim of an `Idempotency-Key` held by the request that is being processed
 * (docs/design.md, Idempotency). What the request creates completes the claim in the same
 * transaction, with the answer to replay.
 */
export interface IdempotencyClaim {
  key: string;
  claim: string;
}

/** A claim together with the answer (a 201's JSON:API document, as text) its commit records. */
export interface IdempotencyCompletion extends IdempotencyClaim {
  responseBody: string;
}

/** Fastify route config of the routes that accept `Idempotency-Key` (set once, per route). */
export const IDEMPOTENT_ROUTE_CONFIG = { idempotent: true } as const;
