import { Client } from 'pg';
import { TicketOptionActorRegistry } from '../src/allocation/ticket-option-actor.registry';
import {
  allowConnections,
  refuseConnections,
  untilSomeoneWaitsForALock,
} from './support/database-outage';
import { ApiResponse, JsonApiClient } from './support/jsonapi-client';
import { createTestDatabase, startTestApp, TestApp } from './support/test-app';
import { waitFor } from './support/waiting';

const READY = {
  status: 'ok',
  info: { actors: { status: 'up' }, database: { status: 'up' } },
  error: {},
  details: { actors: { status: 'up' }, database: { status: 'up' } },
};

/**
 * The readiness answer once it satisfies `done`. Readiness pings PostgreSQL with a fixed 1 s
 * budget (src/health/database.health.ts): on a busy machine one ping may miss it and say
 * "no answer within 1000 ms". What these tests claim is the state readiness settles in, so they
 * ask again until it shows (a readiness that never says it fails at the deadline).
 */
function readiness(
  client: JsonApiClient,
  done: (answer: ApiResponse) => boolean,
  headers: Record<string, string> = {},
): Promise<ApiResponse> {
  return waitFor('a readiness answer', () => client.get('/health/ready', headers), done, {
    everyMs: 50,
  });
}

const isReady = (answer: ApiResponse) => answer.status === 200;

describe('health', () => {
  describe('with the database up', () => {
    let t: TestApp;
    let client: JsonApiClient;

    beforeAll(async () => {
      t = await startTestApp();
      client = new JsonApiClient(t.baseUrl);
    });
    afterAll(() => t.close());

    it.each([
      ['no Accept', {}],
      ['Accept: application/json', { accept: 'application/json' }],
      ['Accept: */*', { accept: '*/*' }],
      // 406 on a JSON:API route; the probes are outside that contract.
      ['Accept: JSON:API with a forbidden parameter', { accept: 'application/vnd.api+json; v=1' }],
    ])('live and ready answer 200 in plain JSON (%s)', async (_name, headers) => {
      const live = await client.get('/health/live', headers);
      expect(live.status).toBe(200);
      expect(live.headers.get('content-type')).toMatch(/^application\/json/);
      expect(live.body).toEqual({ status: 'ok', info: {}, error: {}, details: {} });

      const ready = await readiness(client, isReady, headers);
      expect(ready.headers.get('content-type')).toMatch(/^application\/json/);
      expect(ready.headers.get('cache-control')).toMatch(/no-store/);
      expect(ready.body).toEqual(READY);
    });

    it('ready is 503 while PostgreSQL refuses connections, and 200 again once it accepts them, without a restart', async () => {
      await refuseConnections(t.databaseUrl);
      try {
        // The refusal itself is immediate; only a missed 1 s ping budget could say otherwise.
        const down = await readiness(
          client,
          (answer) => answer.body?.error?.database?.message !== 'no answer within 1000 ms',
        );
        expect(down.status).toBe(503);
        expect(down.headers.get('content-type')).toMatch(/^application\/json/);
        expect(down.body).toEqual({
          status: 'error',
          info: { actors: { status: 'up' } },
          error: { database: { status: 'down', message: 'unreachable' } },
          details: {
            actors: { status: 'up' },
            database: { status: 'down', message: 'unreachable' },
          },
        });
        // The driver's message stays in the log.
        expect(down.text).not.toMatch(/connection|accept|database "/i);
        // The process itself is fine: no restart wanted.
        expect((await client.get('/health/live')).status).toBe(200);
      } finally {
        await allowConnections(t.databaseUrl);
      }
      const up = await readiness(client, isReady);
      expect(up.body).toEqual(READY);
    });
  });

  it('ready is 503 within its timeout when PostgreSQL does not answer (pool taken by a blocked commit)', async () => {
    // One pooled connection, held by a purchase whose commit waits for a row lock we hold until
    // we release it. The lock timeout is far away (it was 2 s, with under a second of slack), so
    // the purchase waits for our COMMIT however long the checks take, and the pool stays taken.
    const t = await startTestApp({ env: { DB_POOL_SIZE: '1', DB_LOCK_TIMEOUT_MS: '120000' } });
    const locker = new Client({ connectionString: t.databaseUrl });
    try {
      const client = new JsonApiClient(t.baseUrl);
      const optionId = await client.createTicketOption({ name: 'Blocked', allocation: 5 });
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM ticket_options WHERE id = $1 FOR UPDATE', [optionId]);
      const purchase = client.purchase(optionId, 1);
      await untilSomeoneWaitsForALock(t.databaseUrl);

      const down = await client.get('/health/ready');
      expect(down.status).toBe(503);
      expect(down.body.error).toEqual({
        database: { status: 'down', message: 'no answer within 1000 ms' },
      });

      await locker.query('COMMIT');
      expect((await purchase).status).toBe(201);
      await readiness(client, isReady);
    } finally {
      await locker.end();
      await t.close();
    }
  });

  it('ready is 503 once shutdown begins, while queued purchases are still being committed', async () => {
    const database = await createTestDatabase();
    const t = await startTestApp({ databaseUrl: database.url });
    const locker = new Client({ connectionString: t.databaseUrl });
    try {
      const client = new JsonApiClient(t.baseUrl);
      const optionId = await client.createTicketOption({ name: 'Draining', allocation: 5 });
      await readiness(client, isReady);

      // A purchase stays in flight (its commit waits for our row lock) while the app closes.
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM ticket_options WHERE id = $1 FOR UPDATE', [optionId]);
      const purchase = client.purchase(optionId, 2);
      await untilSomeoneWaitsForALock(t.databaseUrl);

      const registry = t.app.get(TicketOptionActorRegistry);
      const closing = t.app.close(); // the SIGTERM path of main.ts
      while (!registry.isDraining) await new Promise((resolve) => setImmediate(resolve));

      // Draining lasts until we release the lock; only the database ping may need a second try.
      const draining = await readiness(
        client,
        (answer) => answer.body?.details?.database?.status === 'up',
      );
      expect(draining.status).toBe(503);
      expect(draining.body).toEqual({
        status: 'shutting_down',
        info: { database: { status: 'up' } },
        error: {
          actors: { status: 'down', message: 'draining: shutting down, new purchases are refused' },
        },
        details: {
          actors: { status: 'down', message: 'draining: shutting down, new purchases are refused' },
          database: { status: 'up' },
        },
      });
      expect((await client.get('/health/live')).status).toBe(200);

      await locker.query('COMMIT');
      expect((await purchase).status).toBe(201);
      await closing;
    } finally {
      await locker.end();
      await t.sql.end();
      await database.drop();
    }
  });
});
