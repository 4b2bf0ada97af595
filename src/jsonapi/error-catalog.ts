import { ErrorCode } from '../common/domain.error';

/** HTTP status and human title of every stable error code (docs/design.md, Error catalog). */
export const ERROR_CATALOG: Record<ErrorCode, { status: number; title: string }> = {
  invalid_document: { status: 400, title: 'Invalid document' },
  invalid_attribute: { status: 400, title: 'Invalid attribute' },
  invalid_relationship: { status: 400, title: 'Invalid relationship' },
  invalid_header: { status: 400, title: 'Invalid header' },
  invalid_query_parameter: { status: 400, title: 'Invalid query parameter' },
  invalid_purchase_quantity: { status: 400, title: 'Unable to purchase provided quantity' },
  invalid_reservation_quantity: { status: 400, title: 'Unable to hold provided quantity' },
  client_id_unsupported: { status: 403, title: 'Client-generated ids are not supported' },
  not_found: { status: 404, title: 'Not found' },
  not_acceptable: { status: 406, title: 'Not acceptable' },
  type_conflict: { status: 409, title: 'Type conflict' },
  id_conflict: { status: 409, title: 'Id conflict' },
  reservation_expired: { status: 409, title: 'Reservation expired' },
  reservation_released: { status: 409, title: 'Reservation released' },
  reservation_confirmed: { status: 409, title: 'Reservation confirmed' },
  idempotency_key_in_flight: { status: 409, title: 'Idempotency key in flight' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  idempotency_key_reused: { status: 422, title: 'Idempotency key reused' },
  internal_error: { status: 500, title: 'Internal error' },
  unavailable: { status: 503, title: 'Service unavailable' },
};
