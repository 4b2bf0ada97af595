import { ResourceDocumentParser } from '../jsonapi/resource-document';
import { MAX_INT32, TICKET_OPTIONS_TYPE } from '../ticket-options/ticket-option.document';

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

export const TICKET_OPTION_ID_POINTER = '/data/relationships/ticket_option/data/id';

export function purchasePath(id: string): string {
  return `/purchases/${id}`;
}

export function purchaseDocument(purchase: PurchaseView) {
  return {
    data: {
      type: PURCHASES_TYPE,
      id: purchase.id,
      attributes: { quantity: purchase.quantity },
      relationships: {
        ticket_option: { data: { type: TICKET_OPTIONS_TYPE, id: purchase.ticketOptionId } },
        user: { data: { type: USERS_TYPE, id: purchase.userId } },
      },
      links: { self: purchasePath(purchase.id) },
    },
  };
}
