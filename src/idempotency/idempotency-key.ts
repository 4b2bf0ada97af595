import { createHash } from 'node:crypto';
import { DomainError } from '../common/domain.error';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const IDEMPOTENT_REPLAYED_HEADER = 'idempotent-replayed';

/** 1–255 printable ASCII characters (docs/design.md, Wire contract). */
const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

/** The key of a request, `undefined` when it has none; a malformed key is a 400. */
export function parseIdempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !KEY_PATTERN.test(header)) {
    throw new DomainError({
      code: 'invalid_header',
      detail:
        typeof header === 'string'
          ? 'Idempotency-Key must be 1 to 255 printable ASCII characters.'
          : 'Idempotency-Key must be sent once.',
      source: { parameter: 'Idempotency-Key' },
    });
  }
  return header;
}

/**
 * What makes two requests "the same" for a key: method, path and the JSON body, compared by value
 * (member order and whitespace do not matter), as a SHA-256 hex digest.
 */
export function requestFingerprint(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${path}\n`)
    .update(canonicalJson(body))
    .digest('hex');
}

/** JSON with object members sorted by name, recursively. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return '';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value))
    return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, member]) => member !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([name, member]) => `${JSON.stringify(name)}:${canonicalJson(member)}`).join(',')}}`;
}
