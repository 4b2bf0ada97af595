import { ResourceDocumentParser } from '../jsonapi/resource-document';

export const TICKET_OPTIONS_TYPE = 'ticket_options';
export const MAX_INT32 = 2147483647;

export interface CreateTicketOptionAttributes {
  name: string;
  description?: string | null;
  allocation: number;
}

/** Plain view of a stored ticket option; responses are built from this, never from the entity. */
export interface TicketOptionView {
  id: string;
  name: string;
  description: string | null;
  allocation: number;
  purchased: number;
}

export const createTicketOptionParser = new ResourceDocumentParser<CreateTicketOptionAttributes>({
  type: TICKET_OPTIONS_TYPE,
  attributes: {
    name: {
      type: 'string',
      minLength: 1,
      maxLength: 255,
      pattern: '\\S',
      patternDetail: 'must not be blank',
    },
    description: { type: ['string', 'null'], maxLength: 10000 },
    allocation: { type: 'integer', minimum: 0, maximum: MAX_INT32 },
  },
  requiredAttributes: ['name', 'allocation'],
  relationships: {},
});

export function ticketOptionPath(id: string): string {
  return `/ticket_options/${id}`;
}

/** The JSON:API document of one option: `allocation` as created, the remainder only in `meta`. */
export function ticketOptionDocument(option: TicketOptionView) {
  return {
    data: {
      type: TICKET_OPTIONS_TYPE,
      id: option.id,
      attributes: {
        name: option.name,
        description: option.description,
        allocation: option.allocation,
      },
      links: { self: ticketOptionPath(option.id) },
    },
    meta: { remaining: option.allocation - option.purchased },
  };
}
