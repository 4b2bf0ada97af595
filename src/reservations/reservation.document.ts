import {
  PURCHASES_TYPE,
  RESERVATIONS_TYPE,
  TICKET_OPTIONS_TYPE,
  USERS_TYPE,
} from '../common/resource-types';
import { includedResources } from '../jsonapi/query-parameters';
import { ResourceDocumentParser } from '../jsonapi/resource-document';
import { defineResourceType, noContentRules, queryRules } from '../jsonapi/resource-type';
import { PURCHASE_RESOURCE, PurchaseView, purchaseResource } from '../purchases/purchase.document';
import {
  MAX_INT32,
  TICKET_OPTION_RESOURCE,
  TicketOptionFields,
  ticketOptionResource,
} from '../ticket-options/ticket-option.document';
import type { ReservationStatus } from './reservation.entity';

export { RESERVATIONS_TYPE };

/** The ceiling of `ttl_seconds` in the schema; RESERVATION_MAX_TTL_S may lower it. */
export const TTL_SCHEMA_MAXIMUM = 86_400;
export const TTL_POINTER = '/data/attributes/ttl_seconds';

export interface ReservationAttributes {
  quantity: number;
  ttl_seconds?: number;
}

/** Plain view of a stored reservation, as the database clock sees it now. */
export interface ReservationView {
  id: string;
  ticketOptionId: string;
  userId: string;
  quantity: number;
  /** `expired` as soon as `expires_at` has passed, swept or not. */
  status: ReservationStatus;
  /** ISO 8601, UTC, milliseconds. */
  expiresAt: string;
  createdAt: string;
  purchaseId: string | null;
}

const reservationSpec = (ticketOptionRequired: boolean) =>
  new ResourceDocumentParser<ReservationAttributes>({
    type: RESERVATIONS_TYPE,
    attributes: {
      quantity: { type: 'integer', minimum: 1, maximum: MAX_INT32 },
      ttl_seconds: { type: 'integer', minimum: 1, maximum: TTL_SCHEMA_MAXIMUM },
    },
    requiredAttributes: ['quantity'],
    relationships: {
      ticket_option: { type: TICKET_OPTIONS_TYPE, required: ticketOptionRequired },
      user: { type: USERS_TYPE, required: true },
    },
  });

/** `POST /reservations`: the option comes from the `ticket_option` relationship. */
export const reservationParser = reservationSpec(true);
/** `POST /ticket_options/:id/reservations`: the option comes from the path. */
export const nestedReservationParser = reservationSpec(false);

/**
 * Reservations as responses show them: `purchase` is a relationship of responses only (set by a
 * confirmation), and `include` may follow it and `ticket_option`.
 */
export const RESERVATION_RESPONSE_SPEC = {
  ...reservationParser.spec,
  // `ttl_seconds` is asked for, never shown: `expires_at` is what the hold got.
  attributes: { quantity: reservationParser.spec.attributes.quantity },
};

export const RESERVATION_RESOURCE = defineResourceType(
  {
    ...RESERVATION_RESPONSE_SPEC,
    relationships: {
      ...reservationParser.spec.relationships,
      purchase: { type: PURCHASES_TYPE, required: false },
    },
  },
  () => ({ ticket_option: TICKET_OPTION_RESOURCE, purchase: PURCHASE_RESOURCE }),
  ['status', 'expires_at', 'created_at'],
);
/** `GET /reservations/:id`: `include` and `fields[TYPE]`. */
export const RESERVATION_READ_QUERY = queryRules(RESERVATION_RESOURCE, { include: true });
/** The reservation POSTs (and their replays): `fields[TYPE]` on the 201. */
export const RESERVATION_CREATE_QUERY = queryRules(RESERVATION_RESOURCE, { include: false });
/** DELETE /reservations/:id answers 204: no query parameter applies. */
export const RESERVATION_DELETE_QUERY = noContentRules(RESERVATION_RESOURCE);

export interface ReservationIncluded {
  ticketOption?: TicketOptionFields;
  purchase?: PurchaseView;
}

export function reservationPath(id: string): string {
  return `/reservations/${id}`;
}

/** The resource object of one reservation, as primary data or in another document's `included`. */
export function reservationResource(reservation: ReservationView) {
  return {
    type: RESERVATIONS_TYPE,
    id: reservation.id,
    attributes: {
      quantity: reservation.quantity,
      status: reservation.status,
      expires_at: reservation.expiresAt,
      created_at: reservation.createdAt,
    },
    relationships: {
      ticket_option: { data: { type: TICKET_OPTIONS_TYPE, id: reservation.ticketOptionId } },
      user: { data: { type: USERS_TYPE, id: reservation.userId } },
      purchase: {
        data:
          reservation.purchaseId === null
            ? null
            : { type: PURCHASES_TYPE, id: reservation.purchaseId },
      },
    },
    links: { self: reservationPath(reservation.id) },
  };
}

export function reservationDocument(
  reservation: ReservationView,
  included: ReservationIncluded | null = null,
) {
  const data = reservationResource(reservation);
  if (included === null) return { data };
  const resources: Array<{ type: string; id: string }> = [];
  if (included.ticketOption) resources.push(ticketOptionResource(included.ticketOption));
  if (included.purchase) resources.push(purchaseResource(included.purchase));
  return { data, included: includedResources(resources) };
}

/**
 * The answer of a hold whose times the commit fills in: an Idempotency-Key records this text
 * with the database's times in place of the placeholders (src/allocation/ledger-statements.ts).
 */
export const EXPIRES_AT_PLACEHOLDER = '@expires_at@';
export const CREATED_AT_PLACEHOLDER = '@created_at@';
