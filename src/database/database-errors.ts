/**
 * Errors that mean "the database cannot be used right now" (unreachable, restarting, connection
 * lost, pool exhausted, timed out) as opposed to a bug: the client gets 503 with Retry-After and
 * may retry, ideally with an Idempotency-Key.
 */
const UNAVAILABLE_SQLSTATE_CLASSES = ['08']; // connection exception
const UNAVAILABLE_SQLSTATES = new Set([
  '53300', // too_many_connections
  '55000', // object_not_in_prerequisite_state (e.g. database not accepting connections)
  '55P03', // lock_not_available (lock_timeout)
  '57014', // query_canceled (statement_timeout)
  '57P01', // admin_shutdown (backend terminated)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, recovery)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const UNAVAILABLE_MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i, // pg-pool: no connection within the timeout
  /Client has encountered a connection error/i,
];

export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 5) return false;
  const { code, name, message, cause } = error as {
    code?: unknown;
    name?: unknown;
    message?: unknown;
    cause?: unknown;
  };
  if (typeof code === 'string') {
    if (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_NODE_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && UNAVAILABLE_SQLSTATE_CLASSES.includes(code.slice(0, 2))) {
      return true;
    }
  }
  if (name === 'ConnectionException') return true;
  if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((p) => p.test(message))) {
    return true;
  }
  // MikroORM wraps driver errors; AggregateError (connect to several addresses) too.
  if (Array.isArray((error as { errors?: unknown }).errors)) {
    if ((error as { errors: unknown[] }).errors.some((e) => isDatabaseUnavailable(e, depth + 1))) {
      return true;
    }
  }
  return isDatabaseUnavailable(cause, depth + 1);
}

/**
 * The error left the connection itself unusable (terminated, reset, protocol state unknown), so it
 * must not go back to the pool: any error without a SQLSTATE, connection exceptions (class 08)
 * and operator intervention (57P01–57P03). Plain statement errors leave the session usable.
 */
export function isConnectionBroken(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return code.startsWith('08') || ['57P01', '57P02', '57P03'].includes(code);
}
