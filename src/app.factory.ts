import 'reflect-metadata';
import { LogLevel as NestLogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { FastifyReply, FastifyRequest, LogController } from 'fastify';
import { AppModule } from './app.module';
import type { AppConfig, LogLevel } from './config/app-config';
import { sendProblems } from './jsonapi/jsonapi-exception.filter';
import { installJsonApiHttp, requestIdOf } from './jsonapi/jsonapi-http';

/** A config whose database is known (embedded PostgreSQL already started, if any). */
export type ResolvedConfig = AppConfig & { databaseUrl: string };

const NEST_LOG_LEVELS: Record<LogLevel, NestLogLevel[] | false> = {
  fatal: ['fatal'],
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn', 'log'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug'],
  trace: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
  silent: false,
};

/**
 * Builds the application exactly as production runs it; main.ts and every HTTP test use this one
 * factory, so the parsers, hooks, filters and pipes under test are the real ones.
 */
export async function createApp(config: ResolvedConfig): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    logger: { level: config.logLevel },
    // One line per request comes from our onResponse hook (jsonapi-http.ts), not two from Fastify.
    logController: new LogController({
      disableRequestLogging: true,
      requestIdLogLabel: 'requestId',
    }),
    genReqId: requestIdOf,
    bodyLimit: config.bodyLimitBytes,
    // Longer than typical load balancer idle timeouts (60 s), so the balancer closes first.
    keepAliveTimeout: 65_000,
    return503OnClosing: true,
    // A path that is not even a valid URL (e.g. `/ticket_options/%zz`) names no resource.
    frameworkErrors: (_error: Error, _request: FastifyRequest, reply: FastifyReply) =>
      sendProblems(reply, 404, [
        { code: 'not_found', detail: 'The request path is not a valid URL.' },
      ]),
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    bodyParser: false,
    logger: NEST_LOG_LEVELS[config.logLevel],
    abortOnError: false,
  });
  installJsonApiHttp(app.getHttpAdapter().getInstance(), config.bodyLimitBytes);
  await app.init();
  return app;
}
