import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { TicketOptionActorRegistry } from '../allocation/ticket-option-actor.registry';

/** Down once shutdown began: the actors refuse new purchases while they drain (SIGTERM). */
@Injectable()
export class ActorsHealthIndicator {
  constructor(
    private readonly actors: TicketOptionActorRegistry,
    private readonly indicators: HealthIndicatorService,
  ) {}

  check(key: string): HealthIndicatorResult {
    const check = this.indicators.check(key);
    return this.actors.isDraining
      ? check.down({ message: 'draining: shutting down, new purchases are refused' })
      : check.up();
  }
}
