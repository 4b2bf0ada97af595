import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import {
  RESERVATION_POINTER,
  ReservationStateError,
  pointingAtOption,
} from '../allocation/allocation.errors';
import { TicketOptionActorRegistry } from '../allocation/ticket-option-actor.registry';
import { DomainError, NotFoundError } from '../common/domain.error';
import { namesOnPaths } from '../jsonapi/resource-type';
import type { IdempotencyClaim } from '../idempotency/idempotency-claim';
import { ReservationRoute, ReservationRouteCache } from '../reservations/reservation-route.cache';
import { ReservationsRepository } from '../reservations/reservations.repository';
import {
  newPurchaseView,
  purchaseDocument,
  PurchaseIncluded,
  PurchaseView,
  TICKET_OPTION_ID_POINTER,
  USER_ID_POINTER,
} from './purchase.document';
import { PurchasesRepository } from './purchases.repository';

export interface PurchaseCommand {
  ticketOptionId: string;
  userId: string;
  quantity: number;
  /** Where the option id came from in the request, for the 404's `source.pointer`. */
  ticketOptionPointer?: string;
  /** Completed by the commit that writes this purchase. */
  idempotency?: IdempotencyClaim;
}

/** A confirmation: what the request said besides the reservation must match the reservation. */
export interface ConfirmCommand {
  reservationId: string;
  /** From the `ticket_option` relationship, if sent. */
  ticketOptionId?: string;
  /** From the path of the nested route. */
  pathTicketOptionId?: string;
  userId?: string;
  quantity?: number;
  idempotency?: IdempotencyClaim;
}

@Injectable()
export class PurchasesService {
  constructor(
    private readonly actors: TicketOptionActorRegistry,
    private readonly purchases: PurchasesRepository,
    private readonly reservations: ReservationsRepository,
    private readonly routes: ReservationRouteCache,
  ) {}

  /** Hands the purchase to the option's actor; resolves once it is committed. */
  async purchase(command: PurchaseCommand): Promise<PurchaseView> {
    const id = randomUUID();
    const { ticketOptionId, userId, quantity } = command;
    const view = newPurchaseView({ id, ticketOptionId, userId, quantity });
    try {
      await this.actors.get(command.ticketOptionId).purchase({
        id,
        userId: command.userId,
        quantity: command.quantity,
        idempotency: command.idempotency && completion(command.idempotency, view),
      });
      return view;
    } catch (error) {
      throw pointingAtOption(error, command.ticketOptionPointer);
    }
  }

  /**
   * Converts a held reservation into a purchase, through the actor of its option (any instance
   * can: the reservation is read here, its state decided by the commit). A reservation read as
   * expired, released or confirmed is refused at once: those states are final.
   */
  async confirm(command: ConfirmCommand): Promise<PurchaseView> {
    const { reservationId } = command;
    const reservation = this.routes.get(reservationId) ?? (await this.heldReservation(command));
    checkMatches(command, reservationId, reservation);
    const id = randomUUID();
    const { ticketOptionId, userId, quantity } = reservation;
    const view = newPurchaseView({ id, ticketOptionId, userId, quantity, reservationId });
    await this.actors.get(ticketOptionId).confirm({
      reservationId,
      purchaseId: id,
      userId,
      quantity,
      idempotency: command.idempotency && completion(command.idempotency, view),
    });
    this.routes.forget(reservationId);
    return view;
  }

  /** A reservation this instance did not create: read, and refused at once if it is final. */
  private async heldReservation(command: ConfirmCommand): Promise<ReservationRoute> {
    const reservation = await this.reservations.findById(command.reservationId);
    if (!reservation) {
      throw new NotFoundError(
        `Reservation ${JSON.stringify(command.reservationId)} does not exist.`,
        { pointer: RESERVATION_POINTER },
      );
    }
    checkMatches(command, reservation.id, reservation);
    if (reservation.status !== 'held') {
      throw new ReservationStateError(reservation.status, reservation.id);
    }
    return reservation;
  }

  /** Cancels a purchase (its tickets are available at once); a cancelled one stays cancelled. */
  async cancel(id: string): Promise<void> {
    const purchase = await this.findOne(id);
    if (purchase.status === 'cancelled') return;
    await this.actors.get(purchase.ticketOptionId).cancel(id);
  }

  async findOne(id: string): Promise<PurchaseView> {
    const view = await this.purchases.findById(id);
    if (!view) throw purchaseNotFound(id);
    return view;
  }

  /** The purchase and the related resources named by `include` (paths already validated). */
  async findOneIncluding(
    id: string,
    include: ReadonlySet<string>,
  ): Promise<{ purchase: PurchaseView; included: PurchaseIncluded }> {
    const included: PurchaseIncluded = {};
    let purchase: PurchaseView;
    // `reservation.ticket_option` is this purchase's option; `reservation.purchase` is itself.
    const names = namesOnPaths(include);
    if (names.has('ticket_option')) {
      const row = await this.purchases.findWithOption(id);
      if (!row) throw purchaseNotFound(id);
      const { name, description, allocation, ...view } = row;
      purchase = view;
      included.ticketOption = { id: view.ticketOptionId, name, description, allocation };
    } else {
      purchase = await this.findOne(id);
    }
    if (names.has('reservation') && purchase.reservationId !== null) {
      included.reservation =
        (await this.reservations.findById(purchase.reservationId)) ?? undefined;
    }
    return { purchase, included };
  }
}

function purchaseNotFound(id: string): NotFoundError {
  return new NotFoundError(`Purchase ${JSON.stringify(id)} does not exist.`);
}

/** The answer a keyed purchase's commit records with its key: the very document it answers. */
function completion(claim: IdempotencyClaim, view: PurchaseView) {
  return { ...claim, responseBody: JSON.stringify(purchaseDocument(view)) };
}

/** Option, user and quantity, where the confirmation repeats them, are the reservation's. */
function checkMatches(
  command: ConfirmCommand,
  reservationId: string,
  reservation: ReservationRoute,
): void {
  const conflict = (what: string, given: string, pointer: string) =>
    new DomainError({
      code: 'id_conflict',
      detail: `The ${what} (${given}) is not the reservation's (${reservationId}).`,
      source: { pointer },
    });
  if (command.pathTicketOptionId && command.pathTicketOptionId !== reservation.ticketOptionId) {
    throw conflict('ticket option in the path', command.pathTicketOptionId, RESERVATION_POINTER);
  }
  if (command.ticketOptionId && command.ticketOptionId !== reservation.ticketOptionId) {
    throw conflict('ticket_option relationship', command.ticketOptionId, TICKET_OPTION_ID_POINTER);
  }
  if (command.userId && command.userId !== reservation.userId) {
    throw conflict('user relationship', command.userId, USER_ID_POINTER);
  }
  if (command.quantity !== undefined && command.quantity !== reservation.quantity) {
    throw new DomainError({
      code: 'invalid_attribute',
      detail: `"quantity" must be the reservation's (${reservation.quantity}), or omitted.`,
      source: { pointer: '/data/attributes/quantity' },
    });
  }
}
