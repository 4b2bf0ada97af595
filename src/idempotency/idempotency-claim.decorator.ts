import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { IdempotencyClaim } from './idempotency-claim';

/**
 * The claim the request holds on its Idempotency-Key (see idempotency-http.ts), if any. The
 * request is argument 0 of the HTTP context (read directly: `switchToHttp()` allocates).
 */
export const IdempotencyClaimOf = createParamDecorator(
  (_data: unknown, context: ExecutionContext): IdempotencyClaim | undefined =>
    context.getArgByIndex<FastifyRequest>(0).idempotencyClaim ?? undefined,
);
