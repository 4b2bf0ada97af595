import { includedResources } from '../jsonapi/query-parameters';
import { ParsedResource, ResourceDocumentParser } from '../jsonapi/resource-document';
import { defineResourceType, noContentRules, queryRules } from '../jsonapi/resource-type';
import { DomainError } from '../common/domain.error';
import {
  PURCHASES_TYPE,
  RESERVATIONS_TYPE,
  TICKET_OPTIONS_TYPE,
  USERS_TYPE,
} from '../common/resource-types';
import {
  RESERVATION_RESOURCE,
  ReservationView,
  reservationResource,
} from '../reservations/reservation.document';
import {
  MAX_INT32,
  TICKET_OPTION_RESOURCE,
  TicketOptionFields,
  ticketOptionResource,
} from '../ticket-options/ticket-option.document';
import type { PurchaseStatus } from './purchase.entity';

export { PURCHASES_TYPE, USERS_TYPE };

export interface PurchaseAttributes {
  /** Absent only when confirming a reservation (its quantity is taken). */
  quantity: number;
}

/** Plain view of a stored purchase; responses are built from this. */
export interface PurchaseView {
  id: string;
  ticketOptionId: string;
  userId: string;
  quantity: number;
  status: PurchaseStatus;
  /** ISO 8601 (UTC) once cancelled. */
  cancelledAt: string | null;
  /** The reservation this purchase confirmed, if any. */
  reservationId: string | null;
}

const QUANTITY = { type: 'integer', minimum: 1, maximum: MAX_INT32 } as const;

const purchaseSpec = (ticketOptionRequired: boolean) =>
  new ResourceDocumentParser<PurchaseAttributes>({
    type: PURCHASES_TYPE,
    attributes: { quantity: QUANTITY },
    requiredAttributes: ['quantity'],
    relationships: {
      ticket_option: { type: TICKET_OPTIONS_TYPE, required: ticketOptionRequired },
      user: { type: USERS_TYPE, required: true },
    },
  });

/**
 * A confirmation: the reservation is required; what it already says (quantity, option, user)
 * may be repeated, and must then match it (docs/design.md, Reservations).
 */
export const confirmationParser = new ResourceDocumentParser<Partial<PurchaseAttributes>>({
  type: PURCHASES_TYPE,
  attributes: { quantity: QUANTITY },
  requiredAttributes: [],
  relationships: {
    ticket_option: { type: TICKET_OPTIONS_TYPE, required: false },
    user: { type: USERS_TYPE, required: false },
    reservation: { type: RESERVATIONS_TYPE, required: true },
  },
});

/** `POST /purchases` without a reservation: the option comes from the `ticket_option` relationship. */
export const purchaseParser = purchaseSpec(true);
/** `POST /ticket_options/:id/purchases`: the option comes from the path; the relationship is optional. */
export const nestedPurchaseParser = purchaseSpec(false);

/** What a purchase POST is: a direct purchase, or (with `reservation`) a confirmation. */
export type PurchaseRequestDocument =
  | { confirmation: false; document: ParsedResource<PurchaseAttributes> }
  | { confirmation: true; document: ParsedResource<Partial<PurchaseAttributes>> };

/**
 * Parses a purchase POST with the parser its kind needs: a body naming a reservation is a
 * confirmation, anything else is the brief's direct purchase, validated exactly as before.
 */
export class PurchaseRequestParser {
  constructor(private readonly direct: ResourceDocumentParser<PurchaseAttributes>) {}

  parse(body: unknown): PurchaseRequestDocument {
    const relationships = (body as { data?: { relationships?: unknown } } | null)?.data
      ?.relationships;
    const confirmation =
      relationships !== null && typeof relationships === 'object' && 'reservation' in relationships;
    return confirmation
      ? { confirmation: true, document: confirmationParser.parse(body) }
      : { confirmation: false, document: this.direct.parse(body) };
  }
}

/**
 * The include table of purchases: each relationship `include` may follow. A read function for
 * each lives in PurchasesService.findOneIncluding.
 */
export const PURCHASE_RESOURCE = defineResourceType(
  confirmationParser.spec,
  () => ({ ticket_option: TICKET_OPTION_RESOURCE, reservation: RESERVATION_RESOURCE }),
  ['status', 'cancelled_at'],
);
/** `GET /purchases/:id`: `include` and `fields[TYPE]` for purchases and what they include. */
export const PURCHASE_READ_QUERY = queryRules(PURCHASE_RESOURCE, { include: true });
/** The purchase POSTs (and their replays): `fields[TYPE]` on the 201; `include` is refused. */
export const PURCHASE_CREATE_QUERY = queryRules(PURCHASE_RESOURCE, { include: false });
/** DELETE /purchases/:id answers 204: no query parameter applies. */
export const PURCHASE_DELETE_QUERY = noContentRules(PURCHASE_RESOURCE);

/** The related resources a read was asked to include, loaded with it. */
export interface PurchaseIncluded {
  ticketOption?: TicketOptionFields;
  reservation?: ReservationView;
}

export const TICKET_OPTION_ID_POINTER = '/data/relationships/ticket_option/data/id';

/**
 * A nested route (`/ticket_options/:id/…`) takes the option from its path; a `ticket_option`
 * relationship, if sent, must name the same one (409 `id_conflict`).
 */
export function checkPathOption(linked: { id: string } | undefined, pathId: string): void {
  if (linked && linked.id !== pathId) {
    throw new DomainError({
      code: 'id_conflict',
      detail: `The ticket_option relationship (${linked.id}) does not match the path (${pathId}).`,
      source: { pointer: TICKET_OPTION_ID_POINTER },
    });
  }
}
export const USER_ID_POINTER = '/data/relationships/user/data/id';

export function purchasePath(id: string): string {
  return `/purchases/${id}`;
}

/** The resource object of one purchase, as primary data or in another document's `included`. */
export function purchaseResource(purchase: PurchaseView) {
  return {
    type: PURCHASES_TYPE,
    id: purchase.id,
    attributes: {
      quantity: purchase.quantity,
      status: purchase.status,
      cancelled_at: purchase.cancelledAt,
    },
    relationships: {
      ticket_option: { data: { type: TICKET_OPTIONS_TYPE, id: purchase.ticketOptionId } },
      user: { data: { type: USERS_TYPE, id: purchase.userId } },
      reservation: {
        data:
          purchase.reservationId === null
            ? null
            : { type: RESERVATIONS_TYPE, id: purchase.reservationId },
      },
    },
    links: { self: purchasePath(purchase.id) },
  };
}

/**
 * The document of one purchase; with `included` (the read was asked to include something, maybe
 * nothing: `include=`), a compound document whose `included` holds each related resource once.
 */
export function purchaseDocument(purchase: PurchaseView, included: PurchaseIncluded | null = null) {
  const data = purchaseResource(purchase);
  if (included === null) return { data };
  const resources: Array<{ type: string; id: string }> = [];
  if (included.ticketOption) resources.push(ticketOptionResource(included.ticketOption));
  if (included.reservation) resources.push(reservationResource(included.reservation));
  return { data, included: includedResources(resources) };
}

/** A purchase just committed: completed, not cancelled. */
export function newPurchaseView(
  purchase: Omit<PurchaseView, 'status' | 'cancelledAt' | 'reservationId'> & {
    reservationId?: string | null;
  },
): PurchaseView {
  return {
    ...purchase,
    status: 'completed',
    cancelledAt: null,
    reservationId: purchase.reservationId ?? null,
  };
}
