import { Injectable, PipeTransform } from '@nestjs/common';
import { NotFoundError } from '../common/domain.error';
import { JsonApiQuery, parseJsonApiQuery, RawQuery } from './query-parameters';
import { isUuid, ParsedResource } from './resource-document';
import type { QueryRules } from './resource-type';

/** Anything that validates a request body into a typed document (e.g. a ResourceDocumentParser). */
export interface DocumentParser<T> {
  parse(body: unknown): T;
}

/** Validates a request body against one resource document spec (see resource-document.ts). */
@Injectable()
export class JsonApiBodyPipe<T = ParsedResource<unknown>> implements PipeTransform<unknown, T> {
  constructor(private readonly parser: DocumentParser<T>) {}

  transform(body: unknown): T {
    return this.parser.parse(body);
  }
}

/** An id in the path that is not a UUID names no resource: 404, not 400 (docs/design.md, Wire contract). */
@Injectable()
export class UuidPathPipe implements PipeTransform<string, string> {
  transform(id: string): string {
    return uuidPathId(id);
  }
}

/** The id of a path, lower-cased; 404 when it is not a UUID. */
export function uuidPathId(id: string): string {
  if (!isUuid(id)) throw new NotFoundError(`No resource has the id ${JSON.stringify(id)}.`);
  return id.toLowerCase();
}

/** Reads the query string against one endpoint's rules (see query-parameters.ts). */
@Injectable()
export class JsonApiQueryPipe implements PipeTransform<RawQuery | undefined, JsonApiQuery> {
  constructor(private readonly rules: QueryRules) {}

  transform(query: RawQuery | undefined): JsonApiQuery {
    return parseJsonApiQuery(query, this.rules);
  }
}
