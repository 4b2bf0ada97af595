import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { FastifyReply, FastifyRequest, LogController } from 'fastify';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { AppModule } from './app.module';
import { installIdempotencyHttp } from './idempotency/idempotency-http';
import { shapeReplay } from './jsonapi/query-parameters';
import { IdempotencyService } from './idempotency/idempotency.service';
import type { AppConfig } from './config/app-config';
import { problemsDocument, sendProblems } from './jsonapi/jsonapi-exception.filter';
import { JSONAPI_MEDIA_TYPE } from './jsonapi/media-type';
import { installJsonApiHttp, requestIdOf } from './jsonapi/jsonapi-http';
import { createAppLogger, nestLoggerFor } from './logging/app.logger';
import { setupOpenApi } from './openapi/openapi.setup';

function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = problemsDocument([
    /HEADER/.test(error.code ?? '')
      ? { code: 'invalid_header', detail: 'The request headers are malformed or too large.' }
      : { code: 'invalid_document', detail: 'The request is not valid HTTP.' },
  ]);
  socket.end(
    'HTTP/1.1 400 Bad Request\r\n' +
      `Content-Type: ${JSONAPI_MEDIA_TYPE}\r\n` +
      'X-Content-Type-Options: nosniff\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** A config whose database is known (embedded PostgreSQL already started, if any). */
export type ResolvedConfig = AppConfig & { databaseUrl: string };

export interface AppOptions {
  /** The pino logger for Fastify and Nest; by default one at `config.logLevel` on stdout. */
  logger?: Logger;
}

/**
 * Builds the application exactly as production runs it; main.ts and every HTTP test use this one
 * factory, so the parsers, hooks, filters and pipes under test are the real ones.
 */
export async function createApp(
  config: ResolvedConfig,
  options: AppOptions = {},
): Promise<NestFastifyApplication> {
  const logger = options.logger ?? createAppLogger(config.logLevel);
  const adapter = new FastifyAdapter({
    loggerInstance: logger,
    // One line per request comes from our onResponse hook (jsonapi-http.ts), not two from Fastify.
    logController: new LogController({
      disableRequestLogging: true,
      requestIdLogLabel: 'requestId',
    }),
    genReqId: requestIdOf,
    bodyLimit: config.bodyLimitBytes,
    // Longer than typical load balancer idle timeouts (60 s), so the balancer closes first.
    keepAliveTimeout: 65_000,
    // The whole request must arrive within this (slowloris); answers are bounded by the database
    // timeouts, so no separate handler timeout is needed.
    requestTimeout: config.httpRequestTimeoutMs,
    // Requests that reach us while closing are still handled: purchases get our JSON:API 503
    // (the registry is draining), reads are served; Fastify's own 503 would be plain JSON.
    return503OnClosing: false,
    // Requests Node's HTTP parser refuses before routing (control characters in headers, headers
    // over 16 KB, not HTTP at all) get a JSON:API 400 too, then the connection closes.
    clientErrorHandler: answerClientError,
    // A path that is not even a valid URL (e.g. `/ticket_options/%zz`) names no resource.
    frameworkErrors: (_error: Error, _request: FastifyRequest, reply: FastifyReply) =>
      sendProblems(reply, 404, [
        { code: 'not_found', detail: 'The request path is not a valid URL.' },
      ]),
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    bodyParser: false,
    logger: nestLoggerFor(logger),
    abortOnError: false,
  });
  installJsonApiHttp(app.getHttpAdapter().getInstance(), config.bodyLimitBytes);
  installIdempotencyHttp(
    app.getHttpAdapter().getInstance(),
    app.get(IdempotencyService),
    shapeReplay,
  );
  setupOpenApi(app);
  await app.init();
  return app;
}
