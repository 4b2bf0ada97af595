import { includedResources } from '../jsonapi/query-parameters';
import { ResourceDocumentParser } from '../jsonapi/resource-document';
import { defineResourceType, queryRules } from '../jsonapi/resource-type';
import {
  MAX_INT32,
  TICKET_OPTION_RESOURCE,
  TICKET_OPTIONS_TYPE,
  TicketOptionFields,
  ticketOptionResource,
} from '../ticket-options/ticket-option.document';

export const PURCHASES_TYPE = 'purchases';
export const USERS_TYPE = 'users';

export interface PurchaseAttributes {
  quantity: number;
}

/** Plain view of a stored purchase; responses are built from this. */
export interface PurchaseView {
  id: string;
  ticketOptionId: string;
  userId: string;
  quantity: number;
}

const purchaseSpec = (ticketOptionRequired: boolean) =>
  new ResourceDocumentParser<PurchaseAttributes>({
    type: PURCHASES_TYPE,
    attributes: { quantity: { type: 'integer', minimum: 1, maximum: MAX_INT32 } },
    requiredAttributes: ['quantity'],
    relationships: {
      ticket_option: { type: TICKET_OPTIONS_TYPE, required: ticketOptionRequired },
      user: { type: USERS_TYPE, required: true },
    },
  });

/** `POST /purchases`: the option comes from the `ticket_option` relationship. */
export const purchaseParser = purchaseSpec(true);
/** `POST /ticket_options/:id/purchases`: the option comes from the path; the relationship is optional. */
export const nestedPurchaseParser = purchaseSpec(false);

/**
 * The include table of purchases: each relationship `include` may follow. A related resource
 * that becomes readable (e.g. `reservation`) is one more entry here, and its read in
 * PurchasesService.findOne.
 */
export const PURCHASE_RESOURCE = defineResourceType(purchaseParser.spec, {
  ticket_option: TICKET_OPTION_RESOURCE,
});
/** `GET /purchases/:id`: `include` and `fields[TYPE]` for purchases and what they include. */
export const PURCHASE_READ_QUERY = queryRules(PURCHASE_RESOURCE, { include: true });
/** The purchase POSTs (and their replays): `fields[TYPE]` on the 201; `include` is refused. */
export const PURCHASE_CREATE_QUERY = queryRules(PURCHASE_RESOURCE, { include: false });

/** The related resources a read was asked to include, loaded with it. */
export interface PurchaseIncluded {
  ticketOption?: TicketOptionFields;
}

export const TICKET_OPTION_ID_POINTER = '/data/relationships/ticket_option/data/id';

export function purchasePath(id: string): string {
  return `/purchases/${id}`;
}

/**
 * The document of one purchase; with `included` (the read was asked to include something, maybe
 * nothing: `include=`), a compound document whose `included` holds each related resource once.
 */
export function purchaseDocument(purchase: PurchaseView, included: PurchaseIncluded | null = null) {
  const data = {
    type: PURCHASES_TYPE,
    id: purchase.id,
    attributes: { quantity: purchase.quantity },
    relationships: {
      ticket_option: { data: { type: TICKET_OPTIONS_TYPE, id: purchase.ticketOptionId } },
      user: { data: { type: USERS_TYPE, id: purchase.userId } },
    },
    links: { self: purchasePath(purchase.id) },
  };
  if (included === null) return { data };
  const resources = included.ticketOption ? [ticketOptionResource(included.ticketOption)] : [];
  return { data, included: includedResources(resources) };
}
