import { Controller, Get, HttpCode, Post, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { IdempotencyClaim } from '../idempotency/idempotency-claim';
import { IdempotencyClaimOf } from '../idempotency/idempotency-claim.decorator';
import { DomainError } from '../common/domain.error';
import { JsonApiBody, JsonApiQueryOf, UuidPathParam } from '../jsonapi/jsonapi-params';
import { applySparseFieldsets } from '../jsonapi/query-parameters';
import type { JsonApiQuery } from '../jsonapi/query-parameters';
import type { ParsedResource } from '../jsonapi/resource-document';
import { ApiJsonApiOperation } from '../openapi/api-jsonapi-operation.decorator';
import { SCHEMAS } from '../openapi/openapi.schemas';
import type { PurchaseAttributes } from './purchase.document';
import {
  nestedPurchaseParser,
  PURCHASE_CREATE_QUERY,
  PURCHASE_READ_QUERY,
  purchaseDocument,
  purchaseParser,
  purchasePath,
  TICKET_OPTION_ID_POINTER,
} from './purchase.document';
import { PurchaseCommand, PurchasesService } from './purchases.service';

@ApiTags('purchases')
@Controller()
export class PurchasesController {
  constructor(private readonly purchases: PurchasesService) {}

  @Post('purchases')
  @HttpCode(201)
  @ApiJsonApiOperation({
    summary: 'Buy tickets',
    description:
      'Buys `quantity` (1 ≤ n ≤ 2147483647) tickets of the `ticket_option` for the `user` (any UUID: users are not managed here). A 201 is sent only once the purchase is committed; a refusal sells nothing.',
    requestBody: SCHEMAS.purchaseRequest,
    success: {
      status: 201,
      schema: SCHEMAS.purchase,
      description: 'Created: the purchase is committed.',
    },
    errors: ['invalid_attribute', 'invalid_relationship', 'invalid_purchase_quantity', 'not_found'],
    idempotent: true,
    query: PURCHASE_CREATE_QUERY,
  })
  async create(
    @JsonApiBody(purchaseParser) document: ParsedResource<PurchaseAttributes>,
    @JsonApiQueryOf(PURCHASE_CREATE_QUERY) query: JsonApiQuery,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyClaimOf() idempotency: IdempotencyClaim | undefined,
  ) {
    // The parser guarantees the required relationships are present.
    const ticketOptionId = document.relationships.ticket_option!.id;
    return this.buy(reply, query, {
      ticketOptionId,
      userId: document.relationships.user!.id,
      quantity: document.attributes.quantity,
      ticketOptionPointer: TICKET_OPTION_ID_POINTER,
      idempotency,
    });
  }

  /** The same purchase, routed by path so that a load balancer can hash on the option id. */
  @Post('ticket_options/:id/purchases')
  @HttpCode(201)
  @ApiJsonApiOperation({
    summary: 'Buy tickets of the option in the path',
    description:
      'The same purchase as `POST /purchases`, with the option taken from the path, so that a load balancer can route every purchase of one option to one instance. The `ticket_option` relationship may be omitted; if present it must name the same option (else 409 `id_conflict`).',
    requestBody: SCHEMAS.nestedPurchaseRequest,
    pathId: 'The ticket option to buy from.',
    success: {
      status: 201,
      schema: SCHEMAS.purchase,
      description: 'Created: the purchase is committed.',
    },
    errors: [
      'invalid_attribute',
      'invalid_relationship',
      'invalid_purchase_quantity',
      'not_found',
      'id_conflict',
    ],
    idempotent: true,
    query: PURCHASE_CREATE_QUERY,
  })
  async createForOption(
    @UuidPathParam('id') ticketOptionId: string,
    @JsonApiBody(nestedPurchaseParser) document: ParsedResource<PurchaseAttributes>,
    @JsonApiQueryOf(PURCHASE_CREATE_QUERY) query: JsonApiQuery,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyClaimOf() idempotency: IdempotencyClaim | undefined,
  ) {
    const linked = document.relationships.ticket_option;
    if (linked && linked.id !== ticketOptionId) {
      throw new DomainError({
        code: 'id_conflict',
        detail: `The ticket_option relationship (${linked.id}) does not match the path (${ticketOptionId}).`,
        source: { pointer: TICKET_OPTION_ID_POINTER },
      });
    }
    return this.buy(reply, query, {
      ticketOptionId,
      userId: document.relationships.user!.id,
      quantity: document.attributes.quantity,
      idempotency,
    });
  }

  @Get('purchases/:id')
  @ApiJsonApiOperation({
    summary: 'Read a purchase',
    description:
      '`include=ticket_option` adds the option to `included` (a compound document); `fields[TYPE]` keeps only the listed fields of that type.',
    pathId: 'The purchase id.',
    success: {
      status: 200,
      schema: SCHEMAS.purchaseCompound,
      description: 'The purchase, as answered when it was created (with `included` if asked).',
    },
    errors: ['not_found'],
    query: PURCHASE_READ_QUERY,
  })
  async findOne(
    @UuidPathParam('id') id: string,
    @JsonApiQueryOf(PURCHASE_READ_QUERY) query: JsonApiQuery,
  ) {
    const document =
      query.include === null
        ? purchaseDocument(await this.purchases.findOne(id))
        : await this.purchases
            .findOneIncluding(id, query.include)
            .then(({ purchase, included }) => purchaseDocument(purchase, included));
    return applySparseFieldsets(document, query);
  }

  private async buy(reply: FastifyReply, query: JsonApiQuery, command: PurchaseCommand) {
    const purchase = await this.purchases.purchase(command);
    void reply.header('location', purchasePath(purchase.id));
    return applySparseFieldsets(purchaseDocument(purchase), query);
  }
}
