import { isUtf8 } from 'node:buffer';
import secureJson from 'secure-json-parse';
import { DomainError } from '../common/domain.error';

/**
 * Far deeper than any document of this API (a purchase is 5 levels). Deeper bodies are refused
 * before anything recursive sees them (the Idempotency-Key fingerprint, ajv, log serialisers): a
 * body limit of 1 MB allows some 500,000 levels of `[`, enough to overflow any recursive walk.
 */
export const MAX_NESTING_DEPTH = 64;

function invalidDocument(detail: string): DomainError {
  return new DomainError({ code: 'invalid_document', detail });
}

/**
 * Parses the bytes of a request body as JSON (RFC 8259: UTF-8, a leading BOM ignored), refusing
 * with `invalid_document` what is not JSON, `__proto__` and `constructor.prototype` members, and
 * nesting deeper than {@link MAX_NESTING_DEPTH}. An empty or blank body is `undefined`.
 */
export function parseJsonBody(body: Buffer): unknown {
  // Decoding would silently turn invalid bytes into U+FFFD, and store them so.
  if (!isUtf8(body)) throw invalidDocument('The request body is not valid UTF-8.');
  const text = body.toString('utf8');
  // Blank (what trim() would empty, without copying the body): `\s` is trim()'s set.
  if (!/\S/.test(text)) return undefined;
  let document: unknown;
  try {
    document = secureJson.parse(text, undefined, {
      protoAction: 'error',
      constructorAction: 'error',
    });
  } catch (error) {
    // secure-json-parse throws a SyntaxError for forbidden members too.
    throw invalidDocument(
      error instanceof Error && error.message.includes('forbidden prototype property')
        ? 'The request body uses a forbidden member name (__proto__ or constructor.prototype).'
        : 'The request body is not valid JSON.',
    );
  }
  if (nestingDepthExceeds(document, MAX_NESTING_DEPTH)) {
    throw invalidDocument(`The request body is nested deeper than ${MAX_NESTING_DEPTH} levels.`);
  }
  return document;
}

/**
 * Whether arrays and objects nest more than `limit` levels deep. Recursive, but never deeper than
 * `limit` + 1 calls, whatever the document's depth: the walk stops at the first level past it.
 * No stack of entries or array of values per node (every request body goes through this).
 */
export function nestingDepthExceeds(value: unknown, limit: number): boolean {
  return value !== null && typeof value === 'object' && exceedsFrom(value, 1, limit);
}

function exceedsFrom(node: object, depth: number, limit: number): boolean {
  if (depth > limit) return true;
  // Members of an object, indices of an array: own ones only, as JSON.parse made them.
  for (const key in node) {
    if (!Object.hasOwn(node, key)) continue;
    const child = (node as Record<string, unknown>)[key];
    if (child !== null && typeof child === 'object' && exceedsFrom(child, depth + 1, limit))
      return true;
  }
  return false;
}
