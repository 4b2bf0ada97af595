import { Client } from 'pg';
import { TicketOptionActorRegistry } from '../src/allocation/ticket-option-actor.registry';
import { auditOption } from './support/audit';
import { untilSomeoneWaitsForALock } from './support/database-outage';
import { ApiResponse, JsonApiClient } from './support/jsonapi-client';
import { startTestApp, TestApp } from './support/test-app';

const QUEUE_BOUND = 5;

describe('overload', () => {
  let t: TestApp;
  let api: JsonApiClient;
  beforeAll(async () => {
    t = await startTestApp({
      env: { ACTOR_MAX_QUEUE_DEPTH: String(QUEUE_BOUND), DB_LOCK_TIMEOUT_MS: '60000' },
    });
    api = new JsonApiClient(t.baseUrl);
  });
  afterAll(() => t.close());

  it('beyond the queue bound answers 503 with Retry-After at once, keeps the queue bounded, and recovers', async () => {
    const optionId = await api.createTicketOption({ name: 'Overload', allocation: 1000 });
    // A foreign transaction holds the row: the actor's commit cannot finish, its queue fills.
    const side = new Client({ connectionString: t.databaseUrl });
    await side.connect();
    await side.query('BEGIN');
    await side.query('SELECT 1 FROM ticket_options WHERE id = $1 FOR UPDATE', [optionId]);

    const inFlight = api.purchase(optionId, 1);
    await untilSomeoneWaitsForALock(t.databaseUrl);

    const burst = 50;
    const refusedAll = burst - QUEUE_BOUND;
    const settled: ApiResponse[] = [];
    let signal: () => void = () => undefined;
    const refusedAnswered = new Promise<void>((resolve) => (signal = resolve));
    const answers = Array.from({ length: burst }, () =>
      api.purchase(optionId, 1).then((response) => {
        settled.push(response);
        if (settled.length === refusedAll) signal();
        return response;
      }),
    );
    // These answers arrive while the commit is still blocked: the refusals did not wait for it.
    await refusedAnswered;
    expect(settled.map((r) => r.status)).toEqual(Array(refusedAll).fill(503));
    for (const response of settled) {
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(response.body.errors[0]).toMatchObject({ status: '503', code: 'unavailable' });
    }
    const registry = t.app.get(TicketOptionActorRegistry);
    expect(registry.stats().queueDepth).toBe(QUEUE_BOUND);
    expect(registry.stats().overloaded).toBeGreaterThanOrEqual(refusedAll);

    await side.query('ROLLBACK');
    await side.end();
    const all = [await inFlight, ...(await Promise.all(answers))];
    expect(all.filter((r) => r.status === 201)).toHaveLength(QUEUE_BOUND + 1);

    // Load dropped (within the bound again): it sells normally.
    const after: ApiResponse[] = [];
    for (let wave = 0; wave < 4; wave++) {
      after.push(
        ...(await Promise.all(
          Array.from({ length: QUEUE_BOUND }, () => api.purchase(optionId, 1)),
        )),
      );
    }
    expect(after.every((r) => r.status === 201)).toBe(true);
    await auditOption(
      t.sql,
      optionId,
      [...all, ...after]
        .filter((r) => r.status !== 503)
        .map((response) => ({ quantity: 1, response })),
    );
  });
});
