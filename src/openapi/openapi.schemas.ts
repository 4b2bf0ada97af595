import type { ErrorCode } from '../common/domain.error';
import { ERROR_CATALOG } from '../jsonapi/error-catalog';
import type { ResourceDocumentParser, ResourceDocumentSpec } from '../jsonapi/resource-document';
import type { QueryRules } from '../jsonapi/resource-type';
import {
  confirmationParser,
  nestedPurchaseParser,
  PURCHASE_READ_QUERY,
  purchaseParser,
  purchasePath,
  PURCHASES_TYPE,
} from '../purchases/purchase.document';
import {
  nestedReservationParser,
  RESERVATION_READ_QUERY,
  RESERVATION_RESPONSE_SPEC,
  reservationParser,
  reservationPath,
  RESERVATIONS_TYPE,
} from '../reservations/reservation.document';
import {
  createTicketOptionParser,
  MAX_INT32,
  ticketOptionPath,
  TICKET_OPTIONS_TYPE,
} from '../ticket-options/ticket-option.document';

/** A JSON Schema (OpenAPI 3.1 schemas are JSON Schema 2020-12). */
export type JsonSchema = Record<string, unknown>;

/** Names of the component schemas the controllers' decorators refer to. */
export const SCHEMAS = {
  ticketOptionRequest: 'TicketOptionCreateDocument',
  purchaseRequest: 'PurchaseCreateDocument',
  nestedPurchaseRequest: 'NestedPurchaseCreateDocument',
  ticketOption: 'TicketOptionDocument',
  purchase: 'PurchaseDocument',
  /** The purchase read: `included` when `include` was sent. */
  purchaseCompound: 'PurchaseCompoundDocument',
  ticketOptionResource: 'TicketOptionResource',
  purchaseResource: 'PurchaseResource',
  reservationRequest: 'ReservationCreateDocument',
  nestedReservationRequest: 'NestedReservationCreateDocument',
  reservation: 'ReservationDocument',
  /** The reservation read: `included` when `include` was sent. */
  reservationCompound: 'ReservationCompoundDocument',
  reservationResource: 'ReservationResource',
  errorSource: 'ErrorSource',
} as const;

/** The component schema of each type's resource object, for `included` (by `type`). */
const RESOURCE_SCHEMA_OF: Record<string, string> = {
  [TICKET_OPTIONS_TYPE]: SCHEMAS.ticketOptionResource,
  [PURCHASES_TYPE]: SCHEMAS.purchaseResource,
  [RESERVATIONS_TYPE]: SCHEMAS.reservationResource,
};
export type SchemaName = (typeof SCHEMAS)[keyof typeof SCHEMAS];
export type RequestSchemaName =
  | typeof SCHEMAS.ticketOptionRequest
  | typeof SCHEMAS.purchaseRequest
  | typeof SCHEMAS.nestedPurchaseRequest
  | typeof SCHEMAS.reservationRequest
  | typeof SCHEMAS.nestedReservationRequest;

const EXAMPLE_USER = { type: 'users', id: '6f1f7b5e-8c1e-4a52-9d8e-0a4f6f7c1b11' };
const EXAMPLE_OPTION = { type: 'ticket_options', id: '0b5d8c0e-3f4a-4c1e-9a55-6f0d2b8e7a10' };

/** One valid request document per request schema, for Swagger UI's "Try it out". */
export const REQUEST_EXAMPLES: Record<RequestSchemaName, unknown> = {
  [SCHEMAS.ticketOptionRequest]: {
    data: {
      type: 'ticket_options',
      attributes: { name: 'example', description: 'sample description', allocation: 100 },
    },
  },
  [SCHEMAS.purchaseRequest]: {
    data: {
      type: 'purchases',
      attributes: { quantity: 2 },
      relationships: { ticket_option: { data: EXAMPLE_OPTION }, user: { data: EXAMPLE_USER } },
    },
  },
  [SCHEMAS.nestedPurchaseRequest]: {
    data: {
      type: 'purchases',
      attributes: { quantity: 2 },
      relationships: { user: { data: EXAMPLE_USER } },
    },
  },
  [SCHEMAS.reservationRequest]: {
    data: {
      type: 'reservations',
      attributes: { quantity: 2, ttl_seconds: 600 },
      relationships: { ticket_option: { data: EXAMPLE_OPTION }, user: { data: EXAMPLE_USER } },
    },
  },
  [SCHEMAS.nestedReservationRequest]: {
    data: {
      type: 'reservations',
      attributes: { quantity: 2, ttl_seconds: 600 },
      relationships: { user: { data: EXAMPLE_USER } },
    },
  },
};

export function schemaRef(name: string): { $ref: string } {
  return { $ref: `#/components/schemas/${name}` };
}

/** What each error code means to a client (docs/design.md, Error catalog); shown in every response description. */
export const ERROR_MEANINGS: Record<ErrorCode, string> = {
  invalid_document:
    'the body is not JSON, not an object, has no `data` object, has an unknown top-level member or a `__proto__` member, or its Content-Length is wrong',
  invalid_attribute: 'an attribute is missing, of the wrong type, out of range or unknown',
  invalid_relationship:
    'a relationship is missing, malformed, of the wrong type, its id is not a UUID, or it is unknown',
  invalid_purchase_quantity: 'more tickets were asked for than remain; nothing was sold',
  invalid_reservation_quantity: 'more tickets were asked for than remain; nothing was held',
  reservation_expired:
    'the reservation passed its `expires_at` (by the database clock): it cannot be confirmed',
  reservation_released: 'the reservation was released: it cannot be confirmed',
  reservation_confirmed:
    'the reservation is already confirmed (a retry with the same `Idempotency-Key` replays its 201 instead)',
  client_id_unsupported: 'the document carries a client-generated `data.id`',
  not_found: 'no resource has this id (or the id is not a UUID)',
  invalid_query_parameter:
    'a query parameter is not supported here (`sort`, `page[…]`, `filter[…]`, `include` where nothing can be included, any other name of only a–z), is repeated or malformed, or names an unknown include path, resource type or field; `source.parameter` is the parameter as sent',
  not_acceptable:
    '`Accept` lists `application/vnd.api+json` only with parameters other than `ext`/`profile`',
  type_conflict: '`data.type` is not the type this endpoint creates',
  id_conflict:
    'the `ticket_option` relationship names another option than the path, or a relationship of a confirmation is not the reservation’s',
  idempotency_key_in_flight:
    'a request with the same `Idempotency-Key` is still being processed; retry later',
  payload_too_large: 'the body exceeds the size limit (`BODY_LIMIT_BYTES`)',
  invalid_header:
    'a request header is malformed (an `Idempotency-Key` must be 1–255 printable ASCII characters)',
  unsupported_media_type:
    'the body is not sent as `application/vnd.api+json` (parameters `ext`/`profile` only) or `application/json` (`charset=utf-8` only)',
  idempotency_key_reused: 'the `Idempotency-Key` was already used with a different request',
  internal_error: 'an unexpected failure; details go to the log only, under the request id',
  unavailable:
    'the database is unreachable, the ticket option is overloaded or contended, or the instance is shutting down; retry after `Retry-After` seconds',
};

/**
 * Where each code points, when the server always says so: this makes the `source` of an error
 * object part of the documented contract, not only its presence.
 */
const SOURCE_OF: Partial<Record<ErrorCode, JsonSchema>> = {
  invalid_attribute: pointerSource('^/data/attributes/'),
  invalid_relationship: pointerSource('^/data/relationships/'),
  invalid_purchase_quantity: pointerSource('^/data/attributes/quantity$'),
  invalid_reservation_quantity: pointerSource('^/data/attributes/quantity$'),
  client_id_unsupported: pointerSource('^/data/id$'),
  type_conflict: pointerSource('^/data/type$'),
  id_conflict: pointerSource('^/data/relationships/(ticket_option|user|reservation)/data/id$'),
  not_acceptable: parameterSource('Accept'),
  unsupported_media_type: parameterSource('Content-Type'),
  invalid_header: parameterSource(),
  invalid_query_parameter: parameterSource(),
  idempotency_key_reused: parameterSource('Idempotency-Key'),
  idempotency_key_in_flight: parameterSource('Idempotency-Key'),
};

function pointerSource(pattern: string): JsonSchema {
  return {
    type: 'object',
    required: ['pointer'],
    additionalProperties: false,
    properties: { pointer: { type: 'string', pattern } },
  };
}

function parameterSource(name?: string): JsonSchema {
  return {
    type: 'object',
    required: ['parameter'],
    additionalProperties: false,
    properties: { parameter: name ? { type: 'string', const: name } : { type: 'string' } },
  };
}

/** `invalid_attribute` → `InvalidAttributeError`: the component name of that error object. */
export function errorSchemaName(code: ErrorCode): string {
  const pascal = code.replace(/(^|_)([a-z])/g, (_match, _sep, letter: string) =>
    letter.toUpperCase(),
  );
  return pascal.endsWith('Error') ? pascal : `${pascal}Error`;
}

/** One error object per code: status and title are fixed by the catalog, so the schema says so. */
function errorObjectSchema(code: ErrorCode): JsonSchema {
  const { status, title } = ERROR_CATALOG[code];
  const source = SOURCE_OF[code];
  return {
    type: 'object',
    description: `\`${code}\`: ${ERROR_MEANINGS[code]}.`,
    required: source
      ? ['status', 'code', 'title', 'detail', 'source']
      : ['status', 'code', 'title', 'detail'],
    additionalProperties: false,
    properties: {
      status: {
        type: 'string',
        const: String(status),
        description: 'The HTTP status, as a string.',
      },
      code: { type: 'string', const: code },
      title: { type: 'string', const: title },
      detail: { type: 'string', description: 'What is wrong with this request, for a human.' },
      source: source ?? schemaRef(SCHEMAS.errorSource),
    },
  };
}

/** A JSON:API error document whose error objects may only carry the given codes. */
export function errorDocumentSchema(codes: readonly ErrorCode[]): JsonSchema {
  const variants = codes.map((code) => schemaRef(errorSchemaName(code)));
  return {
    type: 'object',
    required: ['errors'],
    additionalProperties: false,
    properties: {
      errors: {
        type: 'array',
        minItems: 1,
        items: variants.length === 1 ? variants[0] : { oneOf: variants },
      },
    },
  };
}

/**
 * The request schema of a parser, as the OpenAPI document shows it: the very schema ajv enforces,
 * minus what only the parser needs (`patternDetail` becomes a description; the tolerated `data.id`,
 * which the parser answers with its own 403, is left out so the document says "no client ids").
 */
function requestDocumentSchema(parser: ResourceDocumentParser<unknown>): JsonSchema {
  const schema = withoutParserKeywords(structuredClone(parser.schema));
  const data = (schema.properties as Record<string, JsonSchema>).data;
  delete (data.properties as Record<string, JsonSchema>).id;
  data.description =
    'The resource to create. The server assigns its `id`; a client-generated `id` is refused with 403 `client_id_unsupported`.';
  return schema;
}

function withoutParserKeywords(schema: unknown): JsonSchema {
  if (Array.isArray(schema)) return schema.map(withoutParserKeywords) as unknown as JsonSchema;
  if (schema === null || typeof schema !== 'object') return schema as JsonSchema;
  const result: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'patternDetail') {
      const sentence = String(value);
      result.description ??= `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}.`;
      continue;
    }
    result[key] = withoutParserKeywords(value);
  }
  return result;
}

const UUID: JsonSchema = { type: 'string', format: 'uuid' };

const SPARSE_NOTE = (type: string) =>
  `Every field is present unless \`fields[${type}]\` leaves it out (sparse fieldsets).`;

/**
 * The resource object of one type in responses, from the same spec as its request document.
 * Attributes and relationships are not `required`: a sparse fieldset may leave any of them out.
 */
function resourceObjectSchema(
  spec: ResourceDocumentSpec,
  selfPath: (id: string) => string,
  responseOnly: ResponseOnlyFields = {},
): JsonSchema {
  const attributes = {
    ...withoutParserKeywords(structuredClone(spec.attributes)),
    ...responseOnly.attributes,
  };
  const nullable = new Set(responseOnly.nullableRelationships ?? []);
  const relationships = Object.entries({
    ...spec.relationships,
    ...responseOnly.relationships,
  });
  const members = relationships.length ? ['attributes', 'relationships'] : ['attributes'];
  return {
    type: 'object',
    required: ['type', 'id', ...members, 'links'],
    additionalProperties: false,
    properties: {
      type: { type: 'string', const: spec.type },
      id: UUID,
      attributes: {
        type: 'object',
        description: SPARSE_NOTE(spec.type),
        additionalProperties: false,
        properties: attributes,
      },
      ...(relationships.length
        ? {
            relationships: {
              type: 'object',
              description: SPARSE_NOTE(spec.type),
              additionalProperties: false,
              properties: Object.fromEntries(
                relationships.map(([name, { type }]) => [
                  name,
                  toOneLinkageSchema(type, nullable.has(name)),
                ]),
              ),
            },
          }
        : {}),
      links: {
        type: 'object',
        required: ['self'],
        additionalProperties: false,
        properties: {
          self: { type: 'string', pattern: `^${selfPath('[0-9a-f-]{36}')}$` },
        },
      },
    },
  };
}

/** What responses show beyond what requests send (e.g. a status, a relationship set later). */
interface ResponseOnlyFields {
  attributes?: Record<string, JsonSchema>;
  relationships?: Record<string, { type: string; required: boolean }>;
  /** To-one relationships whose `data` may be null (not set yet). */
  nullableRelationships?: string[];
}

function toOneLinkageSchema(type: string, nullable = false): JsonSchema {
  const identifier: JsonSchema = {
    type: 'object',
    required: ['type', 'id'],
    additionalProperties: false,
    properties: { type: { type: 'string', const: type }, id: UUID },
  };
  return {
    type: 'object',
    required: ['data'],
    additionalProperties: false,
    properties: { data: nullable ? { oneOf: [identifier, { type: 'null' }] } : identifier },
  };
}

const TIMESTAMP: JsonSchema = {
  type: 'string',
  format: 'date-time',
  description: 'RFC 3339, UTC, from the database clock.',
};

const PURCHASE_RESPONSE_ONLY: ResponseOnlyFields = {
  attributes: {
    status: {
      type: 'string',
      enum: ['completed', 'cancelled'],
      description: '`cancelled` once `DELETE /purchases/:id` returned its tickets.',
    },
    cancelled_at: { oneOf: [TIMESTAMP, { type: 'null' }] },
  },
  nullableRelationships: ['reservation'],
};

const RESERVATION_RESPONSE_ONLY: ResponseOnlyFields = {
  attributes: {
    status: {
      type: 'string',
      enum: ['held', 'confirmed', 'released', 'expired'],
      description: '`expired` as soon as `expires_at` has passed, whether or not it was swept.',
    },
    expires_at: TIMESTAMP,
    created_at: TIMESTAMP,
  },
  relationships: { purchase: { type: PURCHASES_TYPE, required: false } },
  nullableRelationships: ['purchase'],
};

/** A document whose primary data is one resource object; `included` when the rules allow it. */
function resourceDocumentSchema(
  resource: string,
  options: { meta?: JsonSchema; includes?: QueryRules } = {},
): JsonSchema {
  const properties: JsonSchema = { data: schemaRef(resource) };
  if (options.meta) properties.meta = options.meta;
  const included = [...(options.includes?.types.keys() ?? [])]
    .filter((type) => type !== options.includes?.primary.type)
    .map((type) => schemaRef(RESOURCE_SCHEMA_OF[type]));
  if (included.length > 0) {
    properties.included = {
      type: 'array',
      description:
        'Present when `include` was sent (empty for `include=`): each related resource once.',
      items: included.length === 1 ? included[0] : { oneOf: included },
    };
  }
  return {
    type: 'object',
    required: options.meta ? ['data', 'meta'] : ['data'],
    additionalProperties: false,
    properties,
  };
}

const COUNT: JsonSchema = { type: 'integer', minimum: 0, maximum: MAX_INT32 };

const TICKET_OPTION_META: JsonSchema = {
  type: 'object',
  required: ['remaining', 'sold', 'held'],
  additionalProperties: false,
  properties: {
    remaining: {
      ...COUNT,
      description:
        'Tickets still available now (`allocation - sold - held`); `attributes.allocation` is the original total.',
    },
    sold: { ...COUNT, description: 'Tickets of purchases not cancelled.' },
    held: { ...COUNT, description: 'Tickets held by reservations that have not expired.' },
  },
};

/** Every component schema of the document: request documents, response documents, errors. */
export function componentSchemas(): Record<string, JsonSchema> {
  const errors = Object.fromEntries(
    (Object.keys(ERROR_CATALOG) as ErrorCode[]).map((code) => [
      errorSchemaName(code),
      errorObjectSchema(code),
    ]),
  );
  return {
    [SCHEMAS.ticketOptionRequest]: requestDocumentSchema(createTicketOptionParser),
    // A purchase POST is a direct purchase, or (naming a reservation) its confirmation.
    [SCHEMAS.purchaseRequest]: {
      oneOf: [requestDocumentSchema(purchaseParser), requestDocumentSchema(confirmationParser)],
    },
    [SCHEMAS.nestedPurchaseRequest]: {
      oneOf: [
        requestDocumentSchema(nestedPurchaseParser),
        requestDocumentSchema(confirmationParser),
      ],
    },
    [SCHEMAS.reservationRequest]: requestDocumentSchema(reservationParser),
    [SCHEMAS.nestedReservationRequest]: requestDocumentSchema(nestedReservationParser),
    [SCHEMAS.ticketOptionResource]: resourceObjectSchema(
      createTicketOptionParser.spec,
      ticketOptionPath,
    ),
    [SCHEMAS.purchaseResource]: resourceObjectSchema(
      confirmationParser.spec,
      purchasePath,
      PURCHASE_RESPONSE_ONLY,
    ),
    [SCHEMAS.reservationResource]: resourceObjectSchema(
      RESERVATION_RESPONSE_SPEC,
      reservationPath,
      RESERVATION_RESPONSE_ONLY,
    ),
    [SCHEMAS.reservation]: resourceDocumentSchema(SCHEMAS.reservationResource),
    [SCHEMAS.reservationCompound]: resourceDocumentSchema(SCHEMAS.reservationResource, {
      includes: RESERVATION_READ_QUERY,
    }),
    [SCHEMAS.ticketOption]: resourceDocumentSchema(SCHEMAS.ticketOptionResource, {
      meta: TICKET_OPTION_META,
    }),
    [SCHEMAS.purchase]: resourceDocumentSchema(SCHEMAS.purchaseResource),
    [SCHEMAS.purchaseCompound]: resourceDocumentSchema(SCHEMAS.purchaseResource, {
      includes: PURCHASE_READ_QUERY,
    }),
    [SCHEMAS.errorSource]: {
      description:
        'Where the problem lies: a JSON pointer into the body, or a header or query parameter name.',
      oneOf: [pointerSource('^(/.*)?$'), parameterSource()],
    },
    ...errors,
  };
}
