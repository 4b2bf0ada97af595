import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IdempotencyClaim } from '../allocation/ticket-option.store';
import {
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENT_REPLAYED_HEADER,
  parseIdempotencyKey,
  requestFingerprint,
} from './idempotency-key';
import { IdempotencyService } from './idempotency.service';

declare module 'fastify' {
  interface FastifyRequest {
    /** The claim this request holds on its Idempotency-Key, if it sent one. */
    idempotencyClaim: IdempotencyClaim | null;
  }
}

/** The routes that create something (SPEC §2): POSTs only. */
const IDEMPOTENT_ROUTES = new Set([
  '/ticket_options',
  '/purchases',
  '/ticket_options/:id/purchases',
]);

/** Refusals that are the final answer to their request (availability only shrinks). */
const FINAL_REFUSAL_CODES = ['invalid_purchase_quantity'];

/**
 * Idempotency at the HTTP edge: before the handler, a request with a key claims it or gets the
 * original answer replayed (the handler never runs); after the handler, an answer that did not
 * complete the claim in its own transaction either records itself (a final refusal) or releases
 * the claim (invalid input, not found, 503: a retry must run again).
 */
export function installIdempotencyHttp(
  fastify: FastifyInstance,
  idempotency: IdempotencyService,
): void {
  fastify.decorateRequest('idempotencyClaim', null);

  fastify.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method !== 'POST' || !IDEMPOTENT_ROUTES.has(request.routeOptions.url ?? '')) {
      return;
    }
    const key = parseIdempotencyKey(request.headers[IDEMPOTENCY_KEY_HEADER]);
    if (key === undefined) return;
    const path = request.url.split('?', 1)[0];
    const begin = await idempotency.begin(
      key,
      requestFingerprint(request.method, path, request.body),
    );
    if ('claimed' in begin) {
      request.idempotencyClaim = begin.claimed;
      return;
    }
    const { status, body, location } = begin.replay;
    void reply.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
    if (location !== undefined) void reply.header('location', location);
    return reply.status(status).send(JSON.stringify(body));
  });

  fastify.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload) => {
    const claim = request.idempotencyClaim;
    if (claim === null) return payload;
    request.idempotencyClaim = null;
    const status = reply.statusCode;
    if (status === 201) return payload; // completed by the transaction that created the resource
    try {
      const refusal = status === 400 && typeof payload === 'string' ? finalRefusal(payload) : null;
      if (refusal !== null) {
        await idempotency.complete(claim, status, refusal);
      } else {
        await idempotency.release(claim);
      }
    } catch (error) {
      // The claim stays in flight until its lease ends; retries meanwhile get 409.
      request.log.warn({ err: error }, 'idempotency key could not be settled');
    }
    return payload;
  });
}

/** The error document, if it is a final refusal (to record and replay); else null. */
function finalRefusal(payload: string): unknown {
  try {
    const document = JSON.parse(payload) as { errors?: Array<{ code?: string }> };
    const codes = (document.errors ?? []).map((error) => error.code);
    const final =
      codes.length > 0 && codes.every((code) => FINAL_REFUSAL_CODES.includes(code ?? ''));
    return final ? document : null;
  } catch {
    return null;
  }
}
