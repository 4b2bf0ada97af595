import { randomUUID } from 'node:crypto';
import { requestFingerprint } from '../src/idempotency/idempotency-key';
import { IdempotencyService } from '../src/idempotency/idempotency.service';
import {
  INVALID_PURCHASE_QUANTITY,
  JsonApiClient,
  purchaseBody,
  ticketOptionBody,
} from './support/jsonapi-client';
import { startTestApp, TestApp } from './support/test-app';

const key = () => `key-${randomUUID()}`;

describe('Idempotency-Key', () => {
  let a: TestApp;
  let b: TestApp;
  let apiA: JsonApiClient;
  let apiB: JsonApiClient;

  beforeAll(async () => {
    a = await startTestApp();
    // A second instance on the same database: a retry may land anywhere behind a balancer.
    b = await startTestApp({ databaseUrl: a.databaseUrl });
    apiA = new JsonApiClient(a.baseUrl);
    apiB = new JsonApiClient(b.baseUrl);
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  async function purchasesOf(optionId: string): Promise<Array<{ id: string; quantity: number }>> {
    const result = await a.sql.query(
      'SELECT id, quantity FROM purchases WHERE ticket_option_id = $1',
      [optionId],
    );
    return result.rows;
  }

  async function remainingOf(optionId: string): Promise<number> {
    const response = await apiA.get(`/ticket_options/${optionId}`);
    return response.body.meta.remaining as number;
  }

  it('replays a purchase retried on another instance: same id, sold once, marked as replayed', async () => {
    const optionId = await apiA.createTicketOption({ name: 'Replay', allocation: 10 });
    const k = key();
    const body = purchaseBody(optionId, 3);

    const first = await apiA.post('/purchases', body, { 'idempotency-key': k });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();

    const onSame = await apiA.post('/purchases', body, { 'idempotency-key': k });
    const onOther = await apiB.post('/purchases', body, { 'idempotency-key': k });
    for (const retry of [onSame, onOther]) {
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.headers.get('location')).toBe(first.headers.get('location'));
      expect(retry.headers.get('content-type')).toBe('application/vnd.api+json');
      expect(retry.text).toBe(first.text); // the very bytes first sent
      expect(retry.body).toEqual(first.body);
    }
    expect(await purchasesOf(optionId)).toEqual([{ id: first.body.data.id, quantity: 3 }]);
    expect(await remainingOf(optionId)).toBe(7);
  });

  it('replays the nested purchase route too, and member order does not make a different body', async () => {
    const optionId = await apiA.createTicketOption({ name: 'Nested', allocation: 5 });
    const k = key();
    const user = randomUUID();
    const path = `/ticket_options/${optionId}/purchases`;
    const first = await apiA.post(path, purchaseBody(undefined, 2, user), {
      'idempotency-key': k,
    });
    expect(first.status).toBe(201);
    const reordered = {
      data: {
        relationships: { user: { data: { id: user, type: 'users' } } },
        attributes: { quantity: 2 },
        type: 'purchases',
      },
    };
    const retry = await apiB.post(path, reordered, { 'idempotency-key': k });
    expect(retry.status).toBe(201);
    expect(retry.body.data.id).toBe(first.body.data.id);
    expect(await purchasesOf(optionId)).toHaveLength(1);
  });

  it('replays the creation of a ticket option with its original document', async () => {
    const k = key();
    const body = ticketOptionBody({ name: `Idempotent ${k}`, allocation: 42 });
    const first = await apiA.post('/ticket_options', body, { 'idempotency-key': k });
    expect(first.status).toBe(201);
    // Sell some: the replay is the original answer, not the option's current state.
    expect((await apiA.purchase(first.body.data.id, 2)).status).toBe(201);

    const retry = await apiB.post('/ticket_options', body, { 'idempotency-key': k });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('location')).toBe(first.headers.get('location'));
    expect(retry.body).toEqual(first.body);
    const rows = await a.sql.query(
      'SELECT count(*)::int AS n FROM ticket_options WHERE name = $1',
      [`Idempotent ${k}`],
    );
    expect(rows.rows[0].n).toBe(1);
  });

  it('refuses the same key with a different body with 422, selling nothing more', async () => {
    const optionId = await apiA.createTicketOption({ name: 'Reuse', allocation: 10 });
    const k = key();
    expect(
      (await apiA.post('/purchases', purchaseBody(optionId, 1), { 'idempotency-key': k })).status,
    ).toBe(201);

    const reused = await apiB.post('/purchases', purchaseBody(optionId, 2), {
      'idempotency-key': k,
    });
    expect(reused.status).toBe(422);
    expect(reused.body.errors).toEqual([
      expect.objectContaining({
        status: '422',
        code: 'idempotency_key_reused',
        source: { parameter: 'Idempotency-Key' },
      }),
    ]);
    // The same key on another route is a different request as well.
    const elsewhere = await apiA.post(
      `/ticket_options/${optionId}/purchases`,
      purchaseBody(optionId, 1),
      {
        'idempotency-key': k,
      },
    );
    expect(elsewhere.status).toBe(422);
    expect(await purchasesOf(optionId)).toHaveLength(1);
  });

  it('the same key sent many times at once, on two instances, buys exactly once', async () => {
    const optionId = await apiA.createTicketOption({ name: 'Duplicates', allocation: 100 });
    const k = key();
    const body = purchaseBody(optionId, 1);
    const responses = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (i % 2 === 0 ? apiA : apiB).post('/purchases', body, { 'idempotency-key': k }),
      ),
    );

    const created = responses.filter((r) => r.status === 201);
    const inFlight = responses.filter((r) => r.status === 409);
    expect(created.length + inFlight.length).toBe(responses.length);
    expect(created.length).toBeGreaterThan(0);
    expect(new Set(created.map((r) => r.body.data.id)).size).toBe(1);
    for (const r of inFlight) {
      expect(r.body.errors[0]).toMatchObject({ code: 'idempotency_key_in_flight' });
    }
    expect(await purchasesOf(optionId)).toEqual([{ id: created[0].body.data.id, quantity: 1 }]);

    // Once it settled, every retry replays the one purchase.
    const later = await apiB.post('/purchases', body, { 'idempotency-key': k });
    expect(later.status).toBe(201);
    expect(later.body.data.id).toBe(created[0].body.data.id);
  });

  it('answers 409 while the key is claimed by a request in progress, and takes over a claim whose lease ended', async () => {
    const optionId = await apiA.createTicketOption({ name: 'Claimed', allocation: 10 });
    const body = purchaseBody(optionId, 1);
    const fingerprint = requestFingerprint('POST', '/purchases', body);
    const fresh = key();
    const stale = key();
    // Claims as a request on another instance would hold them: one renewed far ahead (so no
    // machine load can let its lease run out before the request), one long abandoned.
    await a.sql.query(
      `INSERT INTO idempotency_keys (key, fingerprint, claim, locked_at)
       VALUES ($1, $3, gen_random_uuid(), now() + interval '1 hour'),
              ($2, $3, gen_random_uuid(), now() - interval '5 minutes')`,
      [fresh, stale, fingerprint],
    );

    const busy = await apiA.post('/purchases', body, { 'idempotency-key': fresh });
    expect(busy.status).toBe(409);
    expect(busy.body.errors[0]).toMatchObject({
      status: '409',
      code: 'idempotency_key_in_flight',
      source: { parameter: 'Idempotency-Key' },
    });

    const takenOver = await apiA.post('/purchases', body, { 'idempotency-key': stale });
    expect(takenOver.status).toBe(201);
    expect(await purchasesOf(optionId)).toHaveLength(1);
  });

  it('replays a justified refusal as it was first given', async () => {
    const optionId = await apiA.createTicketOption({ name: 'Refusal', allocation: 2 });
    const k = key();
    const body = purchaseBody(optionId, 3);
    const first = await apiA.post('/purchases', body, { 'idempotency-key': k });
    expect(first.status).toBe(400);
    expect(first.body.errors[0]).toMatchObject(INVALID_PURCHASE_QUANTITY);

    const retry = await apiB.post('/purchases', body, { 'idempotency-key': k });
    expect(retry.status).toBe(400);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body).toEqual(first.body);
    expect(await purchasesOf(optionId)).toEqual([]);
  });

  it('does not keep a key whose request was invalid or failed: the corrected request runs', async () => {
    const optionId = await apiA.createTicketOption({ name: 'Corrected', allocation: 5 });
    const k = key();
    const invalid = await apiA.post('/purchases', purchaseBody(optionId, 'two'), {
      'idempotency-key': k,
    });
    expect(invalid.status).toBe(400);
    const unknownOption = await apiA.post('/purchases', purchaseBody(randomUUID(), 2), {
      'idempotency-key': k,
    });
    expect(unknownOption.status).toBe(404);

    const corrected = await apiA.post('/purchases', purchaseBody(optionId, 2), {
      'idempotency-key': k,
    });
    expect(corrected.status).toBe(201);
    expect(corrected.headers.get('idempotent-replayed')).toBeNull();
  });

  it('refuses a malformed key with 400 pointing at the header, before doing anything', async () => {
    const optionId = await apiA.createTicketOption({ name: 'Bad key', allocation: 5 });
    const response = await apiA.post('/purchases', purchaseBody(optionId, 1), {
      'idempotency-key': 'k'.repeat(256),
    });
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([
      expect.objectContaining({
        status: '400',
        code: 'invalid_header',
        source: { parameter: 'Idempotency-Key' },
      }),
    ]);
    expect(await purchasesOf(optionId)).toEqual([]);
  });

  it('forgets keys after the retention: expired keys are purged and may be used again', async () => {
    const optionId = await apiA.createTicketOption({ name: 'Expiry', allocation: 10 });
    const expired = key();
    const kept = key();
    for (const k of [expired, kept]) {
      expect(
        (await apiA.post('/purchases', purchaseBody(optionId, 1), { 'idempotency-key': k })).status,
      ).toBe(201);
    }
    await a.sql.query(
      `UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = $1`,
      [expired],
    );

    const purged = await a.app.get(IdempotencyService).purgeExpired();
    expect(purged).toBeGreaterThanOrEqual(1);
    const left = await a.sql.query('SELECT key FROM idempotency_keys WHERE key = ANY($1)', [
      [expired, kept],
    ]);
    expect(left.rows.map((r: { key: string }) => r.key)).toEqual([kept]);

    // The expired key is new again: a different body is not a reuse, and it sells.
    const again = await apiB.post('/purchases', purchaseBody(optionId, 2), {
      'idempotency-key': expired,
    });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect(await remainingOf(optionId)).toBe(6);
  });

  it('treats a key past its retention as new even before the purge ran', async () => {
    const optionId = await apiA.createTicketOption({ name: 'Expired unpurged', allocation: 10 });
    const k = key();
    expect(
      (await apiA.post('/purchases', purchaseBody(optionId, 1), { 'idempotency-key': k })).status,
    ).toBe(201);
    await a.sql.query(
      `UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = $1`,
      [k],
    );
    const again = await apiA.post('/purchases', purchaseBody(optionId, 1), {
      'idempotency-key': k,
    });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect(await purchasesOf(optionId)).toHaveLength(2);
  });

  it("shapes a replayed 201 for the replaying request's query: sparse fieldsets, 400 for the rest", async () => {
    const optionId = await apiA.createTicketOption({ name: 'Sparse replay', allocation: 10 });
    const k = key();
    const body = purchaseBody(optionId, 1);
    const first = await apiA.post('/purchases', body, { 'idempotency-key': k });
    expect(first.status).toBe(201);

    const sparse = await apiB.post('/purchases?fields[purchases]=quantity', body, {
      'idempotency-key': k,
    });
    expect(sparse.status).toBe(201);
    expect(sparse.headers.get('idempotent-replayed')).toBe('true');
    expect(sparse.body.data).toEqual({
      type: 'purchases',
      id: first.body.data.id,
      attributes: { quantity: 1 },
      relationships: {},
      links: first.body.data.links,
    });
    const refused = await apiB.post('/purchases?sort=quantity', body, { 'idempotency-key': k });
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0]).toMatchObject({
      code: 'invalid_query_parameter',
      source: { parameter: 'sort' },
    });
    expect(await purchasesOf(optionId)).toHaveLength(1);
  });
});
