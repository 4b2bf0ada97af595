import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { pointingAtOption, ReservationStateError } from '../allocation/allocation.errors';
import { TicketOptionActorRegistry } from '../allocation/ticket-option-actor.registry';
import { DomainError, NotFoundError } from '../common/domain.error';
import { namesOnPaths } from '../jsonapi/resource-type';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import type { IdempotencyClaim } from '../idempotency/idempotency-claim';
import {
  CREATED_AT_PLACEHOLDER,
  EXPIRES_AT_PLACEHOLDER,
  ReservationIncluded,
  reservationDocument,
  ReservationView,
  TTL_POINTER,
} from './reservation.document';
import { ReservationRouteCache } from './reservation-route.cache';
import { ReservationsRepository } from './reservations.repository';

export interface HoldCommand {
  ticketOptionId: string;
  userId: string;
  quantity: number;
  ttlSeconds?: number;
  /** Where the option id came from in the request, for the 404's `source.pointer`. */
  ticketOptionPointer?: string;
  idempotency?: IdempotencyClaim;
}

@Injectable()
export class ReservationsService {
  constructor(
    private readonly actors: TicketOptionActorRegistry,
    private readonly reservations: ReservationsRepository,
    private readonly routes: ReservationRouteCache,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Holds tickets through the option's actor; `expires_at` comes from the commit's database time. */
  async hold(command: HoldCommand): Promise<ReservationView> {
    const ttlSeconds = this.ttlOf(command.ttlSeconds);
    const id = randomUUID();
    const pending: ReservationView = {
      id,
      ticketOptionId: command.ticketOptionId,
      userId: command.userId,
      quantity: command.quantity,
      status: 'held',
      expiresAt: EXPIRES_AT_PLACEHOLDER,
      createdAt: CREATED_AT_PLACEHOLDER,
      purchaseId: null,
    };
    try {
      const receipt = await this.actors.get(command.ticketOptionId).hold({
        id,
        userId: command.userId,
        quantity: command.quantity,
        ttlSeconds,
        idempotency: command.idempotency && {
          ...command.idempotency,
          responseBody: JSON.stringify(reservationDocument(pending)),
        },
      });
      const { ticketOptionId, userId, quantity } = command;
      this.routes.remember(id, { ticketOptionId, userId, quantity });
      return {
        ...pending,
        expiresAt: receipt.expiresAt.toISOString(),
        createdAt: receipt.createdAt.toISOString(),
      };
    } catch (error) {
      throw pointingAtOption(error, command.ticketOptionPointer);
    }
  }

  /**
   * Releases a held reservation (its tickets are available at once). Released or expired: nothing
   * changes; confirmed: 409 (its tickets are sold).
   */
  async release(id: string): Promise<void> {
    const remembered = this.routes.get(id);
    const reservation = remembered ?? (await this.findOne(id));
    if ('status' in reservation) {
      if (reservation.status === 'confirmed') {
        throw new ReservationStateError('confirmed', id, undefined);
      }
      if (reservation.status !== 'held') return;
    }
    await this.actors.get(reservation.ticketOptionId).release(id);
    this.routes.forget(id);
  }

  async findOne(id: string): Promise<ReservationView> {
    const view = await this.reservations.findById(id);
    if (!view) throw reservationNotFound(id);
    return view;
  }

  async findOneIncluding(
    id: string,
    include: ReadonlySet<string>,
  ): Promise<{ reservation: ReservationView; included: ReservationIncluded }> {
    const found = await this.reservations.findWithRelated(id);
    if (!found) throw reservationNotFound(id);
    const included: ReservationIncluded = {};
    // `purchase.ticket_option` is this reservation's option; `purchase.reservation` is itself.
    const names = namesOnPaths(include);
    if (names.has('ticket_option')) included.ticketOption = found.ticketOption;
    if (names.has('purchase') && found.purchase) included.purchase = found.purchase;
    return { reservation: found.reservation, included };
  }

  private ttlOf(requested: number | undefined): number {
    const { defaultTtlSeconds, maxTtlSeconds } = this.config.reservations;
    if (requested === undefined) return defaultTtlSeconds;
    if (requested > maxTtlSeconds) {
      throw new DomainError({
        code: 'invalid_attribute',
        detail: `"ttl_seconds" must be at most ${maxTtlSeconds}.`,
        source: { pointer: TTL_POINTER },
      });
    }
    return requested;
  }
}

function reservationNotFound(id: string): NotFoundError {
  return new NotFoundError(`Reservation ${JSON.stringify(id)} does not exist.`);
}
