import { ERROR_CATALOG } from '../../src/jsonapi/error-catalog';
import type { ErrorCode } from '../../src/common/domain.error';
import { JSONAPI } from './jsonapi-client';

/**
 * What every answer of a JSON:API route must be, whatever was asked (docs/design.md, Wire contract): checked by the
 * hostile-input tests (test/fuzz.e2e-spec.ts, test/hostile-input.e2e-spec.ts).
 */

/** One answer, from fetch or from a raw socket. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body; undefined when it is not JSON. */
  document: any;
}

export function answerOf(
  status: number,
  headers: Headers | Record<string, string>,
  text: string,
): Answer {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    document = undefined;
  }
  return {
    status,
    headers: headers instanceof Headers ? headers : new Headers(headers),
    text,
    document,
  };
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Text of stack traces, SQL, drivers and libraries: never for clients (docs/design.md, Wire contract). */
const LEAKS =
  /\bat \/|\bat [\w.<>]+ \(|node_modules|\.[jt]s:\d+|\bSELECT\b|\bINSERT\b|\bUPDATE\b|violates|constraint|duplicate key|TypeError|RangeError|SyntaxError|ReferenceError|Unexpected token|in JSON at position|Fastify|FST_|MikroORM|mikro-orm|\bajv\b|postgres|pg_|errno|ECONN|stack/i;
const TOP_LEVEL_MEMBERS = new Set(['data', 'errors', 'meta', 'jsonapi', 'links', 'included']);
const ERROR_MEMBERS = new Set(['status', 'code', 'title', 'detail', 'source', 'id', 'meta']);

export class MalformedAnswer extends Error {}

function fail(message: string, answer: Answer): never {
  throw new MalformedAnswer(
    `${message}\n  status ${answer.status}\n  body ${answer.text.slice(0, 600)}`,
  );
}

/**
 * Everything of a request that a `detail` may quote back (path segments, header values, member
 * names of the body, also JSON-escaped), longest first: removed before looking for leaks, so that a client
 * who sends "SELECT" as a member name does not make the check fail.
 */
export function echoableTexts(
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
): string[] {
  const texts = [path, ...Object.values(headers)];
  // Query parameter names and values, decoded, and the comma-separated items of values.
  for (const [name, value] of new URLSearchParams(path.split('?').slice(1).join('?'))) {
    texts.push(name, value, ...value.split(','));
  }
  for (const segment of path.split('?', 1)[0].split('/')) {
    texts.push(segment);
    try {
      texts.push(decodeURIComponent(segment));
    } catch {
      // not decodable: the server cannot have quoted a decoded form
    }
  }
  if (body !== undefined) {
    try {
      const stack: unknown[] = [JSON.parse(body.toString('utf8').replace(/^\ufeff/, ''))];
      while (stack.length > 0) {
        const value = stack.pop();
        if (value === null || typeof value !== 'object') continue;
        for (const [name, child] of Object.entries(value)) {
          texts.push(name);
          stack.push(child);
        }
      }
    } catch {
      // not JSON: nothing of it is quoted
    }
  }
  const variants = new Set(texts.flatMap((t) => [t, JSON.stringify(t).slice(1, -1)]));
  return [...variants].filter((t) => t.length > 0).sort((a, b) => b.length - a.length);
}

function withoutEchoes(detail: string, echoes: string[]): string {
  let rest = detail;
  for (const echo of echoes) rest = rest.split(echo).join('');
  return rest;
}

/**
 * Throws unless the answer is 2xx or 4xx, sent as exactly `application/vnd.api+json` with
 * `nosniff` and no `X-Powered-By`, and is one resource (2xx) or an error document whose every
 * error has a catalog code, its status and title, a detail free of internals, and at most one
 * source; the HTTP status is the errors' one status, or 400 when they differ.
 */
export function assertJsonApiAnswer(answer: Answer, echoes: string[] = []): void {
  const { status, headers, document } = answer;
  if (status < 200 || status >= 500 || (status >= 300 && status < 400)) {
    fail('status is neither 2xx nor 4xx', answer);
  }
  if (headers.get('content-type') !== JSONAPI) fail('Content-Type is not exactly JSON:API', answer);
  if (headers.get('x-content-type-options') !== 'nosniff') fail('no nosniff', answer);
  if (headers.has('x-powered-by')) fail('X-Powered-By leaks the stack', answer);
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    fail('body is not a JSON object', answer);
  }
  for (const name of Object.keys(document)) {
    if (!TOP_LEVEL_MEMBERS.has(name)) fail(`unknown top-level member ${name}`, answer);
  }

  if (status < 300) {
    if ('errors' in document) fail('a success carries errors', answer);
    const data = document.data;
    if (
      typeof data?.type !== 'string' ||
      !UUID.test(data?.id) ||
      typeof data.attributes !== 'object'
    ) {
      fail('a success is not one resource object', answer);
    }
    return;
  }

  if ('data' in document) fail('an error carries data', answer);
  const errors = document.errors;
  if (!Array.isArray(errors) || errors.length === 0) fail('no errors array', answer);
  const statuses = new Set<number>();
  for (const error of errors) {
    if (error === null || typeof error !== 'object') fail('an error is not an object', answer);
    for (const name of Object.keys(error)) {
      if (!ERROR_MEMBERS.has(name)) fail(`unknown error member ${name}`, answer);
    }
    const entry = ERROR_CATALOG[error.code as ErrorCode];
    if (!Object.hasOwn(ERROR_CATALOG, error.code) || !entry)
      fail('code not in the catalog', answer);
    if (error.status !== String(entry.status)) fail('error status does not match its code', answer);
    if (error.title !== entry.title) fail('title is not the catalog title', answer);
    if (typeof error.detail !== 'string' || error.detail === '') fail('no detail', answer);
    if (LEAKS.test(withoutEchoes(error.detail, echoes))) fail('detail leaks internals', answer);
    if (error.source !== undefined) {
      const { pointer, parameter } = error.source;
      const ok =
        Object.keys(error.source).length === 1 &&
        ((typeof pointer === 'string' && (pointer === '' || pointer.startsWith('/'))) ||
          typeof parameter === 'string');
      if (!ok) fail('source is neither one pointer nor one parameter', answer);
    }
    statuses.add(entry.status);
  }
  // One status for all, else the most generally applicable one (JSON:API §7; README).
  const expected = statuses.size === 1 ? [...statuses][0] : 400;
  if (status !== expected)
    fail(`HTTP ${status}, error objects say ${[...statuses].join(', ')}`, answer);
}
