/** Where in the request a problem lies: a JSON pointer into the body, or a query/header/path name. */
export type ErrorSource = { pointer: string } | { parameter: string };

/** One problem, described without any HTTP: the global filter maps `code` to a status and title. */
export interface Problem {
  code: ErrorCode;
  detail: string;
  source?: ErrorSource;
}

/** The stable error codes of docs/design.md, Wire contract. */
export type ErrorCode =
  | 'invalid_document'
  | 'invalid_attribute'
  | 'invalid_relationship'
  | 'invalid_purchase_quantity'
  | 'invalid_reservation_quantity'
  | 'reservation_expired'
  | 'reservation_released'
  | 'reservation_confirmed'
  | 'client_id_unsupported'
  | 'not_found'
  | 'type_conflict'
  | 'id_conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'not_acceptable'
  | 'invalid_header'
  | 'invalid_query_parameter'
  | 'idempotency_key_reused'
  | 'idempotency_key_in_flight'
  | 'unavailable'
  | 'internal_error';

/**
 * Base of every error that services, pipes and actors throw on purpose. It carries one or more
 * {@link Problem}s; it never builds a response (that is the exception filter's job).
 */
export class DomainError extends Error {
  readonly problems: Problem[];
  /**
   * The answer is final for this request (a justified refusal): a retry with the same
   * Idempotency-Key gets it replayed instead of running again.
   */
  readonly final: boolean;

  constructor(problems: Problem | Problem[], options?: { cause?: unknown; final?: boolean }) {
    const list = Array.isArray(problems) ? problems : [problems];
    super(list.map((p) => `${p.code}: ${p.detail}`).join('; '), options);
    this.name = new.target.name;
    this.problems = list;
    this.final = options?.final ?? false;
  }
}

/** Some resource (or route) does not exist. */
export class NotFoundError extends DomainError {
  constructor(detail: string, source?: ErrorSource) {
    super({ code: 'not_found', detail, source });
  }
}

/** The service cannot take the request now (database down, overloaded, draining): 503. */
export class UnavailableError extends DomainError {
  constructor(
    detail: string,
    readonly retryAfterSeconds = 1,
    options?: { cause?: unknown },
  ) {
    super({ code: 'unavailable', detail }, options);
  }
}
