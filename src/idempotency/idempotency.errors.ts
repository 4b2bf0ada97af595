import { DomainError } from '../common/domain.error';

/**
 * This request's claim on its Idempotency-Key was taken over while its purchase waited for a
 * commit (its lease ran out, e.g. the event loop stalled past it, and a retry of the same request
 * claimed the key). The commit refused it, so nothing was bought by this request; the retry that
 * holds the claim now answers for the key.
 */
export class IdempotencyClaimLostError extends DomainError {
  constructor(readonly key: string) {
    super({
      code: 'idempotency_key_in_flight',
      detail:
        'A retry of this request took over its Idempotency-Key before this one committed; nothing was bought by this request. Retry to get the answer of the one in flight.',
      source: { parameter: 'Idempotency-Key' },
    });
  }
}
