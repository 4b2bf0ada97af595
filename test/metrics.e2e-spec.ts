import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { TicketOptionActorRegistry } from '../src/allocation/ticket-option-actor.registry';
import { untilSomeoneWaitsForALock } from './support/database-outage';
import { ApiResponse, JsonApiClient } from './support/jsonapi-client';
import { parsePrometheus, PromSample, valueOf } from './support/prometheus';
import { startTestApp, TestApp } from './support/test-app';

const NAMED_METRICS = [
  ['http_request_duration_seconds', 'histogram'],
  ['ticket_purchases_accepted_total', 'counter'],
  ['ticket_purchases_refused_total', 'counter'],
  ['tickets_sold_total', 'counter'],
  ['ticket_purchases_overloaded_total', 'counter'],
  ['ticket_actor_batch_size', 'histogram'],
  ['ticket_actor_version_conflicts_total', 'counter'],
  ['ticket_actor_foreign_writes_total', 'counter'],
  ['ticket_actor_commit_retries_total', 'counter'],
  ['ticket_actor_failed_commits_total', 'counter'],
  ['ticket_option_reads_total', 'counter'],
  ['ticket_option_read_statements_total', 'counter'],
  ['ticket_actor_activations_total', 'counter'],
  ['ticket_actor_passivations_total', 'counter'],
  ['ticket_actor_queue_depth', 'gauge'],
  ['ticket_actors_live', 'gauge'],
  ['db_pool_connections', 'gauge'],
  ['db_pool_pending_acquires', 'gauge'],
  ['db_pool_max_connections', 'gauge'],
  // prom-client's default process metrics
  ['process_cpu_seconds_total', 'counter'],
  ['process_resident_memory_bytes', 'gauge'],
  ['nodejs_eventloop_lag_seconds', 'gauge'],
  ['nodejs_heap_size_used_bytes', 'gauge'],
];

describe('metrics', () => {
  let t: TestApp;
  let client: JsonApiClient;
  let registry: TicketOptionActorRegistry;

  beforeAll(async () => {
    // No passivation sweep during the file (however long a busy machine makes it): the live
    // actors gauge is compared with the registry's size. No expiry sweep either: its statement
    // would take a pool connection at moments the pool gauges are compared.
    t = await startTestApp({
      env: { DB_POOL_SIZE: '7', ACTOR_IDLE_MS: '86400000', RESERVATION_SWEEP_MS: '60000' },
    });
    client = new JsonApiClient(t.baseUrl);
    registry = t.app.get(TicketOptionActorRegistry);
  });
  afterAll(() => t.close());

  async function scrape(): Promise<PromSample[]> {
    const response = await client.get('/metrics');
    expect(response.status).toBe(200);
    return parsePrometheus(response.text);
  }

  it('GET /metrics serves every named metric in the Prometheus text format, whatever the Accept', async () => {
    for (const accept of [undefined, 'application/json', '*/*', 'text/plain']) {
      const response = await client.get('/metrics', accept ? { accept } : {});
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      for (const [name, type] of NAMED_METRICS) {
        expect(response.text).toContain(`\n# TYPE ${name} ${type}\n`);
      }
      expect(() => parsePrometheus(response.text)).not.toThrow();
    }
    const samples = await scrape();
    expect(valueOf(samples, 'db_pool_max_connections')).toBe(7);
  });

  it('purchase counters move by exactly what the clients were told', async () => {
    const optionId = await client.createTicketOption({ name: 'Counted', allocation: 10 });
    const before = await scrape();
    const statsBefore = registry.stats();

    const quantities = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]; // 24 asked, 10 available
    const answers = await Promise.all(quantities.map((q) => client.purchase(optionId, q)));
    const invalid = await client.purchase(optionId, 0); // 400 invalid_attribute, not a refusal
    const unknown = await client.purchase(randomUUID(), 1); // 404

    const after = await scrape();
    const statsAfter = registry.stats();
    const delta = (name: string, labels: Record<string, string> = {}) =>
      valueOf(after, name, labels) - valueOf(before, name, labels);

    const accepted = answers.filter((a) => a.status === 201);
    const refused = answers.filter(
      (a) => a.status === 400 && a.body.errors[0].code === 'invalid_purchase_quantity',
    );
    expect(accepted.length + refused.length).toBe(quantities.length);
    expect(accepted.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    expect(invalid.status).toBe(400);
    expect(unknown.status).toBe(404);
    const sold = accepted.reduce((sum, a) => sum + (a.body.data.attributes.quantity as number), 0);
    expect(sold).toBeLessThanOrEqual(10);

    expect(delta('ticket_purchases_accepted_total')).toBe(accepted.length);
    expect(delta('tickets_sold_total')).toBe(sold);
    expect(delta('ticket_purchases_refused_total')).toBe(refused.length);
    // One observation per commit, of the purchases it wrote.
    const commits = statsAfter.commits - statsBefore.commits;
    expect(commits).toBeGreaterThan(0);
    expect(delta('ticket_actor_batch_size_count')).toBe(commits);
    expect(delta('ticket_actor_batch_size_sum')).toBe(accepted.length);
    expect(delta('ticket_actor_version_conflicts_total')).toBe(0);
    expect(delta('ticket_actor_commit_retries_total')).toBe(0);
    expect(valueOf(after, 'ticket_actor_queue_depth')).toBe(0);
    expect(valueOf(after, 'ticket_actors_live')).toBe(registry.size);

    // The request histogram, by route pattern and status.
    const route = (status: string) => ({
      method: 'POST',
      route: '/purchases',
      status_code: status,
    });
    const http = (status: string) => delta('http_request_duration_seconds_count', route(status));
    expect(http('201')).toBe(accepted.length);
    expect(http('400')).toBe(refused.length + 1);
    expect(http('404')).toBe(1);
  });

  /** Another instance sells tickets: a purchase row plus the version-bumping update. */
  async function sellBehindTheActorsBack(
    app: TestApp,
    optionId: string,
    quantity: number,
  ): Promise<void> {
    await app.sql.query(
      `WITH bump AS (UPDATE ticket_options SET purchased = purchased + $4, version = version + 1 WHERE id = $1)
       INSERT INTO purchases (id, ticket_option_id, user_id, quantity) VALUES ($2, $1, $3, $4)`,
      [optionId, randomUUID(), randomUUID(), quantity],
    );
  }

  it('guarded commits: a foreign write that still fits is counted as seen; one that took the capacity as a conflict, then a refusal', async () => {
    const optionId = await client.createTicketOption({ name: 'Raced', allocation: 10 });
    expect((await client.purchase(optionId, 3)).status).toBe(201); // the actor caches purchased = 3
    let before = await scrape();
    const delta = (after: PromSample[], name: string) =>
      valueOf(after, name) - valueOf(before, name);

    await sellBehindTheActorsBack(t, optionId, 2); // truth: 5 purchased, the actor thinks 3
    expect((await client.purchase(optionId, 1)).status).toBe(201); // 6 <= 10: fits anyway
    let after = await scrape();
    expect(delta(after, 'ticket_actor_foreign_writes_total')).toBe(1);
    expect(delta(after, 'ticket_actor_version_conflicts_total')).toBe(0);

    before = after;
    await sellBehindTheActorsBack(t, optionId, 3); // truth: 9, the actor thinks 6
    const refused = await client.purchase(optionId, 2); // fits 6, not 9: the guard refuses it
    expect(refused.status).toBe(400);
    after = await scrape();
    expect(delta(after, 'ticket_actor_version_conflicts_total')).toBe(1);
    expect(delta(after, 'ticket_actor_commit_retries_total')).toBe(0);
    expect(delta(after, 'ticket_purchases_refused_total')).toBe(1);
    expect(delta(after, 'ticket_purchases_accepted_total')).toBe(0);
  });

  it('cas commits: a version race lost to another writer counts one conflict and one retry', async () => {
    const cas = await startTestApp({ env: { ACTOR_COMMIT_MODE: 'cas' } });
    try {
      const casClient = new JsonApiClient(cas.baseUrl);
      const optionId = await casClient.createTicketOption({ name: 'Raced', allocation: 10 });
      expect((await casClient.purchase(optionId, 1)).status).toBe(201); // caches the version
      const scrapeCas = async () => parsePrometheus((await casClient.get('/metrics')).text);
      const before = await scrapeCas();

      await sellBehindTheActorsBack(cas, optionId, 1);
      expect((await casClient.purchase(optionId, 1)).status).toBe(201);

      const after = await scrapeCas();
      const delta = (name: string) => valueOf(after, name) - valueOf(before, name);
      expect(delta('ticket_actor_version_conflicts_total')).toBe(1);
      expect(delta('ticket_actor_commit_retries_total')).toBe(1);
      expect(delta('ticket_purchases_accepted_total')).toBe(1);
      expect(delta('ticket_actor_batch_size_count')).toBe(1);
    } finally {
      await cas.close();
    }
  });

  it('labels requests by route pattern, never by raw URL', async () => {
    const optionId = await client.createTicketOption({ name: 'Routed', allocation: 1 });
    const missing = randomUUID();
    const stray = randomUUID();
    const before = await scrape();
    expect((await client.get(`/ticket_options/${optionId}`)).status).toBe(200);
    expect((await client.get(`/ticket_options/${missing}`)).status).toBe(404);
    expect((await client.get(`/no/such/route/${stray}`)).status).toBe(404);

    const response = await client.get('/metrics');
    const after = parsePrometheus(response.text);
    const delta = (labels: Record<string, string>) =>
      valueOf(after, 'http_request_duration_seconds_count', labels) -
      valueOf(before, 'http_request_duration_seconds_count', labels);
    const get = { method: 'GET', route: '/ticket_options/:id' };
    expect(delta({ ...get, status_code: '200' })).toBe(1);
    expect(delta({ ...get, status_code: '404' })).toBe(1);
    expect(delta({ method: 'GET', route: 'unmatched', status_code: '404' })).toBe(1);
    for (const id of [optionId, missing, stray]) expect(response.text).not.toContain(id);
  });

  it('reports the pool and the actor queue while a commit is blocked in the database', async () => {
    const optionId = await client.createTicketOption({ name: 'Queued', allocation: 5 });
    const locker = new Client({ connectionString: t.databaseUrl });
    await locker.connect();
    let first: Promise<ApiResponse> | undefined;
    let second: Promise<ApiResponse> | undefined;
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM ticket_options WHERE id = $1 FOR UPDATE', [optionId]);
      first = client.purchase(optionId, 1);
      await untilSomeoneWaitsForALock(t.databaseUrl);
      second = client.purchase(optionId, 1); // queues behind the commit in flight
      while (registry.stats().queueDepth === 0) await new Promise((r) => setTimeout(r, 5));

      const samples = await scrape();
      expect(valueOf(samples, 'ticket_actor_queue_depth')).toBe(1);
      expect(valueOf(samples, 'db_pool_connections', { state: 'used' })).toBe(1);
      expect(valueOf(samples, 'db_pool_pending_acquires')).toBe(0);
      expect(
        valueOf(samples, 'db_pool_connections', { state: 'used' }) +
          valueOf(samples, 'db_pool_connections', { state: 'free' }),
      ).toBeLessThanOrEqual(7);
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    expect((await first).status).toBe(201);
    expect((await second).status).toBe(201);
    expect(valueOf(await scrape(), 'ticket_actor_queue_depth')).toBe(0);
  });

  it('each application instance has its own registry', async () => {
    const other = await startTestApp();
    try {
      const otherClient = new JsonApiClient(other.baseUrl);
      const optionId = await client.createTicketOption({ name: 'Mine', allocation: 3 });
      expect((await client.purchase(optionId, 3)).status).toBe(201);
      const samples = parsePrometheus((await otherClient.get('/metrics')).text);
      expect(valueOf(samples, 'ticket_purchases_accepted_total')).toBe(0);
      expect(valueOf(samples, 'tickets_sold_total')).toBe(0);
      expect(valueOf(samples, 'db_pool_max_connections')).toBe(10);
    } finally {
      await other.close();
    }
  });
});
