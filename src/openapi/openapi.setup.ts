import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { COMPONENT_HEADERS } from './openapi.headers';
import { componentSchemas } from './openapi.schemas';

/** Where Swagger UI is served; the document itself is at `${DOCS_PATH}-json`. */
export const DOCS_PATH = 'docs';

/**
 * Builds the OpenAPI 3.1 document from the controllers' decorators and the schemas the request
 * parsers enforce, and serves it at `/docs-json` with Swagger UI at `/docs`. Call it before
 * `app.init()`: the UI's static assets are a Fastify plugin, registered before the server is ready.
 */
export function setupOpenApi(app: NestFastifyApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setOpenAPIVersion('3.1.0')
    .setTitle('Ticket allocation service')
    .setDescription(
      'Sells a fixed allocation of tickets per ticket option, over JSON:API 1.1 ' +
        '(`application/vnd.api+json`), without ever overselling. Every error is a JSON:API ' +
        'error document with a stable `code`.',
    )
    // The version of this HTTP contract, not of the package.
    .setVersion('1.0.0')
    .addTag('ticket options', 'Create and read ticket options.')
    .addTag('purchases', 'Buy tickets of an option and read purchases back.')
    .build();
  config.components = { schemas: componentSchemas(), headers: COMPONENT_HEADERS };
  const document = SwaggerModule.createDocument(app, config);
  SwaggerModule.setup(DOCS_PATH, app, document, {
    raw: ['json'],
    customSiteTitle: 'Ticket allocation service — API',
  });
  return document;
}
