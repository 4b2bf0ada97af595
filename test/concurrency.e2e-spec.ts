import { randomUUID } from 'node:crypto';
import { auditOption, PurchaseAttempt } from './support/audit';
import { INVALID_PURCHASE_QUANTITY, JsonApiClient, purchaseBody } from './support/jsonapi-client';
import { untilNoSessionOf } from './support/database-outage';
import { createTestDatabase, startTestApp, TestApp, withAdmin } from './support/test-app';
import { COMMIT_MODES } from '../src/allocation/ticket-option.store';

/** Deadlocks PostgreSQL detected in one database since it was created. */
async function deadlocksIn(databaseUrl: string): Promise<number> {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  return withAdmin(async (client) => {
    const result = await client.query<{ deadlocks: string }>(
      'SELECT deadlocks FROM pg_stat_database WHERE datname = $1',
      [name],
    );
    return Number(result.rows[0].deadlocks);
  });
}

/** Quantities 1..5 in a fixed, mixed order, so every run fires the same burst. */
function mixedQuantities(count: number): number[] {
  return Array.from({ length: count }, (_, i) => ((i * 7) % 5) + 1);
}

/**
 * How many races a batch may lose before it answers 503. Each lost race means another instance
 * committed first, so a batch loses at most as many races as the others commit batches of its
 * option; how many it actually loses depends on how the machine schedules the instances. Above
 * the number of purchases a test makes, exhaustion is impossible, so no outcome here depends on
 * scheduling (the default, 20, is a liveness bound for production, not what these tests check).
 */
const ATTEMPTS_ABOVE_ANY_RACE = '1000';

describe.each(COMMIT_MODES)('concurrent purchases (%s commits)', (mode) => {
  let t: TestApp;
  let api: JsonApiClient;
  const env = { ACTOR_COMMIT_MODE: mode, ACTOR_MAX_COMMIT_ATTEMPTS: ATTEMPTS_ABOVE_ANY_RACE };

  beforeAll(async () => {
    t = await startTestApp({ env });
    api = new JsonApiClient(t.baseUrl);
  });
  afterAll(() => t.close());

  /** Another instance sells tickets: a purchase row plus the version-bumping update. */
  async function sellBehindTheActorsBack(optionId: string, quantity: number): Promise<void> {
    await t.sql.query(
      `WITH bump AS (UPDATE ticket_options SET purchased = purchased + $4, version = version + 1 WHERE id = $1)
       INSERT INTO purchases (id, ticket_option_id, user_id, quantity) VALUES ($2, $1, $3, $4)`,
      [optionId, randomUUID(), randomUUID(), quantity],
    );
  }

  async function purchasedAndSum(optionId: string): Promise<{ purchased: number; sum: number }> {
    const result = await t.sql.query(
      `SELECT o.purchased, (SELECT sum(quantity)::int FROM purchases WHERE ticket_option_id = o.id) AS sum
         FROM ticket_options o WHERE o.id = $1`,
      [optionId],
    );
    return result.rows[0];
  }

  it('300 concurrent purchases of mixed quantities never oversell an allocation of 97', async () => {
    const optionId = await api.createTicketOption({ name: 'Flash sale', allocation: 97 });
    const quantities = mixedQuantities(300);

    const attempts: PurchaseAttempt[] = await Promise.all(
      quantities.map(async (quantity, i) => ({
        quantity,
        // Both routes, so both paths into the actor are exercised under contention.
        response:
          i % 2 === 0
            ? await api.purchase(optionId, quantity)
            : await api.post(
                `/ticket_options/${optionId}/purchases`,
                purchaseBody(undefined, quantity),
              ),
      })),
    );

    await auditOption(t.sql, optionId, attempts);
    // 900 tickets were asked for 97 seats: some were refused, and since every refusal asked for
    // more than what is left (audited above) and none asked for more than 5, under 5 remain.
    const refused = attempts.filter((a) => a.response?.status === 400);
    expect(refused.length).toBeGreaterThan(0);
    const sold = attempts
      .filter((a) => a.response?.status === 201)
      .reduce((n, a) => n + a.quantity, 0);
    expect(97 - sold).toBeLessThan(5);
  });

  it('the actor recovers from a write made behind its back (lost version race) without overselling', async () => {
    const optionId = await api.createTicketOption({ name: 'Race', allocation: 10 });
    expect((await api.purchase(optionId, 3)).status).toBe(201); // the actor now caches purchased = 3

    // Another instance sells 5 tickets.
    await sellBehindTheActorsBack(optionId, 5);

    // The cached remainder says 7, the truth is 2: the commit must lose, reload and refuse.
    const tooMany = await api.purchase(optionId, 3);
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.errors[0]).toMatchObject(INVALID_PURCHASE_QUANTITY);

    const fits = await api.purchase(optionId, 2);
    expect(fits.status).toBe(201);

    expect(await purchasedAndSum(optionId)).toEqual({ purchased: 10, sum: 10 });
  });

  it('a stale actor whose purchase still fits retries and commits on top of the foreign write', async () => {
    const optionId = await api.createTicketOption({ name: 'Race 2', allocation: 20 });
    expect((await api.purchase(optionId, 3)).status).toBe(201);
    await sellBehindTheActorsBack(optionId, 5);

    expect((await api.purchase(optionId, 4)).status).toBe(201);

    // Without the version check the stale write would have set purchased = 7 and lost the 5.
    expect(await purchasedAndSum(optionId)).toEqual({ purchased: 12, sum: 12 });
  });

  it('two instances on one database, purchases spread across both, never oversell', async () => {
    const second = await startTestApp({ databaseUrl: t.databaseUrl, env });
    try {
      const apis = [api, new JsonApiClient(second.baseUrl)];
      const optionId = await api.createTicketOption({ name: 'Shared', allocation: 150 });
      const quantities = mixedQuantities(200);

      const attempts: PurchaseAttempt[] = await Promise.all(
        quantities.map(async (quantity, i) => ({
          quantity,
          response: await apis[i % 2].purchase(optionId, quantity),
        })),
      );

      await auditOption(t.sql, optionId, attempts);
      expect(attempts.some((a) => a.response?.status === 201)).toBe(true);
    } finally {
      await second.close();
    }
  });

  it('batches of many options committed together by two instances stay exact per option (no deadlock, no oversell)', async () => {
    // Two instances on a database of their own, so that PostgreSQL's deadlock count for that
    // database is theirs alone.
    const database = await createTestDatabase();
    const apps: TestApp[] = [];
    try {
      apps.push(await startTestApp({ databaseUrl: database.url, env }));
      apps.push(await startTestApp({ databaseUrl: database.url, env }));
      const apis = apps.map((app) => new JsonApiClient(app.baseUrl));
      const optionIds = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          apis[0].createTicketOption({ name: `Many ${i}`, allocation: 7 + (i % 5) }),
        ),
      );
      // 8 purchases per option, interleaved over the options and both instances, so that each
      // instance's coalesced statements touch overlapping sets of rows.
      const plan = Array.from({ length: 320 }, (_, i) => ({
        optionId: optionIds[i % optionIds.length],
        quantity: (i % 3) + 1,
        api: apis[Math.floor(i / 7) % 2],
      }));
      const results = await Promise.all(
        plan.map(async ({ optionId, quantity, api: client }) => ({
          optionId,
          attempt: { quantity, response: await client.purchase(optionId, quantity) },
        })),
      );

      for (const optionId of optionIds) {
        const attempts = results.filter((r) => r.optionId === optionId).map((r) => r.attempt);
        await auditOption(apps[0].sql, optionId, attempts);
      }
      const statuses = new Set(results.map((r) => r.attempt.response?.status));
      expect([...statuses].sort()).toEqual([201, 400]);

      // A deadlock is retried like a lost race, invisibly to clients; PostgreSQL counts it. The
      // count is final once every session of the database has ended (a backend flushes its
      // statistics when it exits).
      for (const app of apps.splice(0)) await app.close();
      await untilNoSessionOf(database.url);
      expect(await deadlocksIn(database.url)).toBe(0);
    } finally {
      for (const app of apps) await app.close();
      await database.drop();
    }
  });
});
