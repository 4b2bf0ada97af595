import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import { DomainError, ErrorCode, Problem } from '../common/domain.error';

/** A JSON Schema of one attribute, plus the sentence a client reads when its `pattern` fails. */
export type AttributeSchema = Record<string, unknown> & { patternDetail?: string };

/** What a request document for one resource type must contain. */
export interface ResourceDocumentSpec {
  type: string;
  attributes: Record<string, AttributeSchema>;
  requiredAttributes: string[];
  /** Each to-one relationship, by name: the resource type it points at and whether it is required. */
  relationships: Record<string, { type: string; required: boolean }>;
}

/** A validated request document: attribute values and the identifiers of to-one relationships. */
export interface ParsedResource<A> {
  attributes: A;
  relationships: Record<string, { type: string; id: string } | undefined>;
}

const UUID_PATTERN =
  '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const UUID_REGEX = new RegExp(UUID_PATTERN);

export function isUuid(value: string): boolean {
  return UUID_REGEX.test(value);
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
ajv.addVocabulary(['patternDetail']);

const OPEN_OBJECT = { type: 'object' };

function buildSchema(spec: ResourceDocumentSpec): Record<string, unknown> {
  const relationships: Record<string, unknown> = {};
  for (const [name, relationship] of Object.entries(spec.relationships)) {
    relationships[name] = {
      type: 'object',
      required: ['data'],
      additionalProperties: false,
      properties: {
        data: {
          type: 'object',
          required: ['type', 'id'],
          additionalProperties: false,
          properties: {
            type: { type: 'string', const: relationship.type },
            id: { type: 'string', pattern: UUID_PATTERN, patternDetail: 'must be a UUID' },
            meta: OPEN_OBJECT,
          },
        },
        links: OPEN_OBJECT,
        meta: OPEN_OBJECT,
      },
    };
  }
  return {
    type: 'object',
    required: ['data'],
    additionalProperties: false,
    properties: {
      data: {
        type: 'object',
        required: ['type'],
        additionalProperties: false,
        properties: {
          type: { type: 'string', const: spec.type },
          // Allowed through the schema so that a client id gets its own 403, not a 400.
          id: {},
          lid: { type: 'string' },
          attributes: {
            type: 'object',
            default: {},
            required: spec.requiredAttributes,
            additionalProperties: false,
            properties: spec.attributes,
          },
          relationships: {
            type: 'object',
            default: {},
            required: Object.entries(spec.relationships)
              .filter(([, relationship]) => relationship.required)
              .map(([name]) => name),
            additionalProperties: false,
            properties: relationships,
          },
          links: OPEN_OBJECT,
          meta: OPEN_OBJECT,
        },
      },
      meta: OPEN_OBJECT,
      jsonapi: OPEN_OBJECT,
      links: OPEN_OBJECT,
    },
  };
}

/**
 * Validates a request document against a {@link ResourceDocumentSpec} in one pass and reports every
 * problem with a JSON pointer, using the error codes of docs/design.md, Wire contract.
 */
export class ResourceDocumentParser<A> {
  /** The JSON Schema this parser enforces; the OpenAPI document is derived from it (src/openapi). */
  readonly schema: Readonly<Record<string, unknown>>;
  private readonly validate: ValidateFunction;

  constructor(readonly spec: ResourceDocumentSpec) {
    this.schema = buildSchema(spec);
    this.validate = ajv.compile(this.schema);
  }

  parse(body: unknown): ParsedResource<A> {
    if (body === undefined || body === null) {
      throw new DomainError({ code: 'invalid_document', detail: 'The request body is empty.' });
    }
    if (typeof body !== 'object' || Array.isArray(body)) {
      throw new DomainError({
        code: 'invalid_document',
        detail: 'The request body must be a JSON object with a "data" member.',
      });
    }
    const problems = this.validate(body) ? [] : this.toProblems(this.validate.errors ?? []);
    const data = (body as { data?: { id?: unknown; attributes?: unknown } }).data;
    problems.push(...this.unstorableText(data?.attributes, problems));
    if (data && typeof data === 'object' && 'id' in data) {
      problems.push({
        code: 'client_id_unsupported',
        detail: 'Client-generated ids are not supported; omit "id" and the server assigns one.',
        source: { pointer: '/data/id' },
      });
    }
    if (problems.length > 0) throw new DomainError(problems);

    const resource = (body as { data: Record<string, Record<string, unknown>> }).data;
    const relationships: ParsedResource<A>['relationships'] = {};
    for (const name of Object.keys(this.spec.relationships)) {
      const linkage = resource.relationships[name] as
        { data: { type: string; id: string } } | undefined;
      relationships[name] = linkage && {
        type: linkage.data.type,
        id: linkage.data.id.toLowerCase(),
      };
    }
    return { attributes: resource.attributes as A, relationships };
  }

  private toProblems(errors: ErrorObject[]): Problem[] {
    const byPointer = new Map<string, Problem>();
    for (const error of errors) {
      const pointer = pointerOf(error);
      if (byPointer.has(pointer)) continue; // one problem per field: the first is the clearest
      if (byPointer.size === MAX_LISTED_PROBLEMS) {
        const unlisted = new Set(errors.map(pointerOf)).size - MAX_LISTED_PROBLEMS;
        return [
          ...byPointer.values(),
          {
            code: 'invalid_document',
            detail: `${unlisted} more invalid members are not listed (at most ${MAX_LISTED_PROBLEMS} are).`,
          },
        ];
      }
      byPointer.set(pointer, {
        code: codeOf(pointer, error),
        detail: detailOf(pointer, error),
        source: { pointer },
      });
    }
    return [...byPointer.values()];
  }

  /** String attributes the database could not store as sent; one problem per field at most. */
  private unstorableText(attributes: unknown, found: Problem[]): Problem[] {
    if (attributes === null || typeof attributes !== 'object') return [];
    const problems: Problem[] = [];
    for (const name of Object.keys(this.spec.attributes)) {
      const value: unknown = Object.hasOwn(attributes, name)
        ? (attributes as Record<string, unknown>)[name]
        : undefined;
      // Only a string that cannot be stored costs anything (the common case costs one typeof).
      if (typeof value !== 'string' || isStorableText(value)) continue;
      const pointer = `/data/attributes/${escapePointerToken(name)}`;
      if (!found.some((problem) => pointerIn(problem.source) === pointer)) {
        problems.push({
          code: 'invalid_attribute',
          detail: `"${name}" must not contain NUL characters or unpaired UTF-16 surrogates.`,
          source: { pointer },
        });
      }
    }
    return problems;
  }
}

/**
 * A document with tens of thousands of unknown members would otherwise get as many error objects:
 * a response twenty times the size of the request, and a second of CPU to build it. The query
 * parser keeps the same bound.
 */
export const MAX_LISTED_PROBLEMS = 20;

const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * JSON allows `\u0000` and unpaired surrogates in strings; PostgreSQL refuses NUL in text (the
 * driver's statement failed with "invalid message format", answered as 503 unavailable) and stores
 * an unpaired surrogate as U+FFFD (the resource read back would differ from the one announced).
 */
export function isStorableText(value: string): boolean {
  return !value.includes('\u0000') && !UNPAIRED_SURROGATE.test(value);
}

function pointerIn(source: Problem['source']): string | undefined {
  return source && 'pointer' in source ? source.pointer : undefined;
}

function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function pointerOf(error: ErrorObject): string {
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  if (error.keyword === 'required' && params.missingProperty !== undefined) {
    return `${error.instancePath}/${escapePointerToken(params.missingProperty)}`;
  }
  if (error.keyword === 'additionalProperties' && params.additionalProperty !== undefined) {
    return `${error.instancePath}/${escapePointerToken(params.additionalProperty)}`;
  }
  return error.instancePath;
}

function codeOf(pointer: string, error: ErrorObject): ErrorCode {
  if (pointer === '/data/type' && error.keyword === 'const') return 'type_conflict';
  if (pointer.startsWith('/data/attributes/')) return 'invalid_attribute';
  if (pointer.startsWith('/data/relationships/')) return 'invalid_relationship';
  return 'invalid_document';
}

function lastToken(pointer: string): string {
  return pointer
    .slice(pointer.lastIndexOf('/') + 1)
    .replace(/~1/g, '/')
    .replace(/~0/g, '~');
}

function detailOf(pointer: string, error: ErrorObject): string {
  const name = lastToken(pointer) || 'document';
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `"${name}" is required.`;
    case 'additionalProperties':
      if (pointer.startsWith('/data/attributes/')) return `Unknown attribute "${name}".`;
      if (pointer.startsWith('/data/relationships/')) return `Unknown relationship "${name}".`;
      return `Unknown member "${name}".`;
    case 'type':
      return `"${name}" must be ${params.type === 'integer' ? 'an integer' : `of type ${String(params.type)}`}.`;
    case 'const':
      return pointer === '/data/type'
        ? `"type" must be "${String(params.allowedValue)}" on this endpoint.`
        : `"${name}" must be "${String(params.allowedValue)}".`;
    case 'minimum':
      return `"${name}" must be at least ${String(params.limit)}.`;
    case 'maximum':
      return `"${name}" must be at most ${String(params.limit)}.`;
    case 'minLength':
      return `"${name}" must not be empty.`;
    case 'maxLength':
      return `"${name}" must be at most ${String(params.limit)} characters long.`;
    case 'pattern': {
      const schema: AttributeSchema | undefined = error.parentSchema;
      const detail = schema?.patternDetail;
      return `"${name}" ${detail ?? 'has an invalid format'}.`;
    }
    default:
      return `"${name}" is invalid.`;
  }
}
