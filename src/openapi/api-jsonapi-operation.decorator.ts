import { applyDecorators } from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiHeader,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiResponse,
} from '@nestjs/swagger';
import { RouteConfig } from '@nestjs/platform-fastify';
import type { ErrorCode } from '../common/domain.error';
import { IDEMPOTENT_ROUTE_CONFIG } from '../idempotency/idempotency-claim';
import { ERROR_CATALOG } from '../jsonapi/error-catalog';
import { JSONAPI_MEDIA_TYPE } from '../jsonapi/media-type';
import { includePaths, QueryRules } from '../jsonapi/resource-type';
import { HEADERS, headerRef, IDEMPOTENCY_KEY_HEADER } from './openapi.headers';
import {
  ERROR_MEANINGS,
  errorDocumentSchema,
  REQUEST_EXAMPLES,
  RequestSchemaName,
  SchemaName,
  schemaRef,
} from './openapi.schemas';

export interface JsonApiOperationOptions {
  summary: string;
  description?: string;
  /** Component schema of the request document (routes with a body). */
  requestBody?: RequestSchemaName;
  /** No schema: a 204 (no body). */
  success: { status: 200 | 201 | 204; schema?: SchemaName; description: string };
  /** What the `:id` path parameter names, when the route has one. */
  pathId?: string;
  /**
   * The errors only this route gives. Those of every route, of every route with a body and of
   * every idempotent route are added here, so that no route can forget them.
   */
  errors?: ErrorCode[];
  /** Accepts `Idempotency-Key` (the POST routes): documents it and opts the route in. */
  idempotent?: boolean;
  /** The query parameters it honours (the same rules its query pipe enforces); none if absent. */
  query?: QueryRules;
}

/** Every JSON:API route: query parameters, content negotiation, the unexpected, the unavailable. */
const EVERY_ROUTE: ErrorCode[] = [
  'invalid_query_parameter',
  'not_acceptable',
  'internal_error',
  'unavailable',
];
/** Whatever the document parser (and Fastify's body handling) can refuse. */
const BODY_PARSER: ErrorCode[] = [
  'invalid_document',
  'client_id_unsupported',
  'type_conflict',
  'payload_too_large',
  'unsupported_media_type',
];
const IDEMPOTENCY: ErrorCode[] = [
  'invalid_header',
  'idempotency_key_reused',
  'idempotency_key_in_flight',
];
/** The parser reports every problem at once; mixed statuses are answered 400 (JSON:API §7). */
const MIXED_INTO_400: ErrorCode[] = ['client_id_unsupported', 'type_conflict'];

/**
 * Documents one JSON:API route: request document, success document and every error response,
 * grouped by status, each restricted to the error codes that status can carry on this route.
 */
export function ApiJsonApiOperation(options: JsonApiOperationOptions): MethodDecorator {
  const codes = new Set<ErrorCode>([
    ...EVERY_ROUTE,
    ...(options.requestBody ? BODY_PARSER : []),
    ...(options.idempotent ? IDEMPOTENCY : []),
    ...(options.errors ?? []),
  ]);
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of Object.keys(ERROR_CATALOG) as ErrorCode[]) {
    if (!codes.has(code)) continue;
    const { status } = ERROR_CATALOG[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }

  const decorators: Array<MethodDecorator | ClassDecorator> = [
    ApiOperation({ summary: options.summary, description: options.description }),
    ApiProduces(JSONAPI_MEDIA_TYPE),
    ApiResponse({
      status: options.success.status,
      description: options.success.description,
      ...(options.success.schema ? { schema: schemaRef(options.success.schema) } : {}),
      headers: successHeaders(options),
    }),
  ];
  for (const [status, statusCodes] of [...byStatus].sort(([a], [b]) => a - b)) {
    decorators.push(errorResponse(status, statusCodes, options));
  }
  if (options.requestBody) {
    decorators.push(
      ApiConsumes(JSONAPI_MEDIA_TYPE, 'application/json'),
      ApiBody({
        required: true,
        description:
          'A JSON:API document, sent as `application/vnd.api+json` (or `application/json`).',
        schema: schemaRef(options.requestBody),
        examples: { example: { value: REQUEST_EXAMPLES[options.requestBody] } },
      }),
    );
  }
  if (options.pathId) {
    decorators.push(
      ApiParam({
        name: 'id',
        required: true,
        description: `${options.pathId} An id that is not a UUID names no resource: 404 \`not_found\`.`,
        schema: { type: 'string', format: 'uuid' },
      }),
    );
  }
  // The one place a route opts in to Idempotency-Key (its documentation and its route config)
  // and declares its query rules (for replays, which answer before the handler's query pipe).
  if (options.idempotent) decorators.push(ApiHeader(IDEMPOTENCY_KEY_HEADER));
  decorators.push(
    RouteConfig({
      ...(options.idempotent ? IDEMPOTENT_ROUTE_CONFIG : {}),
      ...(options.query ? { jsonApiQuery: options.query } : {}),
    }),
    ...(options.query ? queryParameters(options.query) : []),
  );
  return applyDecorators(...decorators);
}

/** `include` (where honoured) and one `fields[TYPE]` per type a response can hold. */
function queryParameters(rules: QueryRules): MethodDecorator[] {
  const list = (values: Iterable<string>) => ({
    type: 'array' as const,
    items: { type: 'string' as const, enum: [...values] },
  });
  const parameters: MethodDecorator[] = [];
  if (rules.include) {
    parameters.push(
      ApiQuery({
        name: 'include',
        required: false,
        description:
          'Relationship paths to include, comma-separated: the related resources come in `included` (a compound document; `include=` gives an empty one). Any other path is 400 `invalid_query_parameter`.',
        schema: list(includePaths(rules.primary)),
        style: 'form',
        explode: false,
      }),
    );
  }
  for (const [type, resource] of rules.types) {
    parameters.push(
      ApiQuery({
        name: `fields[${type}]`,
        required: false,
        description: `Sparse fieldset: only these fields of every \`${type}\` resource object, comma-separated (empty: none). Unknown names are 400 \`invalid_query_parameter\`.`,
        schema: list(resource.fields),
        style: 'form',
        explode: false,
      }),
    );
  }
  return parameters;
}

function successHeaders(options: JsonApiOperationOptions) {
  return {
    'X-Request-Id': headerRef(HEADERS.requestId),
    ...(options.success.status === 201 ? { Location: headerRef(HEADERS.location) } : {}),
    ...(options.idempotent ? { 'Idempotent-Replayed': headerRef(HEADERS.replayed) } : {}),
  };
}

function errorResponse(
  status: number,
  codes: ErrorCode[],
  options: JsonApiOperationOptions,
): MethodDecorator & ClassDecorator {
  const variants =
    status === 400 && options.requestBody ? unique([...codes, ...MIXED_INTO_400]) : codes;
  const lines = codes.map((code) => `- \`${code}\`: ${ERROR_MEANINGS[code]}.`);
  if (variants.length > codes.length) {
    lines.push(
      '',
      'When problems of different statuses are found together, the response is 400 and each error object keeps its own `status`.',
    );
  }
  return ApiResponse({
    status,
    description: lines.join('\n'),
    schema: errorDocumentSchema(variants),
    headers: {
      'X-Request-Id': headerRef(HEADERS.requestId),
      ...(status === 503 ? { 'Retry-After': headerRef(HEADERS.retryAfter) } : {}),
      // A refusal for lack of tickets, or of a reservation in a final state, is final: stored
      // and replayed like a 201.
      ...(options.idempotent && codes.some((code) => FINAL_REFUSALS.has(code))
        ? { 'Idempotent-Replayed': headerRef(HEADERS.replayed) }
        : {}),
    },
  });
}

const FINAL_REFUSALS = new Set<ErrorCode>([
  'invalid_purchase_quantity',
  'invalid_reservation_quantity',
  'reservation_expired',
  'reservation_released',
  'reservation_confirmed',
]);

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}
