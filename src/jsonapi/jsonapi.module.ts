import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { JsonApiExceptionFilter } from './jsonapi-exception.filter';

/** Registers the one global exception filter; the Fastify side lives in jsonapi-http.ts. */
@Module({
  providers: [{ provide: APP_FILTER, useClass: JsonApiExceptionFilter }],
})
export class JsonApiModule {}
