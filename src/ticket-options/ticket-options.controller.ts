import { Controller, Get, HttpCode, Post, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { IdempotencyClaim } from '../idempotency/idempotency-claim';
import { IdempotencyClaimOf } from '../idempotency/idempotency-claim.decorator';
import type { ParsedResource } from '../jsonapi/resource-document';
import { JsonApiBody, JsonApiQueryOf, UuidPathParam } from '../jsonapi/jsonapi-params';
import { applySparseFieldsets } from '../jsonapi/query-parameters';
import type { JsonApiQuery } from '../jsonapi/query-parameters';
import { ApiJsonApiOperation } from '../openapi/api-jsonapi-operation.decorator';
import { SCHEMAS } from '../openapi/openapi.schemas';
import type { CreateTicketOptionAttributes } from './ticket-option.document';
import {
  createTicketOptionParser,
  TICKET_OPTION_CREATE_QUERY,
  TICKET_OPTION_READ_QUERY,
  ticketOptionDocument,
  ticketOptionPath,
} from './ticket-option.document';
import { TicketOptionsService } from './ticket-options.service';

@ApiTags('ticket options')
@Controller('ticket_options')
export class TicketOptionsController {
  constructor(private readonly ticketOptions: TicketOptionsService) {}

  @Post()
  @HttpCode(201)
  @ApiJsonApiOperation({
    summary: 'Create a ticket option',
    description:
      '`name` (1–255 characters, not blank), optional `description` (≤ 10,000 characters or null) and `allocation` (0 ≤ n ≤ 2147483647; 0 is an option that is sold out).',
    requestBody: SCHEMAS.ticketOptionRequest,
    success: {
      status: 201,
      schema: SCHEMAS.ticketOption,
      description: 'Created: the option with its server-generated id, as stored.',
    },
    errors: ['invalid_attribute'],
    idempotent: true,
    query: TICKET_OPTION_CREATE_QUERY,
  })
  async create(
    @JsonApiBody(createTicketOptionParser)
    document: ParsedResource<CreateTicketOptionAttributes>,
    @JsonApiQueryOf(TICKET_OPTION_CREATE_QUERY) query: JsonApiQuery,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyClaimOf() idempotency: IdempotencyClaim | undefined,
  ) {
    const option = await this.ticketOptions.create(document.attributes, idempotency);
    void reply.header('location', ticketOptionPath(option.id));
    return applySparseFieldsets(ticketOptionDocument(option), query);
  }

  @Get(':id')
  @ApiJsonApiOperation({
    summary: 'Read a ticket option',
    description:
      'The option as created: `allocation` is the original total; the tickets still available are in `meta.remaining`.',
    pathId: 'The ticket option id.',
    success: { status: 200, schema: SCHEMAS.ticketOption, description: 'The ticket option.' },
    errors: ['not_found'],
    query: TICKET_OPTION_READ_QUERY,
  })
  async findOne(
    @UuidPathParam('id') id: string,
    @JsonApiQueryOf(TICKET_OPTION_READ_QUERY) query: JsonApiQuery,
  ) {
    return applySparseFieldsets(ticketOptionDocument(await this.ticketOptions.findOne(id)), query);
  }
}
