import { ResourceDocumentParser } from '../jsonapi/resource-document';
import { defineResourceType, queryRules } from '../jsonapi/resource-type';

import { TICKET_OPTIONS_TYPE } from '../common/resource-types';

export { TICKET_OPTIONS_TYPE };
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
  /** Tickets sold (purchases not cancelled). */
  purchased: number;
  /** Tickets held by unexpired reservations. */
  held: number;
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

/** Ticket options have no relationships: nothing to include (the table is empty). */
export const TICKET_OPTION_RESOURCE = defineResourceType(createTicketOptionParser.spec);
/** `GET /ticket_options/:id`: `fields[ticket_options]`; `include` is refused (nothing to include). */
export const TICKET_OPTION_READ_QUERY = queryRules(TICKET_OPTION_RESOURCE, { include: true });
/** `POST /ticket_options` (and its replays): `fields[ticket_options]` on the 201. */
export const TICKET_OPTION_CREATE_QUERY = queryRules(TICKET_OPTION_RESOURCE, { include: false });

export function ticketOptionPath(id: string): string {
  return `/ticket_options/${id}`;
}

/** What a ticket option's resource object shows: what it was created with. */
export type TicketOptionFields = Omit<TicketOptionView, 'purchased' | 'held'>;

/** The resource object of one option, as primary data or in another document's `included`. */
export function ticketOptionResource(option: TicketOptionFields) {
  return {
    type: TICKET_OPTIONS_TYPE,
    id: option.id,
    attributes: {
      name: option.name,
      description: option.description,
      allocation: option.allocation,
    },
    links: { self: ticketOptionPath(option.id) },
  };
}

/**
 * The JSON:API document of one option: `allocation` as created; availability only in `meta`:
 * `remaining = allocation - sold - held` (docs/design.md, Reservations).
 */
export function ticketOptionDocument(option: TicketOptionView) {
  return {
    data: ticketOptionResource(option),
    meta: {
      remaining: option.allocation - option.purchased - option.held,
      sold: option.purchased,
      held: option.held,
    },
  };
}
