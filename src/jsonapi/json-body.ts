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
  if (text.trim() === '') return undefined;
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

/** Whether arrays and objects nest more than `limit` levels deep; iterative, so any depth is safe. */
export function nestingDepthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<{ node: unknown; depth: number }> = [{ node: value, depth: 1 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Object.values(node)) {
      if (child !== null && typeof child === 'object')
        stack.push({ node: child, depth: depth + 1 });
    }
  }
  return false;
}
