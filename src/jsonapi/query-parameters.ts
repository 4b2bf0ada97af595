import { DomainError, Problem } from '../common/domain.error';
import { MAX_LISTED_PROBLEMS } from './resource-document';
import { includePaths, QueryRules, resolveIncludePath } from './resource-type';

/** What a request's query string asks of a JSON:API endpoint (JSON:API 1.1 §7). */
export interface JsonApiQuery {
  /**
   * The relationship paths to include; null when `include` was not sent. When it was sent, even
   * empty, the answer has an `included` member (JSON:API: a compound document, maybe `[]`).
   */
  readonly include: ReadonlySet<string> | null;
  /** Sparse fieldsets: for each type named by `fields[TYPE]`, the only fields to keep. */
  readonly fields: ReadonlyMap<string, ReadonlySet<string>>;
}

/** The query of a request that asks nothing (no query string, or only ignored parameters). */
export const NO_QUERY: JsonApiQuery = { include: null, fields: new Map() };

/** The query as Fastify parses it: a repeated name gives an array. */
declare module 'fastify' {
  interface FastifyContextConfig {
    /** The query rules of a JSON:API route (set by its ApiJsonApiOperation decorator). */
    jsonApiQuery?: QueryRules;
  }
}

/**
 * A replayed 201 shaped for the replaying request: its query is checked against the route's
 * rules (400 as the route would answer) and its sparse fieldsets applied to the stored document.
 */
export function shapeReplay(
  request: { query: unknown; routeOptions: { config: { jsonApiQuery?: QueryRules } } },
  document: unknown,
): unknown {
  const rules = request.routeOptions.config.jsonApiQuery;
  if (rules === undefined) return document;
  return applySparseFieldsets(document, parseJsonApiQuery(request.query as RawQuery, rules));
}

export type RawQuery = Readonly<Record<string, string | string[] | undefined>>;

/** JSON:API reserves the names made of a–z only; implementation names need another character. */
const RESERVED_NAME = /^[a-z]+$/;
/** A parameter family: a base name, then bracketed segments (`fields[purchases]`). */
const FAMILY = /^([^[\]]+)((?:\[[^[\]]*\])+)$/;
const UNSUPPORTED_ON_SINGLE_RESOURCES = new Set(['sort', 'page', 'filter']);

interface Parsing {
  rules: QueryRules;
  include: Set<string> | null;
  fields: Map<string, Set<string>> | null;
  problems: Problem[];
}

/**
 * Reads a query against an endpoint's rules: `include` and `fields[TYPE]` are honoured,
 * `sort`/`page`/`filter` and every other name of only a–z are refused, names with another
 * character are the implementation's and ignored. Throws one DomainError listing every invalid
 * parameter (`invalid_query_parameter`, `source.parameter` as sent); see docs/design.md, Query
 * parameters.
 */
export function parseJsonApiQuery(query: RawQuery | undefined, rules: QueryRules): JsonApiQuery {
  let parsing: Parsing | undefined;
  for (const name in query) {
    const family = familyOf(name);
    if (family === 'ignored') continue;
    parsing ??= { rules, include: null, fields: null, problems: [] };
    if (family === 'malformed') {
      refuse(
        parsing,
        name,
        `"${name}" is not a valid query parameter name (brackets only after a base name, as in fields[TYPE]).`,
      );
    } else {
      readParameter(parsing, name, family, query[name]);
    }
  }
  if (parsing === undefined) return NO_QUERY; // the fast path: nothing JSON:API in the query
  if (parsing.problems.length > 0) throw new DomainError(bounded(parsing.problems));
  return { include: parsing.include, fields: parsing.fields ?? NO_QUERY.fields };
}

type Family = 'ignored' | 'malformed' | { base: string; segments: string[] };

function familyOf(name: string): Family {
  if (!name.includes('[') && !name.includes(']')) {
    return RESERVED_NAME.test(name) ? { base: name, segments: [] } : 'ignored';
  }
  const match = FAMILY.exec(name);
  if (!match) return 'malformed';
  if (!RESERVED_NAME.test(match[1])) return 'ignored';
  return { base: match[1], segments: match[2].slice(1, -1).split('][') };
}

function readParameter(
  parsing: Parsing,
  name: string,
  { base, segments }: { base: string; segments: string[] },
  value: string | string[] | undefined,
): void {
  if (typeof value !== 'string') {
    return refuse(parsing, name, `"${name}" is given more than once; send it once.`);
  }
  if (base === 'include' && segments.length === 0) return readInclude(parsing, value);
  if (base === 'fields') {
    if (segments.length === 1) return readFieldset(parsing, name, segments[0], value);
    return refuse(parsing, name, `"${name}" must name one resource type, as in fields[TYPE].`);
  }
  if (UNSUPPORTED_ON_SINGLE_RESOURCES.has(base)) {
    return refuse(parsing, name, `"${base}" is not supported: this endpoint returns one resource.`);
  }
  refuse(
    parsing,
    name,
    `"${name}" is not a query parameter of this API (JSON:API reserves names of only a-z; implementation-specific names need another character).`,
  );
}

function readInclude(parsing: Parsing, value: string): void {
  const { primary, include } = parsing.rules;
  if (!include) {
    return refuse(parsing, 'include', `This endpoint does not support "include".`);
  }
  parsing.include = new Set();
  if (value === '') return; // JSON:API: an empty value asks for no related resources
  const allowed = includePaths(primary).join(', ');
  for (const path of value.split(',')) {
    if (resolveIncludePath(primary, path) === undefined) {
      refuse(
        parsing,
        'include',
        `${primary.type} have no relationship path ${JSON.stringify(path)} to include; allowed: ${allowed}.`,
      );
    } else {
      parsing.include.add(path);
    }
  }
}

function readFieldset(parsing: Parsing, name: string, type: string, value: string): void {
  const resourceType = parsing.rules.types.get(type);
  if (resourceType === undefined) {
    const known = [...parsing.rules.types.keys()].join(', ');
    return refuse(
      parsing,
      name,
      `${JSON.stringify(type)} is not a resource type this endpoint returns (${known}).`,
    );
  }
  // JSON:API: an empty value asks for no fields at all.
  const names = value === '' ? [] : value.split(',');
  const unknown = names.filter((field) => !resourceType.fields.has(field));
  if (unknown.length > 0) {
    return refuse(
      parsing,
      name,
      `${type} have no field ${unknown.map((field) => JSON.stringify(field)).join(', ')}; fields: ${[...resourceType.fields].join(', ')}.`,
    );
  }
  parsing.fields ??= new Map();
  parsing.fields.set(type, new Set(names));
}

function refuse(parsing: Parsing, parameter: string, detail: string): void {
  parsing.problems.push({ code: 'invalid_query_parameter', detail, source: { parameter } });
}

/** At most MAX_LISTED_PROBLEMS error objects, as for bodies: a URL holds thousands of names. */
function bounded(problems: Problem[]): Problem[] {
  if (problems.length <= MAX_LISTED_PROBLEMS) return problems;
  const [firstUnlisted] = problems.slice(MAX_LISTED_PROBLEMS);
  return [
    ...problems.slice(0, MAX_LISTED_PROBLEMS),
    {
      ...firstUnlisted,
      detail: `${problems.length - MAX_LISTED_PROBLEMS} more invalid query parameters, from this one on, are not listed (at most ${MAX_LISTED_PROBLEMS} are).`,
    },
  ];
}

/** The members of a resource object that hold its fields (JSON:API: attributes, relationships). */
const FIELD_MEMBERS = ['attributes', 'relationships'];

/**
 * Keeps, in every resource object of a type named by `fields[TYPE]` (primary data and
 * `included`), only the listed attributes and relationships; `type`, `id`, `links` and `meta`
 * stay, and so do the `attributes`/`relationships` members (maybe empty). Never mutates the
 * document: a replayed one (src/idempotency) is shared.
 */
export function applySparseFieldsets<D>(document: D, query: Pick<JsonApiQuery, 'fields'>): D {
  const { fields } = query;
  if (fields.size === 0 || document === null || typeof document !== 'object') return document;
  const result: Record<string, unknown> = { ...(document as Record<string, unknown>) };
  const { data, included } = result;
  if (data !== undefined) {
    result.data = Array.isArray(data)
      ? data.map((resource) => sparseResource(resource, fields))
      : sparseResource(data, fields);
  }
  if (Array.isArray(included)) {
    result.included = included.map((resource) => sparseResource(resource, fields));
  }
  return result as D;
}

function sparseResource(resource: unknown, fields: JsonApiQuery['fields']): unknown {
  if (resource === null || typeof resource !== 'object') return resource;
  const result: Record<string, unknown> = { ...resource };
  const keep = typeof result.type === 'string' ? fields.get(result.type) : undefined;
  if (keep === undefined) return resource;
  for (const member of FIELD_MEMBERS) {
    const members = result[member];
    if (members !== null && typeof members === 'object') {
      result[member] = Object.fromEntries(
        Object.entries(members).filter(([name]) => keep.has(name)),
      );
    }
  }
  return result;
}

/** The `included` member: one resource object per type and id (JSON:API: no duplicates). */
export function includedResources<R extends { type: string; id: string }>(resources: R[]): R[] {
  const seen = new Set<string>();
  return resources.filter((resource) => {
    const key = `${resource.type}\u0000${resource.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
