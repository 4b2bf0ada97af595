import { Body, Controller, Get, HttpCode, Param, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DomainError } from '../common/domain.error';
import { JsonApiBodyPipe, UuidPathPipe } from '../jsonapi/jsonapi-body.pipe';
import type { ParsedResource } from '../jsonapi/resource-document';
import type { PurchaseAttributes } from './purchase.document';
import {
  nestedPurchaseParser,
  purchaseDocument,
  purchaseParser,
  purchasePath,
  TICKET_OPTION_ID_POINTER,
} from './purchase.document';
import { PurchaseCommand, PurchasesService } from './purchases.service';

@Controller()
export class PurchasesController {
  constructor(private readonly purchases: PurchasesService) {}

  @Post('purchases')
  @HttpCode(201)
  async create(
    @Body(new JsonApiBodyPipe(purchaseParser)) document: ParsedResource<PurchaseAttributes>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    // The parser guarantees the required relationships are present.
    const ticketOptionId = document.relationships.ticket_option!.id;
    return this.buy(reply, {
      ticketOptionId,
      userId: document.relationships.user!.id,
      quantity: document.attributes.quantity,
      ticketOptionPointer: TICKET_OPTION_ID_POINTER,
    });
  }

  /** The same purchase, routed by path so that a load balancer can hash on the option id. */
  @Post('ticket_options/:id/purchases')
  @HttpCode(201)
  async createForOption(
    @Param('id', UuidPathPipe) ticketOptionId: string,
    @Body(new JsonApiBodyPipe(nestedPurchaseParser)) document: ParsedResource<PurchaseAttributes>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const linked = document.relationships.ticket_option;
    if (linked && linked.id !== ticketOptionId) {
      throw new DomainError({
        code: 'id_conflict',
        detail: `The ticket_option relationship (${linked.id}) does not match the path (${ticketOptionId}).`,
        source: { pointer: TICKET_OPTION_ID_POINTER },
      });
    }
    return this.buy(reply, {
      ticketOptionId,
      userId: document.relationships.user!.id,
      quantity: document.attributes.quantity,
    });
  }

  @Get('purchases/:id')
  async findOne(@Param('id', UuidPathPipe) id: string) {
    return purchaseDocument(await this.purchases.findOne(id));
  }

  private async buy(reply: FastifyReply, command: PurchaseCommand) {
    const purchase = await this.purchases.purchase(command);
    void reply.header('location', purchasePath(purchase.id));
    return purchaseDocument(purchase);
  }
}
