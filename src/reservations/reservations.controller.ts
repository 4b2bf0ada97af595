import { Controller, Delete, Get, HttpCode, Post, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { IdempotencyClaim } from '../idempotency/idempotency-claim';
import { IdempotencyClaimOf } from '../idempotency/idempotency-claim.decorator';
import { JsonApiBody, JsonApiQueryOf, UuidPathParam } from '../jsonapi/jsonapi-params';
import { applySparseFieldsets } from '../jsonapi/query-parameters';
import type { JsonApiQuery } from '../jsonapi/query-parameters';
import type { ParsedResource } from '../jsonapi/resource-document';
import { ApiJsonApiOperation } from '../openapi/api-jsonapi-operation.decorator';
import { SCHEMAS } from '../openapi/openapi.schemas';
import { checkPathOption, TICKET_OPTION_ID_POINTER } from '../purchases/purchase.document';
import {
  nestedReservationParser,
  RESERVATION_CREATE_QUERY,
  RESERVATION_DELETE_QUERY,
  RESERVATION_READ_QUERY,
  ReservationAttributes,
  reservationDocument,
  reservationParser,
  reservationPath,
  ReservationView,
} from './reservation.document';
import { HoldCommand, ReservationsService } from './reservations.service';

const HOLD_DESCRIPTION =
  'Holds `quantity` tickets for the `user` until `expires_at` = the commit time + `ttl_seconds` (default `RESERVATION_TTL_S`, at most `RESERVATION_MAX_TTL_S`), by the database clock. Held tickets count against `remaining` until the reservation is confirmed (POST /purchases with a `reservation` relationship), released (DELETE) or expires; they are available to others no later than 1 s after `expires_at`.';

@ApiTags('reservations')
@Controller()
export class ReservationsController {
  constructor(private readonly reservations: ReservationsService) {}

  @Post('reservations')
  @HttpCode(201)
  @ApiJsonApiOperation({
    summary: 'Hold tickets',
    description: HOLD_DESCRIPTION,
    requestBody: SCHEMAS.reservationRequest,
    success: {
      status: 201,
      schema: SCHEMAS.reservation,
      description: 'Created: the hold is committed.',
    },
    errors: [
      'invalid_attribute',
      'invalid_relationship',
      'invalid_reservation_quantity',
      'not_found',
    ],
    idempotent: true,
    query: RESERVATION_CREATE_QUERY,
  })
  async create(
    @JsonApiBody(reservationParser) document: ParsedResource<ReservationAttributes>,
    @JsonApiQueryOf(RESERVATION_CREATE_QUERY) query: JsonApiQuery,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyClaimOf() idempotency: IdempotencyClaim | undefined,
  ) {
    return this.hold(reply, query, {
      ticketOptionId: document.relationships.ticket_option!.id,
      userId: document.relationships.user!.id,
      quantity: document.attributes.quantity,
      ttlSeconds: document.attributes.ttl_seconds,
      ticketOptionPointer: TICKET_OPTION_ID_POINTER,
      idempotency,
    });
  }

  /** The same hold, routed by path so that a load balancer can hash on the option id. */
  @Post('ticket_options/:id/reservations')
  @HttpCode(201)
  @ApiJsonApiOperation({
    summary: 'Hold tickets of the option in the path',
    description: `${HOLD_DESCRIPTION} The \`ticket_option\` relationship may be omitted; if present it must name the option of the path (else 409 \`id_conflict\`).`,
    requestBody: SCHEMAS.nestedReservationRequest,
    pathId: 'The ticket option to hold tickets of.',
    success: {
      status: 201,
      schema: SCHEMAS.reservation,
      description: 'Created: the hold is committed.',
    },
    errors: [
      'invalid_attribute',
      'invalid_relationship',
      'invalid_reservation_quantity',
      'not_found',
      'id_conflict',
    ],
    idempotent: true,
    query: RESERVATION_CREATE_QUERY,
  })
  async createForOption(
    @UuidPathParam('id') ticketOptionId: string,
    @JsonApiBody(nestedReservationParser)
    document: ParsedResource<ReservationAttributes>,
    @JsonApiQueryOf(RESERVATION_CREATE_QUERY) query: JsonApiQuery,
    @Res({ passthrough: true }) reply: FastifyReply,
    @IdempotencyClaimOf() idempotency: IdempotencyClaim | undefined,
  ) {
    checkPathOption(document.relationships.ticket_option, ticketOptionId);
    return this.hold(reply, query, {
      ticketOptionId,
      userId: document.relationships.user!.id,
      quantity: document.attributes.quantity,
      ttlSeconds: document.attributes.ttl_seconds,
      idempotency,
    });
  }

  @Get('reservations/:id')
  @ApiJsonApiOperation({
    summary: 'Read a reservation',
    description:
      '`status` is `held`, `confirmed` (with the `purchase` relationship), `released`, or `expired` (as soon as `expires_at` has passed, swept or not). `include=purchase,ticket_option` adds those to `included`.',
    pathId: 'The reservation id.',
    success: {
      status: 200,
      schema: SCHEMAS.reservationCompound,
      description: 'The reservation (with `included` if asked).',
    },
    errors: ['not_found'],
    query: RESERVATION_READ_QUERY,
  })
  async findOne(
    @UuidPathParam('id') id: string,
    @JsonApiQueryOf(RESERVATION_READ_QUERY) query: JsonApiQuery,
  ) {
    const document =
      query.include === null
        ? reservationDocument(await this.reservations.findOne(id))
        : await this.reservations
            .findOneIncluding(id, query.include)
            .then(({ reservation, included }) => reservationDocument(reservation, included));
    return applySparseFieldsets(document, query);
  }

  @Delete('reservations/:id')
  @HttpCode(204)
  @ApiJsonApiOperation({
    summary: 'Release a reservation',
    description:
      'Gives its tickets back at once. Releasing a released or expired reservation changes nothing (204); a confirmed one is 409 `reservation_confirmed` (cancel its purchase instead).',
    pathId: 'The reservation id.',
    success: { status: 204, description: 'Released (now or before), or expired.' },
    errors: ['not_found', 'reservation_confirmed'],
    query: RESERVATION_DELETE_QUERY,
  })
  async release(
    @UuidPathParam('id') id: string,
    @JsonApiQueryOf(RESERVATION_DELETE_QUERY) _query: JsonApiQuery,
  ): Promise<void> {
    await this.reservations.release(id);
  }

  private async hold(reply: FastifyReply, query: JsonApiQuery, command: HoldCommand) {
    const reservation: ReservationView = await this.reservations.hold(command);
    void reply.header('location', reservationPath(reservation.id));
    return applySparseFieldsets(reservationDocument(reservation), query);
  }
}
