import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { PostgresTicketOptionStore } from '../allocation/postgres-ticket-option.store';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';

/** Totals of this instance's sweeps, for metrics. */
export interface SweepStats {
  sweeps: number;
  holdsExpired: number;
  ticketsReturned: number;
  failures: number;
}

/**
 * Expires due holds on every instance, every `RESERVATION_SWEEP_MS` (docs/design.md,
 * Reservations): expiry never rests on the timer of the instance that created a hold, so with
 * every instance gone but one, due tickets still come back within a sweep period. Instances
 * share the work: each sweep skips the options another writer has locked at that moment.
 */
@Injectable()
export class ReservationExpirySweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ReservationExpiry');
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  readonly stats: SweepStats = { sweeps: 0, holdsExpired: 0, ticketsReturned: 0, failures: 0 };

  constructor(
    private readonly store: PostgresTicketOptionStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.tick(), this.config.reservations.sweepMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One sweep now (skipped while the previous one still runs); resolves when it is done. */
  sweep(): Promise<void> {
    this.running ??= this.expire().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private tick(): void {
    if (this.running === null) void this.sweep();
  }

  private async expire(): Promise<void> {
    this.stats.sweeps++;
    try {
      const expired = await this.store.expireDue(this.config.reservations.sweepLimit);
      if (expired.length === 0) return;
      const holds = expired.reduce((sum, option) => sum + option.holds, 0);
      const tickets = expired.reduce((sum, option) => sum + option.tickets, 0);
      this.stats.holdsExpired += holds;
      this.stats.ticketsReturned += tickets;
      this.logger.log(
        `expired ${holds} due holds (${tickets} tickets back) of ${expired.length} ticket options`,
      );
    } catch (error) {
      // The next sweep tries again; nothing was written by this one.
      this.stats.failures++;
      this.logger.warn(`sweep of due holds failed: ${(error as Error).message}`);
    }
  }
}
