import { randomUUID } from 'node:crypto';
import { PostgresTicketOptionStore } from '../src/allocation/postgres-ticket-option.store';
import { TICKET_OPTION_STORE } from '../src/allocation/ticket-option.store';
import { ApiResponse, JsonApiClient, purchaseBody } from './support/jsonapi-client';
import { untilSomeoneWaitsForALock } from './support/database-outage';
import { holdOptionRowLock } from './support/row-lock';
import { startTestApp, TestApp } from './support/test-app';
import { waitFor } from './support/waiting';

/**
 * A claim taken over while its purchase waits for a commit (docs/design.md, Idempotency): the
 * commit must refuse that purchase alone (nothing bought twice), with a named error, and every
 * other purchase of the same coalesced statement must still commit.
 */
describe('Idempotency-Key claims taken over before the commit', () => {
  let app: TestApp;
  let api: JsonApiClient;
  let store: PostgresTicketOptionStore;

  beforeAll(async () => {
    // One statement in flight at a time, and a lock wait longer than any test: a purchase held
    // behind the blocking row lock keeps the next batches waiting in the coalescer, together.
    app = await startTestApp({
      env: {
        DB_MAX_WRITES_IN_FLIGHT: '1',
        DB_LOCK_TIMEOUT_MS: '120000',
        DB_STATEMENT_TIMEOUT_MS: '120000',
      },
    });
    api = new JsonApiClient(app.baseUrl);
    store = app.app.get<PostgresTicketOptionStore>(TICKET_OPTION_STORE);
  });
  afterAll(async () => {
    await app.close();
  });

  /** What a retry of the same request on another instance does once the lease has run out. */
  async function takeOver(key: string): Promise<string> {
    const claim = randomUUID();
    const { rowCount } = await app.sql.query(
      'UPDATE idempotency_keys SET claim = $2, locked_at = now() WHERE key = $1 AND completed_at IS NULL',
      [key, claim],
    );
    expect(rowCount).toBe(1);
    return claim;
  }

  async function purchasesOf(optionId: string): Promise<number> {
    const { rows } = await app.sql.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM purchases WHERE ticket_option_id = $1',
      [optionId],
    );
    return rows[0].n;
  }

  /**
   * Starts a purchase on `head` that blocks in the database, then the given purchases, which
   * queue in the coalescer behind it; resolves once they are all waiting for one statement.
   */
  async function queueBehindBlockedCommit(
    head: string,
    purchases: Array<() => Promise<ApiResponse>>,
  ): Promise<{ headAnswer: Promise<ApiResponse>; answers: Array<Promise<ApiResponse>> }> {
    const headAnswer = api.purchase(head, 1);
    await untilSomeoneWaitsForALock(app.databaseUrl);
    const waitingBefore = store.writeStats.waiting;
    const answers = purchases.map((send) => send());
    await waitFor(
      'the queued batches waiting in the coalescer',
      () => Promise.resolve(store.writeStats.waiting),
      (waiting) => waiting === waitingBefore + purchases.length,
    );
    return { headAnswer, answers };
  }

  it('refuses the purchase whose claim was taken over, and commits the other options of its statement', async () => {
    const head = await api.createTicketOption({ name: 'Head', allocation: 10 });
    const keyedOption = await api.createTicketOption({ name: 'Keyed', allocation: 10 });
    const otherOption = await api.createTicketOption({ name: 'Unrelated', allocation: 10 });
    const key = `k-${randomUUID()}`;
    const release = await holdOptionRowLock(app.databaseUrl, head);
    const writesBefore = store.writeStats.writes;
    const { headAnswer, answers } = await queueBehindBlockedCommit(head, [
      () => api.post('/purchases', purchaseBody(keyedOption, 2), { 'idempotency-key': key }),
      () => api.purchase(otherOption, 3),
    ]);
    const newClaim = await takeOver(key);
    await release();

    const [headResponse, keyed, other] = await Promise.all([headAnswer, ...answers]);
    expect(headResponse.status).toBe(201);
    // The two queued batches went out as ONE statement after the head's.
    expect(store.writeStats.writes - writesBefore).toBeGreaterThanOrEqual(2);
    expect(other.status).toBe(201);
    expect(keyed.status).toBe(409);
    expect(keyed.body.errors).toEqual([
      expect.objectContaining({
        status: '409',
        code: 'idempotency_key_in_flight',
        source: { parameter: 'Idempotency-Key' },
      }),
    ]);
    expect(await purchasesOf(keyedOption)).toBe(0);
    expect(await purchasesOf(otherOption)).toBe(1);
    // The key still belongs to the request that took it over, untouched.
    const { rows } = await app.sql.query(
      'SELECT claim, completed_at, purchase_id FROM idempotency_keys WHERE key = $1',
      [key],
    );
    expect(rows).toEqual([{ claim: newClaim, completed_at: null, purchase_id: null }]);
    const metrics = await api.get('/metrics');
    expect(metrics.text).toMatch(/^ticket_purchases_idempotency_claim_lost_total 1$/m);
  });

  it('gives back nothing a lost claim took: the same option sells it to the next purchases', async () => {
    const head = await api.createTicketOption({ name: 'Head 2', allocation: 10 });
    const option = await api.createTicketOption({ name: 'Shared', allocation: 5 });
    const lostKey = `k-${randomUUID()}`;
    const keptKey = `k-${randomUUID()}`;
    const release = await holdOptionRowLock(app.databaseUrl, head);
    const { headAnswer, answers } = await queueBehindBlockedCommit(head, [
      () => api.post('/purchases', purchaseBody(option, 4), { 'idempotency-key': lostKey }),
    ]);
    // Same option, same batch: these queue in its actor behind the keyed purchase's commit.
    const keptBody = purchaseBody(option, 3);
    const later = [
      api.post('/purchases', keptBody, { 'idempotency-key': keptKey }),
      api.purchase(option, 2),
    ];
    await takeOver(lostKey);
    await release();

    const [headResponse, lost, kept, plain] = await Promise.all([headAnswer, ...answers, ...later]);
    expect(headResponse.status).toBe(201);
    expect(lost.status).toBe(409);
    // The lost purchase's 4 tickets were never taken: both later purchases fit (3 + 2 = 5).
    expect(kept.status).toBe(201);
    expect(plain.status).toBe(201);
    const { rows } = await app.sql.query<{ purchased: number }>(
      'SELECT purchased FROM ticket_options WHERE id = $1',
      [option],
    );
    expect(rows[0].purchased).toBe(5);
    expect(await purchasesOf(option)).toBe(2);
    const replay = await api.post('/purchases', keptBody, { 'idempotency-key': keptKey });
    expect(replay.status).toBe(201);
    expect(replay.body.data.id).toBe(kept.body.data.id);
  });

  it('refuses, in the database, a completed key without the answer it replays', async () => {
    await expect(
      app.sql.query(
        `INSERT INTO idempotency_keys (key, fingerprint, claim, completed_at, response_status)
         VALUES ($1, repeat('0', 64), gen_random_uuid(), now(), 201)`,
        [`k-${randomUUID()}`],
      ),
    ).rejects.toMatchObject({ code: '23514', constraint: 'idempotency_keys_answer_check' });
  });
});
