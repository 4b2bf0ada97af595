import type { ApiHeaderOptions } from '@nestjs/swagger';

/** Names of the component headers the responses refer to. */
export const HEADERS = {
  requestId: 'X-Request-Id',
  location: 'Location',
  retryAfter: 'Retry-After',
  replayed: 'Idempotent-Replayed',
} as const;

export function headerRef(name: string): { $ref: string } {
  return { $ref: `#/components/headers/${name}` };
}

/** The response headers of the contract (docs/design.md, Wire contract and Operations). */
export const COMPONENT_HEADERS = {
  [HEADERS.requestId]: {
    description:
      'The request id: the incoming `X-Request-Id` when it is 1–200 visible ASCII characters, else a fresh UUID. Every log line of the request carries it.',
    required: true,
    schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,200}$' },
  },
  [HEADERS.location]: {
    description: 'The path of the created resource (the same as `data.links.self`).',
    required: true,
    schema: { type: 'string', pattern: '^/[a-z_]+/[0-9a-f-]{36}$' },
  },
  [HEADERS.retryAfter]: {
    description: 'Seconds to wait before retrying.',
    required: true,
    schema: { type: 'string', pattern: '^[0-9]+$' },
  },
  [HEADERS.replayed]: {
    description:
      'Present (`true`) when this response is the stored answer to an earlier request with the same `Idempotency-Key` and body: nothing was done again.',
    required: false,
    schema: { type: 'string', enum: ['true'] },
  },
};

/** The optional request header that makes a POST safe to retry (docs/design.md, Idempotency). */
export const IDEMPOTENCY_KEY_HEADER: ApiHeaderOptions = {
  name: 'Idempotency-Key',
  required: false,
  description:
    'Makes the request safe to retry: a repeat with the same key and the same body gets the original response (with `Idempotent-Replayed: true`) and does nothing more, on any instance. The same key with another body is refused with 422 `idempotency_key_reused`; while the first request is still being processed, 409 `idempotency_key_in_flight`. Keys are kept at least 24 hours.',
  schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x20-\\x7e]{1,255}$' },
};
