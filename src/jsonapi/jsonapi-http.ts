import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { DomainError } from '../common/domain.error';
import { parseJsonBody } from './json-body';
import { JSONAPI_MEDIA_TYPE, refuseAccept, refuseRequestContentType } from './media-type';

/** Routes outside the JSON:API contract (docs/design.md, Operations): they keep their own media types. */
const OPERATIONAL_PREFIXES = ['/health', '/metrics', '/docs'];
/** What may follow a prefix, besides the end of the URL: a path, a query or `-` (docs-json). */
const AFTER_PREFIX = new Set(['/', '?', '-']);

export function isOperationalUrl(url: string): boolean {
  // JSON:API paths (`/ticket_options…`, `/purchases…`) differ at once: no allocation per call.
  for (const prefix of OPERATIONAL_PREFIXES) {
    if (!url.startsWith(prefix)) continue;
    if (url.length === prefix.length || AFTER_PREFIX.has(url[prefix.length])) return true;
  }
  return false;
}

const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** Keeps a sane incoming `X-Request-Id` (so a load balancer's id follows the request), else a UUID. */
export function requestIdOf(request: IncomingMessage): string {
  const incoming = request.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID_PATTERN.test(incoming)
    ? incoming
    : randomUUID();
}

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * False when Fastify refused the request before running any hook (the `frameworkErrors` of
     * app.factory.ts: a URL that does not decode, an id longer than the router takes): no onSend
     * hook will set the headers of its answer either.
     */
    passedJsonApiHooks: boolean;
  }
}

/** The headers of every answer: the exact JSON:API media type outside the operational routes. */
export function jsonApiHeaders(request: FastifyRequest): Record<string, string> {
  const headers: Record<string, string> = {
    'x-request-id': request.id,
    'x-content-type-options': 'nosniff',
  };
  if (!isOperationalUrl(request.url)) headers['content-type'] = JSONAPI_MEDIA_TYPE;
  return headers;
}

/**
 * Sets {@link jsonApiHeaders} on the reply, one header at a time (no object per answer); a 204
 * has no body, hence no Content-Type.
 */
export function setJsonApiHeaders(reply: FastifyReply): void {
  const request = reply.request;
  void reply.header('x-request-id', request.id).header('x-content-type-options', 'nosniff');
  if (reply.statusCode !== 204 && !isOperationalUrl(request.url)) {
    void reply.header('content-type', JSONAPI_MEDIA_TYPE);
  }
}

/**
 * Makes Fastify speak JSON:API at the edges: one body parser that enforces the media-type rules and
 * parses JSON safely, the Accept check, the exact response Content-Type (Fastify would add
 * `; charset=utf-8`, which JSON:API forbids), the request id header, and one log line per request.
 */
export function installJsonApiHttp(fastify: FastifyInstance, bodyLimit: number): void {
  fastify.removeAllContentTypeParsers();
  const parse = (
    request: FastifyRequest,
    body: string | Buffer,
    done: (err: Error | null, body?: unknown) => void,
  ): void => {
    const refusal = refuseRequestContentType(request.headers['content-type']);
    if (refusal !== null) {
      done(
        new DomainError({
          code: 'unsupported_media_type',
          detail: refusal,
          source: { parameter: 'Content-Type' },
        }),
      );
      return;
    }
    try {
      done(null, parseJsonBody(typeof body === 'string' ? Buffer.from(body) : body));
    } catch (error) {
      done(error as Error);
    }
  };
  // The same parser twice: registered for the exact JSON:API media type, Fastify finds it in its
  // cache by the header as sent; the catch-all alone parsed every request's Content-Type anew.
  fastify.addContentTypeParser(JSONAPI_MEDIA_TYPE, { parseAs: 'buffer', bodyLimit }, parse);
  fastify.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, parse);

  fastify.decorateRequest('passedJsonApiHooks', false);

  fastify.addHook('onRequest', (request, _reply, done) => {
    request.passedJsonApiHooks = true;
    if (isOperationalUrl(request.url)) return done();
    const refusal = refuseAccept(request.headers.accept);
    if (refusal !== null) {
      return done(
        new DomainError({
          code: 'not_acceptable',
          detail: refusal,
          source: { parameter: 'Accept' },
        }),
      );
    }
    done();
  });

  fastify.addHook('onSend', (_request: FastifyRequest, reply: FastifyReply, payload, done) => {
    setJsonApiHeaders(reply);
    done(null, payload);
  });

  fastify.addHook('onResponse', (request, reply, done) => {
    request.log.info(
      {
        method: request.method,
        url: request.url,
        statusCode: reply.statusCode,
        responseTimeMs: Math.round(reply.elapsedTime * 10) / 10,
      },
      'request completed',
    );
    done();
  });
}
