import type { CommitMode } from '../src/allocation/ticket-option.store';
import { INVALID_PURCHASE_QUANTITY, JsonApiClient } from './support/jsonapi-client';
import { startTestApp, TestApp } from './support/test-app';

/** The largest allocation and quantity of the wire contract (PostgreSQL's `integer`). */
const MAX = 2_147_483_647;

/**
 * Guards at the integer limit, with two instances whose caches go stale: the capacity guard's
 * `purchased + taken` of two values near 2^31 must be a refusal decided against the fresh row,
 * never an `integer out of range` error answered as a database outage (503).
 */
describe.each<CommitMode>(['guarded', 'cas'])('capacity at the integer limit (%s)', (mode) => {
  let a: TestApp;
  let b: TestApp;
  let apiA: JsonApiClient;
  let apiB: JsonApiClient;

  beforeAll(async () => {
    a = await startTestApp({ env: { ACTOR_COMMIT_MODE: mode } });
    b = await startTestApp({ databaseUrl: a.databaseUrl, env: { ACTOR_COMMIT_MODE: mode } });
    apiA = new JsonApiClient(a.baseUrl);
    apiB = new JsonApiClient(b.baseUrl);
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  async function stored(optionId: string): Promise<{ purchased: number; sum: number }> {
    const { rows } = await a.sql.query<{ purchased: number; sum: string }>(
      `SELECT t.purchased, (SELECT coalesce(sum(quantity), 0) FROM purchases
                             WHERE ticket_option_id = t.id) AS sum
         FROM ticket_options t WHERE t.id = $1`,
      [optionId],
    );
    return { purchased: rows[0].purchased, sum: Number(rows[0].sum) };
  }

  function expectRefused(response: { status: number; body: any }): void {
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([expect.objectContaining(INVALID_PURCHASE_QUANTITY)]);
  }

  it('refuses, instead of overflowing, when a stale instance sends a batch past 2^31', async () => {
    const optionId = await apiA.createTicketOption({ name: 'Huge', allocation: MAX });
    // A caches purchased = 1; B then sells almost everything behind A's back.
    expect((await apiA.purchase(optionId, 1)).status).toBe(201);
    expect((await apiB.purchase(optionId, MAX - 2)).status).toBe(201);

    // A still believes MAX - 1 remain: (MAX - 1) + (MAX - 1) does not fit in an integer.
    expectRefused(await apiA.purchase(optionId, MAX - 1));
    // The refusal was decided against the fresh row: exactly 1 is left, and A can sell it.
    expect((await apiA.purchase(optionId, 1)).status).toBe(201);

    // B's cache is stale too (it saw purchased = MAX - 1): MAX + 1 would overflow as well.
    expectRefused(await apiB.purchase(optionId, 1));
    expectRefused(await apiB.purchase(optionId, MAX));
    expect(await stored(optionId)).toEqual({ purchased: MAX, sum: MAX });

    const read = await apiB.get(`/ticket_options/${optionId}`);
    expect(read.body.data.attributes.allocation).toBe(MAX);
    expect(read.body.meta.remaining).toBe(0);
  });

  it('sells the whole of a maximal allocation in one purchase, and nothing after it', async () => {
    const optionId = await apiA.createTicketOption({ name: 'All at once', allocation: MAX });
    expect((await apiB.purchase(optionId, 1)).status).toBe(201); // B caches purchased = 1
    const whole = await apiA.purchase(optionId, MAX - 1);
    expect(whole.status).toBe(201);
    expect(whole.body.data.attributes.quantity).toBe(MAX - 1);
    expectRefused(await apiB.purchase(optionId, MAX - 1)); // stale: 1 + ... fits its cache
    expectRefused(await apiA.purchase(optionId, 1));
    expect(await stored(optionId)).toEqual({ purchased: MAX, sum: MAX });

    const fresh = await apiA.createTicketOption({ name: 'One shot', allocation: MAX });
    expect((await apiB.purchase(fresh, MAX)).status).toBe(201);
    expectRefused(await apiA.purchase(fresh, MAX));
    expect(await stored(fresh)).toEqual({ purchased: MAX, sum: MAX });
  });
});
