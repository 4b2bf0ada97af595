import { MikroORM } from '@mikro-orm/postgresql';
import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TicketOptionActorRegistry } from '../allocation/ticket-option-actor.registry';
import type { RegistryStats } from '../allocation/ticket-option-actor.registry';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { ReservationExpirySweeper } from '../reservations/reservation-expiry.sweeper';
import { poolOf } from '../database/sql';
import { TicketOptionsRepository } from '../ticket-options/ticket-options.repository';
import { BoundHistogram } from './bound-histogram';

type Observer = (seconds: number) => void;

/** The `route` label of requests that matched no route: raw URLs would explode cardinality. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * The Prometheus metrics of one application instance, in a registry of its own (several instances
 * may share a process in tests). Per request the cost is one histogram observation in an
 * onResponse hook; the actor counters are read from the actor registry's totals when scraped, and
 * the batch histogram is fed once per commit.
 */
@Injectable()
export class MetricsService implements OnModuleInit {
  readonly registry = new Registry();
  /** One read of the actor totals per scrape, shared by every metric derived from it. */
  private snapshot: RegistryStats;

  private readonly httpDuration = new BoundHistogram(
    'http_request_duration_seconds',
    'Time from request received to response sent, by method, route pattern and status.',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    this.registry,
  );

  /**
   * The observer per label set (route pattern, method, status), bound once: an observation is
   * then three Map lookups on keys that are the same strings and numbers each time (no key is
   * built per request) and a bucket increment. Bounded like the labels.
   */
  private readonly httpDurationSeries = new Map<string, Map<string, Map<number, Observer>>>();

  private readonly batchSize = new Histogram({
    name: 'ticket_actor_batch_size',
    help: 'Purchases written by one successful actor commit (group commit).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  });

  private readonly commitRetries = new Counter({
    name: 'ticket_actor_commit_retries_total',
    help: 'Commit attempts after the first (each follows a lost version race), of commits that succeeded.',
    registers: [this.registry],
  });

  constructor(
    private readonly actors: TicketOptionActorRegistry,
    private readonly orm: MikroORM,
    private readonly adapterHost: HttpAdapterHost,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly sweeper: ReservationExpirySweeper,
    private readonly ticketOptions: TicketOptionsRepository,
  ) {
    this.snapshot = actors.stats();
    collectDefaultMetrics({ register: this.registry });
    this.registerActorMetrics();
    this.registerPoolMetrics();
  }

  onModuleInit(): void {
    this.actors.observeCommits((batchSize, attempt) => {
      this.batchSize.observe(batchSize);
      if (attempt > 1) this.commitRetries.inc(attempt - 1);
    });
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onResponse', (request, reply, done) => {
      this.observeRequest(request, reply);
      done();
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text; reads the actor totals once for all the metrics derived from them. */
  async render(): Promise<string> {
    this.snapshot = this.actors.stats();
    return this.registry.metrics();
  }

  private observeRequest(request: FastifyRequest, reply: FastifyReply): void {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const { method } = request;
    const status = reply.statusCode;
    let byMethod = this.httpDurationSeries.get(route);
    if (byMethod === undefined)
      this.httpDurationSeries.set(route, (byMethod = new Map<string, Map<number, Observer>>()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map<number, Observer>()));
    let observe = byStatus.get(status);
    if (observe === undefined) {
      const labels = { method, route, status_code: String(status) };
      observe = this.httpDuration.series(`${method} ${status} ${route}`, () => labels);
      byStatus.set(status, observe);
    }
    observe(reply.elapsedTime / 1000);
  }

  private registerActorMetrics(): void {
    const counters: Array<[string, string, (s: RegistryStats) => number]> = [
      [
        'ticket_purchases_accepted_total',
        'Purchases committed (answered 201).',
        (s) => s.purchasesCommitted,
      ],
      [
        'ticket_purchases_refused_total',
        'Purchases refused because fewer tickets remained (400 invalid_purchase_quantity).',
        (s) => s.refusals,
      ],
      [
        'tickets_sold_total',
        'Tickets sold: the sum of committed quantities.',
        (s) => s.ticketsCommitted,
      ],
      [
        'ticket_purchases_overloaded_total',
        "Purchases turned away (503) because their option's actor queue was full.",
        (s) => s.overloaded,
      ],
      [
        'ticket_actor_version_conflicts_total',
        'Actor commits refused by their guard, races lost to another writer (cas: the version ' +
          'moved; guarded: the capacity was taken); each is followed by a reload, then a retry, ' +
          'a refusal or a 503.',
        (s) => s.versionConflicts,
      ],
      [
        'ticket_purchases_idempotency_claim_lost_total',
        'Keyed purchases refused (409) because a retry of the same request took over their ' +
          'Idempotency-Key before they committed; nothing was bought by them.',
        (s) => s.lostClaims,
      ],
      [
        'ticket_actor_foreign_writes_total',
        'Actor commits that found the row changed by another writer since their read, and still fitted.',
        (s) => s.foreignWritesSeen,
      ],
      [
        'ticket_actor_failed_commits_total',
        'Actor commits that failed on a database error (their batch got 503).',
        (s) => s.failedCommits,
      ],
      ['ticket_holds_created_total', 'Holds committed (answered 201).', (s) => s.holdsCommitted],
      [
        'ticket_holds_refused_total',
        'Holds refused because fewer tickets remained (400 invalid_reservation_quantity).',
        (s) => s.holdRefusals,
      ],
      [
        'ticket_holds_confirmed_total',
        'Holds confirmed into purchases (also counted in ticket_purchases_accepted_total).',
        (s) => s.holdsConfirmed,
      ],
      ['ticket_holds_released_total', 'Holds released by their client.', (s) => s.holdsReleased],
      [
        'ticket_holds_expired_total',
        'Due holds expired by this instance: by its sweeps, and by actors before a refusal.',
        (s) => s.holdsExpired + this.sweeper.stats.holdsExpired,
      ],
      [
        'ticket_purchases_cancelled_total',
        'Purchases cancelled (their tickets returned).',
        (s) => s.purchasesCancelled,
      ],
      [
        'ticket_hold_sweep_failures_total',
        'Expiry sweeps that failed (database error); the next one retries.',
        () => this.sweeper.stats.failures,
      ],
      [
        'ticket_option_reads_total',
        'Ticket options read from the database for GET /ticket_options/:id.',
        () => this.ticketOptions.readStats.requests,
      ],
      [
        'ticket_option_read_statements_total',
        'Statements those reads ran: the reads of one option that arrive while its statement ' +
          'runs share the next one.',
        () => this.ticketOptions.readStats.reads,
      ],
      ['ticket_actor_activations_total', 'Actors activated.', (s) => s.activations],
      ['ticket_actor_passivations_total', 'Idle actors passivated.', (s) => s.passivations],
    ];
    for (const [name, help, read] of counters) {
      const counter: Counter = new Counter({
        name,
        help,
        registers: [this.registry],
        // The actor registry keeps monotonic totals; a counter has no set(), so reset and add.
        collect: () => {
          counter.reset();
          counter.inc(read(this.snapshot));
        },
      });
    }
    const gauges: Array<[string, string, (s: RegistryStats) => number]> = [
      [
        'ticket_actor_queue_depth',
        'Purchases waiting in actor queues (not yet in a commit).',
        (s) => s.queueDepth,
      ],
      ['ticket_actors_live', 'Actors alive in this process.', (s) => s.liveActors],
      [
        'tickets_held',
        'Tickets held by reservations, summed over the options with a live actor in this process (as of each actor’s last commit or read; may include due holds not swept yet).',
        (s) => s.ticketsHeld,
      ],
    ];
    for (const [name, help, read] of gauges) {
      const gauge: Gauge = new Gauge({
        name,
        help,
        registers: [this.registry],
        collect: () => gauge.set(read(this.snapshot)),
      });
    }
  }

  private registerPoolMetrics(): void {
    // pg-pool's public counters; `totalCount` includes connections still being opened.
    const pool = () => poolOf(this.orm).catch(() => undefined); // closed or not connected yet
    const connections: Gauge<'state'> = new Gauge({
      name: 'db_pool_connections',
      help: 'Database connections of the pool, by state (used: lent out or opening; free: idle).',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect: async () => {
        const current = await pool();
        connections.set({ state: 'used' }, (current?.totalCount ?? 0) - (current?.idleCount ?? 0));
        connections.set({ state: 'free' }, current?.idleCount ?? 0);
      },
    });
    const pendingAcquires: Gauge = new Gauge({
      name: 'db_pool_pending_acquires',
      help: 'Requests waiting for a pool connection.',
      registers: [this.registry],
      collect: async () => pendingAcquires.set((await pool())?.waitingCount ?? 0),
    });
    new Gauge({
      name: 'db_pool_max_connections',
      help: 'Configured pool size (DB_POOL_SIZE).',
      registers: [this.registry],
    }).set(this.config.dbPoolSize);
  }
}
