import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { parseJsonApiQuery, RawQuery } from './query-parameters';
import { NotFoundError } from '../common/domain.error';
import { isUuid } from './resource-document';
import type { QueryRules } from './resource-type';

/*
 * The request's body, query and path id, validated (what Nest pipes would do) by custom
 * parameter decorators: Nest hands a custom parameter that has no pipe its value
 * synchronously, where each piped parameter costs a chain of promises on every request. A refusal
 * is the same DomainError, thrown to the exception filter; when several parameters are refused,
 * the first one in parameter order is answered, as with pipes.
 */

/** Anything that validates a request body into a typed document (e.g. a ResourceDocumentParser). */
export interface DocumentParser<T> {
  parse(body: unknown): T;
}

/** The id of a path, lower-cased; 404 when it is not a UUID (docs/design.md, Wire contract). */
export function uuidPathId(id: string): string {
  if (!isUuid(id)) throw new NotFoundError(`No resource has the id ${JSON.stringify(id)}.`);
  return id.toLowerCase();
}

/**
 * The request: argument 0 of an HTTP handler's context. Not `switchToHttp().getRequest()`, which
 * first assigns three new closures to the context, on every parameter of every request.
 */
const requestOf = (context: ExecutionContext) => context.getArgByIndex<FastifyRequest>(0);

/** The request document, parsed against `parser` (e.g. a ResourceDocumentParser). */
export const JsonApiBody = createParamDecorator(
  (parser: DocumentParser<unknown>, context: ExecutionContext) =>
    parser.parse(requestOf(context).body),
);

/** The query string, read against one endpoint's rules (see query-parameters.ts). */
export const JsonApiQueryOf = createParamDecorator((rules: QueryRules, context: ExecutionContext) =>
  parseJsonApiQuery(requestOf(context).query as RawQuery | undefined, rules),
);

/** The path parameter `name`: a UUID, lower-cased, or 404 (docs/design.md, Wire contract). */
export const UuidPathParam = createParamDecorator((name: string, context: ExecutionContext) =>
  uuidPathId((requestOf(context).params as Record<string, string>)[name]),
);
