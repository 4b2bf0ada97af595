import { DomainError, NotFoundError, UnavailableError } from '../common/domain.error';

/** The remaining availability is smaller than the requested quantity: a justified refusal. */
export class InsufficientAllocationError extends DomainError {
  constructor(
    readonly requested: number,
    readonly remaining: number,
  ) {
    super(
      {
        code: 'invalid_purchase_quantity',
        detail: 'Unable to reserve given quantity of ticket options',
        source: { pointer: '/data/attributes/quantity' },
      },
      { final: true },
    );
  }
}

/** The ticket option does not exist (or the id in the path is not a UUID). */
export class TicketOptionNotFoundError extends NotFoundError {
  constructor(
    readonly optionId: string,
    pointer?: string,
  ) {
    super(
      `Ticket option ${JSON.stringify(optionId)} does not exist.`,
      pointer === undefined ? undefined : { pointer },
    );
  }
}

/**
 * The option named by a request's relationship does not exist: the same 404, pointing at that
 * relationship (`pointer`), when the request named it in its body rather than its path.
 */
export function pointingAtOption(error: unknown, pointer: string | undefined): unknown {
  if (error instanceof TicketOptionNotFoundError && pointer) {
    return new TicketOptionNotFoundError(error.optionId, pointer);
  }
  return error;
}

/**
 * Another writer (usually another instance) committed first: the version we read is stale. The
 * actor reloads and retries; only when every attempt was lost does the client see a 503.
 */
export class AllocationConflictError extends UnavailableError {
  constructor(attempts: number) {
    super(
      `The purchase could not be committed after ${attempts} attempts under contention; retry.`,
    );
  }
}

/** A hold asked for more tickets than remain: nothing is held. */
export class InsufficientAvailabilityForHoldError extends DomainError {
  constructor(
    readonly requested: number,
    readonly remaining: number,
  ) {
    super(
      {
        code: 'invalid_reservation_quantity',
        detail: `Unable to hold ${requested} tickets: ${Math.max(remaining, 0)} remain.`,
        source: { pointer: '/data/attributes/quantity' },
      },
      { final: true },
    );
  }
}

export const RESERVATION_POINTER = '/data/relationships/reservation/data/id';

/**
 * A reservation that can no longer be confirmed (or released): its state is final, so the answer
 * is too, and a retry with the same Idempotency-Key gets it replayed.
 */
export class ReservationStateError extends DomainError {
  constructor(
    readonly state: 'expired' | 'released' | 'confirmed',
    reservationId: string,
    pointer: string | undefined = RESERVATION_POINTER,
  ) {
    super(
      {
        code: `reservation_${state}`,
        detail: `Reservation ${JSON.stringify(reservationId)} is ${state}.`,
        ...(pointer === undefined ? {} : { source: { pointer } }),
      },
      { final: true },
    );
  }
}
