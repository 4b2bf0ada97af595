import { Body, Controller, Get, HttpCode, Param, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { ParsedResource } from '../jsonapi/resource-document';
import { JsonApiBodyPipe, UuidPathPipe } from '../jsonapi/jsonapi-body.pipe';
import type { CreateTicketOptionAttributes } from './ticket-option.document';
import {
  createTicketOptionParser,
  ticketOptionDocument,
  ticketOptionPath,
} from './ticket-option.document';
import { TicketOptionsService } from './ticket-options.service';

@Controller('ticket_options')
export class TicketOptionsController {
  constructor(private readonly ticketOptions: TicketOptionsService) {}

  @Post()
  @HttpCode(201)
  async create(
    @Body(new JsonApiBodyPipe(createTicketOptionParser))
    document: ParsedResource<CreateTicketOptionAttributes>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const option = await this.ticketOptions.create(document.attributes);
    void reply.header('location', ticketOptionPath(option.id));
    return ticketOptionDocument(option);
  }

  @Get(':id')
  async findOne(@Param('id', UuidPathPipe) id: string) {
    return ticketOptionDocument(await this.ticketOptions.findOne(id));
  }
}
