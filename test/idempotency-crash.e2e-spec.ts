import { randomUUID } from 'node:crypto';
import { ApiResponse, JsonApiClient, purchaseBody } from './support/jsonapi-client';
import { findFreePort } from './support/ports';
import { spawnServer, waitUntilServing } from './support/server-process';
import { untilSomeoneWaitsForALock } from './support/database-outage';
import { holdOptionRowLock } from './support/row-lock';
import { createTestDatabase, startTestApp, TestApp } from './support/test-app';
import { waitFor } from './support/waiting';

const LEASE_MS = 1000;
/** Far below the old fixed 60 s lease, far above the lease: a bound, never a synchronisation. */
const RETRY_BOUND_MS = 30_000;

/**
 * The liveness of an Idempotency-Key claim (docs/design.md, Idempotency): a claim lives while its
 * instance renews it. A request still running on a live instance keeps its key (409 for a retry),
 * however long it takes; a key whose instance died is free again within a lease.
 */
describe('Idempotency-Key claims and instance liveness', () => {
  const slowCommits = {
    IDEMPOTENCY_CLAIM_LEASE_MS: String(LEASE_MS),
    DB_MAX_WRITES_IN_FLIGHT: '1',
    DB_LOCK_TIMEOUT_MS: '120000',
    DB_STATEMENT_TIMEOUT_MS: '120000',
  };
  let a: TestApp;
  let b: TestApp;
  let apiA: JsonApiClient;
  let apiB: JsonApiClient;

  beforeAll(async () => {
    a = await startTestApp({ env: slowCommits });
    b = await startTestApp({ databaseUrl: a.databaseUrl, env: slowCommits });
    apiA = new JsonApiClient(a.baseUrl);
    apiB = new JsonApiClient(b.baseUrl);
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  it('keeps the claim of a request still running on a live instance past many leases', async () => {
    const head = await apiA.createTicketOption({ name: 'Blocked head', allocation: 10 });
    const optionId = await apiA.createTicketOption({ name: 'Slow commit', allocation: 10 });
    const key = `k-${randomUUID()}`;
    const body = purchaseBody(optionId, 2);
    // A's only statement in flight waits for a row lock; the keyed purchase queues behind it,
    // its claim unlocked in the database, so only the renewal keeps it alive.
    const release = await holdOptionRowLock(a.databaseUrl, head);
    let answered: ApiResponse;
    try {
      const headAnswer = apiA.purchase(head, 1);
      await untilSomeoneWaitsForALock(a.databaseUrl);
      const first = apiA.post('/purchases', body, { 'idempotency-key': key });
      await waitFor(
        'the claim renewed past 3 leases',
        async () =>
          (
            await a.sql.query<{ held_ms: string }>(
              `SELECT extract(epoch FROM locked_at - created_at) * 1000 AS held_ms
                 FROM idempotency_keys WHERE key = $1`,
              [key],
            )
          ).rows[0]?.held_ms,
        (heldMs) => Number(heldMs ?? 0) > 3 * LEASE_MS,
      );
      const retry = await apiB.post('/purchases', body, { 'idempotency-key': key });
      expect(retry.status).toBe(409);
      expect(retry.body.errors[0].code).toBe('idempotency_key_in_flight');
      await release();
      expect((await headAnswer).status).toBe(201);
      answered = await first;
    } finally {
      await release();
    }
    expect(answered.status).toBe(201);
    const replay = await apiB.post('/purchases', body, { 'idempotency-key': key });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.data.id).toBe(answered.body.data.id);
  });

  it('lets retries on other instances finish every key within seconds of a SIGKILL, buying each once', async () => {
    const database = await createTestDatabase();
    const cleanups: Array<() => Promise<void>> = [];
    const survivor = await startTestApp({ databaseUrl: database.url }); // default lease (5 s)
    const port = await findFreePort();
    const victim = spawnServer({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: database.url,
      LOG_LEVEL: 'warn',
      DB_LOCK_TIMEOUT_MS: '120000',
      DB_STATEMENT_TIMEOUT_MS: '120000',
    });
    try {
      const victimApi = new JsonApiClient(`http://127.0.0.1:${port}`);
      await waitUntilServing(victim, `http://127.0.0.1:${port}`);
      const survivorApi = new JsonApiClient(survivor.baseUrl);
      const optionId = await survivorApi.createTicketOption({ name: 'Crash', allocation: 1000 });
      const requests = Array.from({ length: 40 }, (_, i) => ({
        key: `crash-${i}-${randomUUID()}`,
        body: purchaseBody(optionId, 1 + (i % 3)),
      }));
      const send = (api: JsonApiClient, r: (typeof requests)[number]) =>
        api.post(`/ticket_options/${optionId}/purchases`, r.body, { 'idempotency-key': r.key });

      // The first half is acknowledged by the victim before it dies.
      const acknowledged = await Promise.all(requests.slice(0, 20).map((r) => send(victimApi, r)));
      for (const response of acknowledged) expect(response.status).toBe(201);
      // The second half is claimed by the victim and waits in its commit when it is killed.
      const release = await holdOptionRowLock(survivor.databaseUrl, optionId);
      cleanups.push(release);
      const inFlight = requests.slice(20).map((r) =>
        send(victimApi, r).then(
          (response): ApiResponse | Error => response,
          (error: Error) => error,
        ),
      );
      await waitFor(
        'the victim holding 20 unfinished claims',
        async () =>
          (
            await survivor.sql.query<{ n: number }>(
              'SELECT count(*)::int AS n FROM idempotency_keys WHERE completed_at IS NULL',
            )
          ).rows[0].n,
        (n) => n === 20,
      );
      victim.child.kill('SIGKILL');
      await victim.exited;
      await release();
      // The victim's client saw its connection die: outcome unknown, never an answer.
      for (const outcome of await Promise.all(inFlight)) {
        expect(outcome).toMatchObject({ name: 'TypeError', message: 'fetch failed' });
      }

      const killedAt = Date.now();
      const finals = await Promise.all(
        requests.map(async (r) => {
          for (;;) {
            const response = await send(survivorApi, r);
            if (response.status !== 409) return response;
            expect(response.body.errors[0].code).toBe('idempotency_key_in_flight');
            if (Date.now() - killedAt > RETRY_BOUND_MS) return response;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }),
      );
      for (const response of finals) expect(response.status).toBe(201);
      // The acknowledged ones are replays of what the victim answered.
      finals.slice(0, 20).forEach((response, i) => {
        expect(response.headers.get('idempotent-replayed')).toBe('true');
        expect(response.body.data.id).toBe(acknowledged[i].body.data.id);
      });

      // Exactly one purchase per key, each the one its key answers with, and nothing else.
      const { rows: keys } = await survivor.sql.query<{ key: string; purchase_id: string }>(
        'SELECT key, purchase_id FROM idempotency_keys WHERE completed_at IS NOT NULL',
      );
      const byKey = new Map(keys.map((row) => [row.key, row.purchase_id]));
      requests.forEach((r, i) => expect(byKey.get(r.key)).toBe(finals[i].body.data.id));
      const { rows } = await survivor.sql.query<{ id: string; quantity: number }>(
        'SELECT id, quantity FROM purchases WHERE ticket_option_id = $1',
        [optionId],
      );
      expect(rows.map((row) => row.id).sort()).toEqual([...byKey.values()].sort());
      const { rows: option } = await survivor.sql.query<{ purchased: number }>(
        'SELECT purchased FROM ticket_options WHERE id = $1',
        [optionId],
      );
      expect(option[0].purchased).toBe(rows.reduce((sum, row) => sum + row.quantity, 0));
    } finally {
      for (const cleanup of cleanups) await cleanup();
      if (victim.child.exitCode === null && victim.child.signalCode === null) {
        victim.child.kill('SIGKILL');
        await victim.exited;
      }
      await survivor.close();
      await database.drop();
    }
  });
});
