import type { ResourceDocumentSpec } from './resource-document';

/**
 * A resource type as responses show it, for the query parameters (JSON:API 1.1 §7): the names of
 * its fields, taken from the same spec its request documents are parsed with (and the OpenAPI
 * document is derived from), and the relationships `include` may follow, each with the type it
 * leads to. Allowing one more include path is one more entry in `includes`.
 */
export interface ResourceType {
  readonly type: string;
  /** Attribute and relationship names: what `fields[TYPE]` may list. */
  readonly fields: ReadonlySet<string>;
  /** Relationship name → the resource type `include` reaches through it. */
  readonly includes: ReadonlyMap<string, ResourceType>;
}

/**
 * `includes` may be a function, read on first use: two types that include each other (a purchase
 * and the reservation it confirmed) are defined in two modules that import each other.
 */
export function defineResourceType(
  spec: ResourceDocumentSpec,
  includes: IncludeTable | (() => IncludeTable) = {},
  /** Fields that responses show but requests never set (e.g. a status). */
  readOnlyFields: readonly string[] = [],
): ResourceType {
  let resolved: ReadonlyMap<string, ResourceType> | undefined;
  const check = (table: IncludeTable) => {
    for (const [name, target] of Object.entries(table)) {
      if (spec.relationships[name]?.type !== target.type) {
        throw new Error(`${spec.type}: "${name}" is not a relationship to ${target.type}`);
      }
    }
    return new Map(Object.entries(table));
  };
  // A table given as it is is checked at once; a function, when first read.
  if (typeof includes !== 'function') resolved = check(includes);
  return {
    type: spec.type,
    fields: new Set([
      ...Object.keys(spec.attributes),
      ...Object.keys(spec.relationships),
      ...readOnlyFields,
    ]),
    get includes() {
      resolved ??= check((includes as () => IncludeTable)());
      return resolved;
    },
  };
}

type IncludeTable = Readonly<Record<string, ResourceType>>;

/** What one endpoint accepts in its query string. */
export interface QueryRules {
  /** The type of the primary data. */
  readonly primary: ResourceType;
  /**
   * Whether `include` is honoured. JSON:API: an endpoint that does not support it refuses it,
   * whatever its value; so does an endpoint whose type has no relationship to include.
   */
  readonly include: boolean;
  /** Every type a response of this endpoint can hold (primary, and included if honoured). */
  readonly types: ReadonlyMap<string, ResourceType>;
}

/** Read on first use, like the include tables they follow (see defineResourceType). */
export function queryRules(primary: ResourceType, options: { include: boolean }): QueryRules {
  let types: Map<string, ResourceType> | undefined;
  return {
    primary,
    get include() {
      return options.include && primary.includes.size > 0;
    },
    get types() {
      if (types) return types;
      types = new Map<string, ResourceType>();
      const pending = [primary];
      while (pending.length > 0) {
        const next = pending.pop()!;
        if (types.has(next.type)) continue;
        types.set(next.type, next);
        if (this.include) pending.push(...next.includes.values());
      }
      return types;
    },
  };
}

/**
 * A route answering without a body (a 204): no query parameter applies, so every JSON:API one
 * (`fields[TYPE]` included) is refused; implementation names are still ignored.
 */
export function noContentRules(primary: ResourceType): QueryRules {
  return { primary, include: false, types: new Map() };
}

/**
 * The types a set of include paths reaches, by relationship name: where every related resource
 * of a resource is one of a kind (a purchase's option and reservation, a reservation's option and
 * purchase), a path reaches each name it mentions, however deep.
 */
export function namesOnPaths(include: ReadonlySet<string>): Set<string> {
  return new Set([...include].flatMap((path) => path.split('.')));
}

/** Include paths are followed this deep at most (an include graph may have cycles). */
export const MAX_INCLUDE_DEPTH = 3;

/** Every relationship path `include` accepts from `type` (`a`, `a.b`, …), for the OpenAPI enum. */
export function includePaths(type: ResourceType, depth = MAX_INCLUDE_DEPTH): string[] {
  if (depth === 0) return [];
  return [...type.includes].flatMap(([name, target]) => [
    name,
    ...includePaths(target, depth - 1).map((path) => `${name}.${path}`),
  ]);
}

/** The type a relationship path leads to from `type`, or undefined if it names no such path. */
export function resolveIncludePath(type: ResourceType, path: string): ResourceType | undefined {
  const names = path.split('.');
  if (names.length > MAX_INCLUDE_DEPTH) return undefined;
  let current: ResourceType | undefined = type;
  for (const name of names) current = current?.includes.get(name);
  return current;
}
