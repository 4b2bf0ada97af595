import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import secureJson from 'secure-json-parse';
import { DomainError } from '../common/domain.error';
import { JSONAPI_MEDIA_TYPE, refuseAccept, refuseRequestContentType } from './media-type';

/** Routes outside the JSON:API contract (SPEC §4): they keep their own media types. */
const OPERATIONAL_PREFIXES = ['/health', '/metrics', '/docs'];

export function isOperationalUrl(url: string): boolean {
  return OPERATIONAL_PREFIXES.some(
    (prefix) =>
      url === prefix ||
      url.startsWith(`${prefix}/`) ||
      url.startsWith(`${prefix}?`) ||
      url.startsWith(`${prefix}-`),
  );
}

const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** Keeps a sane incoming `X-Request-Id` (so a load balancer's id follows the request), else a UUID. */
export function requestIdOf(request: IncomingMessage): string {
  const incoming = request.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID_PATTERN.test(incoming)
    ? incoming
    : randomUUID();
}

/**
 * Makes Fastify speak JSON:API at the edges: one body parser that enforces the media-type rules and
 * parses JSON safely, the Accept check, the exact response Content-Type (Fastify would add
 * `; charset=utf-8`, which JSON:API forbids), the request id header, and one log line per request.
 */
export function installJsonApiHttp(fastify: FastifyInstance, bodyLimit: number): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(
    '*',
    { parseAs: 'string', bodyLimit },
    (
      request: FastifyRequest,
      body: string | Buffer,
      done: (err: Error | null, body?: unknown) => void,
    ) => {
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
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.trim() === '') {
        done(null, undefined);
        return;
      }
      try {
        done(
          null,
          secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }),
        );
      } catch (error) {
        const detail =
          error instanceof SyntaxError
            ? 'The request body is not valid JSON.'
            : 'The request body uses a forbidden member name (__proto__ or constructor.prototype).';
        done(new DomainError({ code: 'invalid_document', detail }));
      }
    },
  );

  fastify.addHook('onRequest', (request, _reply, done) => {
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

  fastify.addHook('onSend', (request: FastifyRequest, reply: FastifyReply, payload, done) => {
    void reply.header('x-request-id', request.id);
    void reply.header('x-content-type-options', 'nosniff');
    if (!isOperationalUrl(request.url)) void reply.header('content-type', JSONAPI_MEDIA_TYPE);
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
