import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { IdempotencyClaim } from './idempotency-claim';

/** The claim the request holds on its Idempotency-Key (see idempotency-http.ts), if any. */
export const IdempotencyClaimOf = createParamDecorator(
  (_data: unknown, context: ExecutionContext): IdempotencyClaim | undefined =>
    context.switchToHttp().getRequest<FastifyRequest>().idempotencyClaim ?? undefined,
);
