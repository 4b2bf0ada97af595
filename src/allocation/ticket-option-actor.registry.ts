import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  OnModuleDestroy,
  OnModuleInit,
} from '@nestjs/common';
import { UnavailableError } from '../common/domain.error';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { TicketOptionActor } from './ticket-option.actor';
import { TICKET_OPTION_STORE } from './ticket-option.store';
import type { TicketOptionStore } from './ticket-option.store';

/**
 * One {@link TicketOptionActor} per ticket option in this process, activated on first use. Idle
 * actors are passivated after `idleMs`, and at most `maxActors` live at once (the least recently
 * used idle one goes first), so memory stays bounded whatever the number of options.
 */
@Injectable()
export class TicketOptionActorRegistry
  implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown
{
  /** Insertion order = recency order: `get` moves an actor to the end. */
  private readonly actors = new Map<string, TicketOptionActor>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private draining = false;
  private readonly idleMs = 60_000;
  private readonly maxActors = 10_000;

  constructor(
    @Inject(TICKET_OPTION_STORE) private readonly store: TicketOptionStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.sweepTimer = setInterval(() => this.passivateIdle(), Math.min(this.idleMs, 10_000));
    this.sweepTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweepTimer);
  }

  /** Stop taking purchases, answer every queued one, then let the process go (SIGTERM path). */
  async beforeApplicationShutdown(): Promise<void> {
    await this.drain();
  }

  get size(): number {
    return this.actors.size;
  }

  get(optionId: string): TicketOptionActor {
    if (this.draining) {
      throw new UnavailableError('The service is shutting down; retry on another instance.');
    }
    let actor = this.actors.get(optionId);
    if (actor) {
      this.actors.delete(optionId);
    } else {
      actor = new TicketOptionActor(optionId, this.store, {
        ...this.config.actor,
        onNotFound: (gone) => this.forget(gone),
      });
      this.evictIfFull();
    }
    this.actors.set(optionId, actor);
    return actor;
  }

  async drain(): Promise<void> {
    this.draining = true;
    await Promise.all([...this.actors.values()].map((actor) => actor.whenIdle()));
  }

  private forget(actor: TicketOptionActor): void {
    if (this.actors.get(actor.optionId) === actor) this.actors.delete(actor.optionId);
  }

  private evictIfFull(): void {
    if (this.actors.size < this.maxActors) return;
    for (const actor of this.actors.values()) {
      if (actor.isIdle) {
        this.passivate(actor);
        if (this.actors.size < this.maxActors) return;
      }
    }
  }

  private passivateIdle(): void {
    const threshold = Date.now() - this.idleMs;
    for (const actor of this.actors.values()) {
      if (actor.lastUsedAt > threshold) break; // the rest were used more recently
      if (actor.isIdle) this.passivate(actor);
    }
  }

  private passivate(actor: TicketOptionActor): void {
    actor.deactivate();
    this.actors.delete(actor.optionId);
  }
}
