import { Controller, Delete, Get, HttpCode, Post, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { IdempotencyClaim } from '../idempotency/idempotency-claim';
import { IdempotencyClaimOf } from '../idempotency/idempotency-claim.decorator';
import { JsonApiBody, JsonApiQueryOf, UuidPathParam } from '../jsonapi/jsonapi-params';
import { applySparseFieldsets } from '../jsonapi/query-parameters';
import type { JsonApiQuery } from '../jsonapi/query-parameters';
import { ApiJsonApiOperation } from '../openapi/api-jsonapi-operation.decorator';
import { SCHEMAS } from '../openapi/openapi.schemas';
import {
  checkPathOption,
  nestedPurchaseParser,
  PURCHASE_CREATE_QUERY,
  PURCHASE_DELETE_QUERY,
  PURCHASE_READ_QUERY,
  purchaseDocument,
  purchaseParser,
  purchasePath,
  PurchaseRequestParser,
  TICKET_OPTION_ID_POINTER,
} from './purchase.document';
import type { PurchaseRequestDocument, PurchaseView } from './purchase.document';
import { PurchasesService } from './purchases.service';

const CONFIRMATION_ERRORS = [
  'reservation_expired',
  'reservation_released',
  'reservation_confirmed',
] as const;

const directOrConfirmation = new PurchaseRequestParser(purchaseParser);
const nestedDirectOrConfirmation = new PurchaseRequestParser(nestedPurchaseParser);

@ApiTags('purchases')
@Controller()
export class PurchasesController {
  constructor(private readonly purchases: PurchasesService) {}

  @Post('purchases')
  @HttpCode(201)
  @ApiJsonApiOperation({
    summary: 'Buy tickets, or confirm a reservation',
    description:
      'Buys `quantity` (1 ≤ n ≤ 2147483647) tickets of the `ticket_option` for the `user` (any UUID: users are not managed here). A 201 is sent only once the purchase is committed; a refusal sells nothing. With a `reservation` relationship, confirms that held reservation instead: the whole hold becomes the purchase atomically, never refused for availability; `quantity`, `ticket_option` and `user` may then be omitted, and must match the reservation if sent.',
    requestBody: SCHEMAS.purchaseRequest,
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
      ...CONFIRMATION_ERRORS,
    ],
    idempotent: true,
    query: PURCHASE_CREATE_QUERY,
  })
  async create(
    @JsonApiBody(directOrConfirmation) request: PurchaseRequestDocument,
    @JsonApiQueryOf(PURCHASE_CREATE_QUERY) query: JsonApiQuery,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyClaimOf() idempotency: IdempotencyClaim | undefined,
  ) {
    if (request.confirmation) return this.answer(reply, query, this.confirm(request, idempotency));
    const { document } = request;
    // The parser guarantees the required relationships are present.
    return this.answer(
      reply,
      query,
      this.purchases.purchase({
        ticketOptionId: document.relationships.ticket_option!.id,
        userId: document.relationships.user!.id,
        quantity: document.attributes.quantity,
        ticketOptionPointer: TICKET_OPTION_ID_POINTER,
        idempotency,
      }),
    );
  }

  /** The same purchase, routed by path so that a load balancer can hash on the option id. */
  @Post('ticket_options/:id/purchases')
  @HttpCode(201)
  @ApiJsonApiOperation({
    summary: 'Buy tickets of the option in the path, or confirm a reservation of it',
    description:
      'The same purchase (or confirmation) as `POST /purchases`, with the option taken from the path, so that a load balancer can route every purchase of one option to one instance. The `ticket_option` relationship may be omitted; if present it must name the same option (else 409 `id_conflict`).',
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
      ...CONFIRMATION_ERRORS,
    ],
    idempotent: true,
    query: PURCHASE_CREATE_QUERY,
  })
  async createForOption(
    @UuidPathParam('id') ticketOptionId: string,
    @JsonApiBody(nestedDirectOrConfirmation) request: PurchaseRequestDocument,
    @JsonApiQueryOf(PURCHASE_CREATE_QUERY) query: JsonApiQuery,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyClaimOf() idempotency: IdempotencyClaim | undefined,
  ) {
    if (request.confirmation) {
      return this.answer(reply, query, this.confirm(request, idempotency, ticketOptionId));
    }
    const { document } = request;
    checkPathOption(document.relationships.ticket_option, ticketOptionId);
    return this.answer(
      reply,
      query,
      this.purchases.purchase({
        ticketOptionId,
        userId: document.relationships.user!.id,
        quantity: document.attributes.quantity,
        idempotency,
      }),
    );
  }

  @Get('purchases/:id')
  @ApiJsonApiOperation({
    summary: 'Read a purchase',
    description:
      '`status` is `completed`, or `cancelled` (with `cancelled_at`) after `DELETE /purchases/:id`. `include=ticket_option,reservation` adds those to `included` (a compound document); `fields[TYPE]` keeps only the listed fields of that type.',
    pathId: 'The purchase id.',
    success: {
      status: 200,
      schema: SCHEMAS.purchaseCompound,
      description: 'The purchase (with `included` if asked).',
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

  @Delete('purchases/:id')
  @HttpCode(204)
  @ApiJsonApiOperation({
    summary: 'Cancel a purchase',
    description:
      'Returns its tickets (available at once). The purchase is kept for the record, with `status: "cancelled"` and `cancelled_at`. Cancelling a cancelled purchase changes nothing (204).',
    pathId: 'The purchase id.',
    success: { status: 204, description: 'Cancelled (now or before).' },
    errors: ['not_found'],
    query: PURCHASE_DELETE_QUERY,
  })
  async cancel(
    @UuidPathParam('id') id: string,
    @JsonApiQueryOf(PURCHASE_DELETE_QUERY) _query: JsonApiQuery,
  ): Promise<void> {
    await this.purchases.cancel(id);
  }

  private confirm(
    request: Extract<PurchaseRequestDocument, { confirmation: true }>,
    idempotency: IdempotencyClaim | undefined,
    pathTicketOptionId?: string,
  ): Promise<PurchaseView> {
    const { relationships, attributes } = request.document;
    return this.purchases.confirm({
      reservationId: relationships.reservation!.id,
      ticketOptionId: relationships.ticket_option?.id,
      pathTicketOptionId,
      userId: relationships.user?.id,
      quantity: attributes.quantity,
      idempotency,
    });
  }

  private async answer(reply: FastifyReply, query: JsonApiQuery, created: Promise<PurchaseView>) {
    const purchase = await created;
    void reply.header('location', purchasePath(purchase.id));
    return applySparseFieldsets(purchaseDocument(purchase), query);
  }
}
