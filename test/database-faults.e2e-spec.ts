import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { TicketOptionActorRegistry } from '../src/allocation/ticket-option-actor.registry';
import { auditOption, PurchaseAttempt } from './support/audit';
import {
  allowConnections,
  databaseNameOf,
  refuseConnections,
  untilSomeoneWaitsForALock,
} from './support/database-outage';
import { ApiResponse, JsonApiClient, purchaseBody } from './support/jsonapi-client';
import { PgProxy } from './support/pg-proxy';
import { createTestDatabase, startTestApp, TestApp } from './support/test-app';
import { waitFor } from './support/waiting';
import { holdOptionRowLock } from './support/row-lock';

const key = () => `fault-${randomUUID()}`;

function expectUnavailable(response: ApiResponse): void {
  expect(response.status).toBe(503);
  expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(response.body.errors).toEqual([
    expect.objectContaining({ status: '503', code: 'unavailable' }),
  ]);
}

/** A purchase attempt for the audit: a 503 is an outcome the client does not know. */
async function attempt(api: JsonApiClient, optionId: string, quantity: number) {
  const userId = randomUUID();
  const response = await api.post('/purchases', purchaseBody(optionId, quantity, userId));
  if (response.status === 503) expectUnavailable(response);
  return {
    userId,
    quantity,
    status: response.status,
    audit: { quantity, userId, response: response.status === 503 ? null : response },
  };
}

describe('database faults', () => {
  describe('an outage while purchases are in flight', () => {
    let t: TestApp;
    let api: JsonApiClient;
    beforeAll(async () => {
      t = await startTestApp();
      api = new JsonApiClient(t.baseUrl);
    });
    afterAll(async () => {
      await allowConnections(t.databaseUrl);
      await t.close();
    });

    it('answers 503 with Retry-After during the outage, serves again after it in the same process, and the audit holds', async () => {
      const optionId = await api.createTicketOption({ name: 'Outage', allocation: 1_000_000 });
      const attempts: PurchaseAttempt[] = [];
      const before = await Promise.all(Array.from({ length: 40 }, () => attempt(api, optionId, 1)));
      expect(before.every((a) => a.status === 201)).toBe(true);
      attempts.push(...before.map((a) => a.audit));

      // The database goes away while a burst is in flight.
      const inFlight = Promise.all(Array.from({ length: 60 }, () => attempt(api, optionId, 2)));
      await refuseConnections(t.databaseUrl);
      const during = await inFlight;
      attempts.push(...during.map((a) => a.audit));
      expect(during.every((a) => a.status === 201 || a.status === 503)).toBe(true);

      // Fully down: every request is answered, quickly refused, nothing piles up.
      const down = await Promise.all(Array.from({ length: 40 }, () => attempt(api, optionId, 3)));
      attempts.push(...down.map((a) => a.audit));
      expect(down.every((a) => a.status === 503)).toBe(true);
      expectUnavailable(await api.get(`/ticket_options/${optionId}`));
      const ready = await fetch(`${t.baseUrl}/health/ready`);
      expect(ready.status).toBe(503);
      expect(t.app.get(TicketOptionActorRegistry).stats().queueDepth).toBe(0);

      // Back: the same process recovers by itself (the pool reconnects on demand). Until the
      // first purchase goes through, each try may still meet the outage (503, in the audit).
      await allowConnections(t.databaseUrl);
      await waitFor(
        'a purchase to succeed after the outage',
        async () => {
          const recovered = await attempt(api, optionId, 1);
          attempts.push(recovered.audit);
          return recovered.status;
        },
        (status) => status === 201,
      );
      const after = await Promise.all(Array.from({ length: 40 }, () => attempt(api, optionId, 1)));
      expect(after.every((a) => a.status === 201)).toBe(true);
      attempts.push(...after.map((a) => a.audit));
      // Readiness pings with a fixed 1 s budget: a busy machine may need a second ask.
      await waitFor(
        'readiness after the outage',
        async () => (await fetch(`${t.baseUrl}/health/ready`)).status,
        (status) => status === 200,
      );

      await auditOption(t.sql, optionId, attempts);
    });
  });

  describe('a connection lost around the commit', () => {
    let database: { url: string; drop(): Promise<void> };
    let proxy: PgProxy;
    let t: TestApp;
    let api: JsonApiClient;
    beforeAll(async () => {
      database = await createTestDatabase();
      const target = new URL(database.url);
      proxy = await PgProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
      // Long lock timeout: here it is the test that ends the wait, by killing the session.
      t = await startTestApp({
        databaseUrl: proxy.urlFor(database.url),
        env: { DB_LOCK_TIMEOUT_MS: '60000' },
      });
      api = new JsonApiClient(t.baseUrl);
    });
    afterAll(async () => {
      await t.close();
      await proxy.close();
      await database.drop();
    });

    async function purchasesOf(optionId: string) {
      const direct = new Client({ connectionString: database.url });
      await direct.connect();
      try {
        const result = await direct.query<{ id: string; quantity: number }>(
          'SELECT id, quantity FROM purchases WHERE ticket_option_id = $1',
          [optionId],
        );
        return result.rows;
      } finally {
        await direct.end();
      }
    }

    it('committed but the answer was lost: 503, never a second purchase, and the retry with the key replays it', async () => {
      const optionId = await api.createTicketOption({ name: 'Ambiguous', allocation: 10 });
      const k = key();
      const body = purchaseBody(optionId, 2);

      const cut = proxy.loseAnswerAfterCommit('allocation-commit');
      const first = await api.post('/purchases', body, { 'idempotency-key': k });
      await cut;
      expectUnavailable(first);
      // The client could not know, but the purchase is there: exactly once.
      const stored = await purchasesOf(optionId);
      expect(stored).toEqual([{ id: expect.any(String), quantity: 2 }]);

      const retry = await api.post('/purchases', body, { 'idempotency-key': k });
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.body.data.id).toBe(stored[0].id);

      // The actor dropped its cached state after the fault: it sells exactly what is left.
      expect((await api.purchase(optionId, 8)).status).toBe(201);
      expect((await api.purchase(optionId, 1)).status).toBe(400);
      expect((await purchasesOf(optionId)).reduce((n, p) => n + p.quantity, 0)).toBe(10);
    });

    it('session killed before the commit: 503, nothing written, and the retry with the key buys once', async () => {
      const optionId = await api.createTicketOption({ name: 'Killed', allocation: 10 });
      const k = key();
      const body = purchaseBody(optionId, 3);

      const release = await holdOptionRowLock(database.url, optionId);
      const pending = api.post('/purchases', body, { 'idempotency-key': k });
      await untilSomeoneWaitsForALock(database.url);
      const admin = new Client({ connectionString: database.url });
      await admin.connect();
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = $1 AND wait_event_type = 'Lock'`,
        [databaseNameOf(database.url)],
      );
      await admin.end();
      const first = await pending;
      await release();

      expectUnavailable(first);
      expect(await purchasesOf(optionId)).toEqual([]);

      const retry = await api.post('/purchases', body, { 'idempotency-key': k });
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBeNull();
      expect(await purchasesOf(optionId)).toEqual([{ id: retry.body.data.id, quantity: 3 }]);
    });
  });

  describe('timeouts', () => {
    it('a commit stuck behind a foreign lock gets 503 after lock_timeout, and the option sells afterwards', async () => {
      const t = await startTestApp({ env: { DB_LOCK_TIMEOUT_MS: '300' } });
      try {
        const api = new JsonApiClient(t.baseUrl);
        const optionId = await api.createTicketOption({ name: 'Locked', allocation: 5 });
        const release = await holdOptionRowLock(t.databaseUrl, optionId);
        const stuck = await api.purchase(optionId, 1);
        await release();
        expectUnavailable(stuck);
        // Nothing of the timed-out commit was written: all 5 tickets are still there.
        const all = await api.purchase(optionId, 5);
        expect(all.status).toBe(201);
        await auditOption(t.sql, optionId, [{ quantity: 5, response: all }]);
      } finally {
        await t.close();
      }
    });

    it('an exhausted pool answers 503 after the acquire timeout instead of hanging', async () => {
      const t = await startTestApp({
        env: { DB_POOL_SIZE: '1', DB_ACQUIRE_TIMEOUT_MS: '300', DB_LOCK_TIMEOUT_MS: '60000' },
      });
      try {
        const api = new JsonApiClient(t.baseUrl);
        const blocked = await api.createTicketOption({ name: 'Holds the pool', allocation: 5 });
        const other = await api.createTicketOption({ name: 'Waits for the pool', allocation: 5 });
        const release = await holdOptionRowLock(t.databaseUrl, blocked);
        // This purchase holds the only pooled connection while it waits for the row lock.
        const holding = api.purchase(blocked, 1);
        await untilSomeoneWaitsForALock(t.databaseUrl);

        expectUnavailable(await api.get(`/ticket_options/${other}`));
        expectUnavailable(await api.purchase(other, 1));

        await release();
        expect((await holding).status).toBe(201);
        expect((await api.purchase(other, 1)).status).toBe(201);
      } finally {
        await t.close();
      }
    });
  });
});
