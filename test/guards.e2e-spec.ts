/**
 * The guards the commit statement and the actor rely on, each with a test that fails when the
 * guard is removed (src/allocation/postgres-ticket-option.store.ts, ticket-option.actor.ts):
 * - `guarded` mode: the capacity guard `t.purchased + d.taken <= t.allocation`;
 * - `cas` mode: the version check `t.version = d.expected_version`;
 * both in the one-option and in the coalesced many-option statement, driven through the store
 * the application itself uses, against a real PostgreSQL, with another writer's sale made
 * behind the store's back; and "answer only after commit", over HTTP.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { PostgresTicketOptionStore } from '../src/allocation/postgres-ticket-option.store';
import {
  AllocationState,
  CommitMode,
  CommitRequest,
  TICKET_OPTION_STORE,
} from '../src/allocation/ticket-option.store';
import { untilSomeoneWaitsForALock } from './support/database-outage';
import { ApiResponse, JsonApiClient } from './support/jsonapi-client';
import { startTestApp, TestApp } from './support/test-app';

/** A store of a running application, in the given commit mode. */
async function storeIn(mode: CommitMode) {
  const t = await startTestApp({ env: { ACTOR_COMMIT_MODE: mode } });
  const store = t.app.get<PostgresTicketOptionStore>(TICKET_OPTION_STORE);
  return { t, store };
}

/** A fresh option, as the actor would have loaded it: nothing sold, version 1. */
async function anOption(t: TestApp, allocation: number): Promise<AllocationState & { id: string }> {
  const id = await new JsonApiClient(t.baseUrl).createTicketOption({ name: 'Guarded', allocation });
  return { id, allocation, purchased: 0, held: 0, version: 1 };
}

/** Another instance sells tickets: a purchase row plus the version-bumping update. */
async function sellBehindTheStoresBack(t: TestApp, optionId: string, quantity: number) {
  await t.sql.query(
    `WITH bump AS (UPDATE ticket_options SET purchased = purchased + $4, version = version + 1 WHERE id = $1)
     INSERT INTO purchases (id, ticket_option_id, user_id, quantity) VALUES ($2, $1, $3, $4)`,
    [optionId, randomUUID(), randomUUID(), quantity],
  );
}

/** A batch of one purchase of `quantity`, decided against `expected`. */
function batch(optionId: string, expected: AllocationState, quantity: number): CommitRequest {
  return {
    optionId,
    expected,
    taken: quantity,
    purchases: [{ id: randomUUID(), userId: randomUUID(), quantity }],
  };
}

/** The option row and its purchases as the database has them. */
async function stored(t: TestApp, optionId: string) {
  const option = await t.sql.query('SELECT purchased, version FROM ticket_options WHERE id = $1', [
    optionId,
  ]);
  const purchases = await t.sql.query(
    'SELECT id FROM purchases WHERE ticket_option_id = $1 ORDER BY id',
    [optionId],
  );
  return { ...option.rows[0], purchaseIds: purchases.rows.map((row) => row.id as string) };
}

/** Submits both in the same event-loop turn, so that they share ONE statement, and checks it did. */
async function commitTogether(
  store: PostgresTicketOptionStore,
  requests: [CommitRequest, CommitRequest],
) {
  const writesBefore = store.writeStats.writes;
  const outcomes = await Promise.all(requests.map((request) => store.commit(request)));
  expect(store.writeStats.writes - writesBefore).toBe(1);
  return outcomes;
}

describe('the capacity guard (guarded commits)', () => {
  let t: TestApp;
  let store: PostgresTicketOptionStore;
  beforeAll(async () => ({ t, store } = await storeIn('guarded')));
  afterAll(() => t.close());

  it('refuses a batch that no longer fits after a foreign sale, and writes nothing of it', async () => {
    const option = await anOption(t, 5);
    await sellBehindTheStoresBack(t, option.id, 3); // truth: 2 left; the batch counted on 5
    const before = await stored(t, option.id);

    await expect(store.commit(batch(option.id, option, 3))).resolves.toEqual({
      committed: false,
      lostClaims: [],
    });
    expect(await stored(t, option.id)).toEqual(before);
  });

  it('commits on top of a foreign sale that left room, whatever the version it was decided on', async () => {
    const option = await anOption(t, 5);
    await sellBehindTheStoresBack(t, option.id, 3);
    const request = batch(option.id, option, 2);

    await expect(store.commit(request)).resolves.toMatchObject({
      committed: true,
      purchased: 5,
      version: 3,
    });
    expect((await stored(t, option.id)).purchaseIds).toContain(request.purchases[0].id);
  });

  it('in a statement shared by two options, refuses the one that no longer fits and commits the other', async () => {
    const full = await anOption(t, 5);
    const roomy = await anOption(t, 5);
    await sellBehindTheStoresBack(t, full.id, 4);
    const before = await stored(t, full.id);
    const fits = batch(roomy.id, roomy, 5);

    const [refused, committed] = await commitTogether(store, [batch(full.id, full, 2), fits]);
    expect(refused).toEqual({ committed: false, lostClaims: [] });
    expect(committed).toMatchObject({ committed: true, purchased: 5, version: 2 });
    expect(await stored(t, full.id)).toEqual(before);
    expect(await stored(t, roomy.id)).toEqual({
      purchased: 5,
      version: 2,
      purchaseIds: [fits.purchases[0].id],
    });
  });
});

describe('the version check (cas commits)', () => {
  let t: TestApp;
  let store: PostgresTicketOptionStore;
  beforeAll(async () => ({ t, store } = await storeIn('cas')));
  afterAll(() => t.close());

  it('refuses a batch decided on an older version even though it fits, and writes nothing of it', async () => {
    const option = await anOption(t, 10);
    await sellBehindTheStoresBack(t, option.id, 1); // version 2 now; 9 left, the batch takes 2
    const before = await stored(t, option.id);

    await expect(store.commit(batch(option.id, option, 2))).resolves.toEqual({
      committed: false,
      lostClaims: [],
    });
    expect(await stored(t, option.id)).toEqual(before);
  });

  it('commits a batch decided on the current version', async () => {
    const option = await anOption(t, 10);
    await sellBehindTheStoresBack(t, option.id, 1);
    const current = { ...option, purchased: 1, version: 2 };

    await expect(store.commit(batch(option.id, current, 2))).resolves.toMatchObject({
      committed: true,
      purchased: 3,
      version: 3,
    });
  });

  it('in a statement shared by two options, refuses the stale one and commits the current one', async () => {
    const stale = await anOption(t, 10);
    const current = await anOption(t, 10);
    await sellBehindTheStoresBack(t, stale.id, 1);
    const before = await stored(t, stale.id);
    const fits = batch(current.id, current, 3);

    const [refused, committed] = await commitTogether(store, [batch(stale.id, stale, 2), fits]);
    expect(refused).toEqual({ committed: false, lostClaims: [] });
    expect(committed).toMatchObject({ committed: true, purchased: 3, version: 2 });
    expect(await stored(t, stale.id)).toEqual(before);
    expect((await stored(t, current.id)).purchaseIds).toEqual([fits.purchases[0].id]);
  });
});

describe('answer only after commit', () => {
  let t: TestApp;
  beforeAll(async () => (t = await startTestApp()));
  afterAll(() => t.close());

  it('a purchase whose commit waits in the database is not answered until that commit is done', async () => {
    const api = new JsonApiClient(t.baseUrl);
    const optionId = await api.createTicketOption({ name: 'Waits', allocation: 5 });
    const locker = new Client({ connectionString: t.databaseUrl });
    await locker.connect();
    let answer: ApiResponse | null = null;
    let pending: Promise<ApiResponse> | undefined;
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM ticket_options WHERE id = $1 FOR UPDATE', [optionId]);
      pending = api.purchase(optionId, 2).then((response) => (answer = response));
      await untilSomeoneWaitsForALock(t.databaseUrl);
      // A whole HTTP round trip later, an answer sent before the commit would have arrived.
      expect((await api.get('/health/live')).status).toBe(200);
      expect(answer).toBeNull();
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    const response = await pending;
    expect(response.status).toBe(201);
    const row = await t.sql.query('SELECT quantity FROM purchases WHERE id = $1', [
      response.body.data.id,
    ]);
    expect(row.rows).toEqual([{ quantity: 2 }]);
  });
});
