import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IdempotencyClaim } from './idempotency-claim';
import {
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENT_REPLAYED_HEADER,
  parseIdempotencyKey,
  requestFingerprint,
} from './idempotency-key';
import { IdempotencyService } from './idempotency.service';

/** An answer that is final for its request (a justified refusal): recorded and replayed. */
export interface FinalAnswer {
  status: number;
  /** The JSON:API document, as sent. */
  body: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The claim this request holds on its Idempotency-Key, if it sent one. */
    idempotencyClaim: IdempotencyClaim | null;
    /** Set by whoever answers with a final refusal (the exception filter), to be recorded. */
    finalAnswer: FinalAnswer | null;
  }
  interface FastifyContextConfig {
    /** The route accepts `Idempotency-Key` (set through IDEMPOTENT_ROUTE_CONFIG). */
    idempotent?: boolean;
  }
}

/** Tells the idempotency seam that this request's answer is final (nothing to do without a key). */
export function recordFinalAnswer(request: FastifyRequest, answer: FinalAnswer): void {
  if (request.idempotencyClaim) request.finalAnswer = answer;
}

/**
 * Shapes a replayed document for the replaying request (e.g. its sparse fieldsets); may throw a
 * DomainError for a request the route would refuse. Given by the wire layer (app.factory.ts).
 */
export type ReplayShaper = (request: FastifyRequest, body: unknown) => unknown;

/**
 * Idempotency at the HTTP edge, for the routes whose config opts in: before the handler, a
 * request with a key claims it or gets the original answer replayed (the handler never runs);
 * after the handler, an answer that did not complete the claim in its own transaction either
 * records itself (a final answer, handed over as typed data) or releases the claim (invalid
 * input, not found, 503: a retry must run again).
 */
export function installIdempotencyHttp(
  fastify: FastifyInstance,
  idempotency: IdempotencyService,
  shapeReplay: ReplayShaper = (_request, body) => body,
): void {
  fastify.decorateRequest('idempotencyClaim', null);
  fastify.decorateRequest('finalAnswer', null);

  // Both hooks return at once, without a promise, when there is no key: the common case.
  const claimHook = (request: FastifyRequest, reply: FastifyReply, done: HookDone): void => {
    let key: string | undefined;
    try {
      key = parseIdempotencyKey(request.headers[IDEMPOTENCY_KEY_HEADER]);
    } catch (error) {
      return done(error as Error);
    }
    if (key === undefined) return done();
    // A replay is sent from here, and the handler never runs (done is not called).
    claimOrReplay(idempotency, shapeReplay, key, request, reply).then(
      (replayed) => (replayed ? undefined : done()),
      (error: Error) => done(error),
    );
  };
  const settleHook = (
    request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (error: Error | null, payload: unknown) => void,
  ): void => {
    const claim = request.idempotencyClaim;
    if (claim === null) return done(null, payload);
    request.idempotencyClaim = null;
    void settle(idempotency, claim, request, reply).then(() => done(null, payload));
  };
  // Only the routes that opt in get the hooks (after the global ones, as if added last): the
  // others pay nothing for idempotency.
  fastify.addHook('onRoute', (route) => {
    if (route.config?.idempotent !== true) return;
    route.preHandler = [...hookList(route.preHandler), claimHook] as typeof route.preHandler;
    route.onSend = [...hookList(route.onSend), settleHook] as typeof route.onSend;
  });
}

type HookDone = (error?: Error) => void;

function hookList<T>(hooks: T | T[] | undefined): T[] {
  if (hooks === undefined) return [];
  return Array.isArray(hooks) ? hooks : [hooks];
}

/** Claims the key, or sends the answer recorded for it (true: replayed, the handler must not run). */
async function claimOrReplay(
  idempotency: IdempotencyService,
  shapeReplay: ReplayShaper,
  key: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<boolean> {
  const path = request.url.split('?', 1)[0];
  const begin = await idempotency.begin(
    key,
    requestFingerprint(request.method, path, request.body),
  );
  if ('claimed' in begin) {
    request.idempotencyClaim = begin.claimed;
    return false;
  }
  const { status, body, location } = begin.replay;
  // The stored text is sent as it is unless the replaying request asks for another shape.
  const shaped = status === 201 ? shapeReplay(request, body) : body;
  void reply.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
  if (location !== undefined) void reply.header('location', location);
  void reply.status(status).send(shaped === body ? begin.replay.text : JSON.stringify(shaped));
  return true;
}

/**
 * After the handler: an answer that did not complete the claim in its own transaction records
 * itself (a final answer) or releases the claim. Never rejects: a failure is logged.
 */
async function settle(
  idempotency: IdempotencyService,
  claim: IdempotencyClaim,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const final = request.finalAnswer;
  try {
    if (reply.statusCode === 201) {
      idempotency.settled(claim); // completed by the transaction that created the resource
    } else if (final !== null && final.status === reply.statusCode) {
      await idempotency.complete(claim, final.status, final.body);
    } else {
      await idempotency.release(claim);
    }
  } catch (error) {
    // The claim stays in flight until its lease ends; retries meanwhile get 409.
    request.log.warn({ err: error }, 'idempotency key could not be settled');
  }
}
