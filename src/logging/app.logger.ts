import type { LoggerService } from '@nestjs/common';
import { Logger as NestPinoLogger, PinoLogger } from 'nestjs-pino';
import pino, { DestinationStream, Logger } from 'pino';
import type { LogLevel } from '../config/app-config';

/**
 * The one pino logger of an application: Fastify logs through it (one line per request, with the
 * request id, see jsonapi-http.ts) and so does Nest (bootstrap, MikroORM, health, filters).
 * Errors keep their `cause` as a nested object (e.g. the driver error behind a 503).
 */
export function createAppLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = { level, serializers: { err: pino.stdSerializers.errWithCause } };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * nestjs-pino's PinoLogger bound to one given pino logger. The stock one falls back to a
 * process-wide logger (the first one it ever saw) outside of its request-context middleware; we
 * run no such middleware (Fastify's request logger already carries the request id, and a Nest
 * middleware would sit on the purchase hot path), and each app instance keeps its own logger.
 */
class BoundPinoLogger extends PinoLogger {
  constructor(private readonly bound: Logger) {
    super({ pinoHttp: { logger: bound } });
  }

  override get logger(): Logger {
    return this.bound;
  }
}

/** Nest's LoggerService writing through `logger` (levels are pino's, so `silent` silences Nest too). */
export function nestLoggerFor(logger: Logger): LoggerService {
  return new NestPinoLogger(new BoundPinoLogger(logger), {});
}
