import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnModuleDestroy,
  OnModuleInit,
} from '@nestjs/common';
import { UnavailableError } from '../common/domain.error';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { ActorStats, emptyStats, TicketOptionActor } from './ticket-option.actor';
import { TICKET_OPTION_STORE } from './ticket-option.store';
import type { TicketOptionStore } from './ticket-option.store';

/**
 * One {@link TicketOptionActor} per ticket option in this process, activated on first use. Idle
 * actors are passivated after `idleMs`, and at most `maxLiveActors` live at once (the least recently
 * used idle one goes first), so memory stays bounded whatever the number of options.
 */
@Injectable()
export class TicketOptionActorRegistry
  implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown
{
  /** Insertion order = recency order: `get` moves an actor to the end. */
  private readonly actors = new Map<string, TicketOptionActor>();
  /** The last actor `get` returned: the end of that order already (no delete and re-insert). */
  private newest: TicketOptionActor | undefined;
  private readonly logger = new Logger(TicketOptionActorRegistry.name);
  private sweepTimer: NodeJS.Timeout | undefined;
  private draining = false;
  /** Counters of actors already passivated, so totals survive passivation. */
  private readonly retired: ActorStats = emptyStats();
  private activations = 0;
  private passivations = 0;
  private readonly commitListeners: CommitListener[] = [];

  constructor(
    @Inject(TICKET_OPTION_STORE) private readonly store: TicketOptionStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    const { idleMs } = this.config.actor;
    this.sweepTimer = setInterval(() => this.passivateIdle(), Math.min(idleMs, 10_000));
    this.sweepTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweepTimer);
  }

  /** Stop taking purchases, answer every queued one, then let the process go (SIGTERM path). */
  async beforeApplicationShutdown(): Promise<void> {
    await this.drain();
  }

  /** True once shutdown began: new purchases are refused (readiness reports it). */
  get isDraining(): boolean {
    return this.draining;
  }

  /** Subscribes to every successful batch commit of every actor (e.g. a batch-size histogram). */
  observeCommits(listener: CommitListener): void {
    this.commitListeners.push(listener);
  }

  get size(): number {
    return this.actors.size;
  }

  get(optionId: string): TicketOptionActor {
    if (this.draining) {
      throw new UnavailableError('The service is shutting down; retry on another instance.');
    }
    let actor = this.actors.get(optionId);
    // Already the most recently used (a hot option): the order is right as it is.
    if (actor !== undefined && actor === this.newest) return actor;
    if (actor) {
      this.actors.delete(optionId);
    } else {
      actor = new TicketOptionActor(optionId, this.store, {
        ...this.config.actor,
        onNotFound: (gone) => this.forget(gone),
        onClaimLost: (id, key) =>
          this.logger.warn(
            `idempotency claim lost before commit (ticket option ${id}, key ${JSON.stringify(key)}): purchase refused with 409, nothing bought`,
          ),
        onCommitted: (batchSize, attempt) => {
          for (const listener of this.commitListeners) listener(batchSize, attempt);
        },
      });
      this.activations++;
      this.evictIfFull();
    }
    this.actors.set(optionId, actor);
    this.newest = actor;
    return actor;
  }

  /** Totals over every actor of this process, for the benchmark and metrics. */
  stats(): RegistryStats {
    const totals = { ...this.retired };
    let queueDepth = 0;
    let ticketsHeld = 0;
    for (const actor of this.actors.values()) {
      for (const key of Object.keys(totals) as Array<keyof ActorStats>)
        totals[key] += actor.stats[key];
      queueDepth += actor.queueDepth;
      ticketsHeld += actor.cachedState?.held ?? 0;
    }
    return {
      ...totals,
      meanBatchSize: totals.commits === 0 ? 0 : totals.purchasesCommitted / totals.commits,
      queueDepth,
      ticketsHeld,
      liveActors: this.actors.size,
      activations: this.activations,
      passivations: this.passivations,
    };
  }

  async drain(): Promise<void> {
    this.draining = true;
    await Promise.all([...this.actors.values()].map((actor) => actor.whenIdle()));
  }

  private forget(actor: TicketOptionActor): void {
    if (this.actors.get(actor.optionId) === actor) this.retire(actor);
  }

  private evictIfFull(): void {
    const { maxLiveActors } = this.config.actor;
    if (this.actors.size < maxLiveActors) return;
    for (const actor of this.actors.values()) {
      if (actor.isIdle) {
        this.passivate(actor);
        if (this.actors.size < maxLiveActors) return;
      }
    }
  }

  /** Passivates actors idle for longer than `idleMs` (also called by the periodic sweep). */
  passivateIdle(now = Date.now()): void {
    const threshold = now - this.config.actor.idleMs;
    for (const actor of this.actors.values()) {
      if (actor.lastUsedAt > threshold) break; // the rest were used more recently
      if (actor.isIdle) this.passivate(actor);
    }
  }

  private passivate(actor: TicketOptionActor): void {
    actor.deactivate();
    this.passivations++;
    this.retire(actor);
  }

  private retire(actor: TicketOptionActor): void {
    for (const key of Object.keys(this.retired) as Array<keyof ActorStats>) {
      this.retired[key] += actor.stats[key];
    }
    this.actors.delete(actor.optionId);
    if (this.newest === actor) this.newest = undefined;
  }
}

export type CommitListener = (batchSize: number, attempt: number) => void;

export interface RegistryStats extends ActorStats {
  meanBatchSize: number;
  queueDepth: number;
  /** `held` of the options with a live actor here, as of each one's last commit or read. */
  ticketsHeld: number;
  liveActors: number;
  activations: number;
  passivations: number;
}
