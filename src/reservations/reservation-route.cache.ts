import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';

/** What never changes about a reservation: where it is decided, and what it holds for whom. */
export interface ReservationRoute {
  ticketOptionId: string;
  userId: string;
  quantity: number;
}

/**
 * The immutable fields of the holds this instance created, so that confirming or releasing one of
 * them needs no read before its commit (the commit decides its state anyway). Bounded
 * (`RESERVATION_ROUTE_CACHE` entries, oldest dropped first); a miss only costs that read.
 */
@Injectable()
export class ReservationRouteCache {
  private readonly routes = new Map<string, ReservationRoute>();
  private readonly capacity: number;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.capacity = config.reservations.routeCacheSize;
  }

  remember(reservationId: string, route: ReservationRoute): void {
    if (this.capacity === 0) return;
    this.routes.set(reservationId, route);
    if (this.routes.size > this.capacity) {
      this.routes.delete(this.routes.keys().next().value!);
    }
  }

  get(reservationId: string): ReservationRoute | undefined {
    return this.routes.get(reservationId);
  }

  /** The reservation reached a final state: later requests read it (and are refused at once). */
  forget(reservationId: string): void {
    this.routes.delete(reservationId);
  }
}
