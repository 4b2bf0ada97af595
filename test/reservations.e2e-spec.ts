/**
 * Reservations over HTTP (docs/design.md, Reservations): every route, status and error code of
 * holds, their confirmation into purchases, release, expiry and the cancellation of purchases,
 * against one real app and the real database. Times are compared with the database clock
 * (`SELECT now()` around a request), never with this process's clock; waits are for states.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  ApiResponse,
  confirmationBody,
  INVALID_PURCHASE_QUANTITY,
  JSONAPI,
  JsonApiClient,
  purchaseBody,
  reservationBody,
} from './support/jsonapi-client';
import { findFreePort } from './support/ports';
import { parsePrometheus, valueOf } from './support/prometheus';
import { ServerProcess, spawnServer, waitUntilServing } from './support/server-process';
import { startTestApp, TestApp } from './support/test-app';
import { waitFor } from './support/waiting';

const DEFAULT_TTL_S = 300;
const MAX_TTL_S = 900;
const ENV = {
  RESERVATION_TTL_S: String(DEFAULT_TTL_S),
  RESERVATION_MAX_TTL_S: String(MAX_TTL_S),
  RESERVATION_SWEEP_MS: '250',
  // No passivation during the file: the actors' gauges stay comparable.
  ACTOR_IDLE_MS: '86400000',
};
const QUANTITY_POINTER = '/data/attributes/quantity';
const TTL_POINTER = '/data/attributes/ttl_seconds';
const OPTION_POINTER = '/data/relationships/ticket_option/data/id';
const USER_POINTER = '/data/relationships/user/data/id';
const RESERVATION_POINTER = '/data/relationships/reservation/data/id';
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

interface Meta {
  remaining: number;
  sold: number;
  held: number;
}

/** One app, its client and the helpers every block below uses. */
class Scene {
  readonly api: JsonApiClient;
  constructor(readonly t: TestApp) {
    this.api = new JsonApiClient(t.baseUrl);
  }

  option(allocation: number): Promise<string> {
    return this.api.createTicketOption({ name: 'Holds', allocation });
  }

  async meta(optionId: string): Promise<Meta> {
    const response = await this.api.get(`/ticket_options/${optionId}`);
    expect(response.status).toBe(200);
    return response.body.meta as Meta;
  }

  /** The database clock now, to the millisecond (as the service stores its times). */
  async dbNow(): Promise<number> {
    const { rows } = await this.t.sql.query<{ now: Date }>(
      "SELECT date_trunc('milliseconds', now()) AS now",
    );
    return rows[0].now.getTime();
  }

  hold(
    optionId: string,
    quantity: number,
    options: { ttlSeconds?: unknown; userId?: string; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse> {
    return this.api.post(
      '/reservations',
      reservationBody(optionId, quantity, options),
      options.headers,
    );
  }

  /** A committed hold, by its id. */
  async held(optionId: string, quantity = 1, ttlSeconds?: number): Promise<string> {
    const response = await this.hold(optionId, quantity, { ttlSeconds });
    expect(response.status).toBe(201);
    return response.body.data.id as string;
  }

  confirm(
    reservationId: string,
    extra: Parameters<typeof confirmationBody>[1] = {},
    headers?: Record<string, string>,
  ): Promise<ApiResponse> {
    return this.api.post('/purchases', confirmationBody(reservationId, extra), headers);
  }

  async status(reservationId: string): Promise<string> {
    const response = await this.api.get(`/reservations/${reservationId}`);
    expect(response.status).toBe(200);
    return response.body.data.attributes.status as string;
  }

  /** The stored row (what a sweep changes; GET shows `expired` before any sweep). */
  async row(
    reservationId: string,
  ): Promise<{ status: string; expires_at: Date; updated_at: Date }> {
    const { rows } = await this.t.sql.query(
      'SELECT status, expires_at, updated_at FROM reservations WHERE id = $1',
      [reservationId],
    );
    return rows[0];
  }

  /** Resolves once the database clock has reached `expiresAt` (an RFC 3339 time). */
  async untilPast(expiresAt: string): Promise<void> {
    await waitFor(
      `the database clock to reach ${expiresAt}`,
      async () =>
        (await this.t.sql.query('SELECT now() >= $1::timestamptz AS past', [expiresAt])).rows[0]
          .past as boolean,
      (past) => past,
    );
  }

  async reservationCount(optionId: string): Promise<number> {
    const { rows } = await this.t.sql.query(
      'SELECT count(*)::int AS n FROM reservations WHERE ticket_option_id = $1',
      [optionId],
    );
    return rows[0].n as number;
  }
}

/** The one error of a refusal: status, code and pointer (detail and title are free text). */
function expectError(response: ApiResponse, status: number, code: string, pointer?: string) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe(JSONAPI);
  expect(response.body.errors).toEqual([
    expect.objectContaining({
      status: String(status),
      code,
      ...(pointer === undefined ? {} : { source: { pointer } }),
    }),
  ]);
}

const ms = (time: string) => new Date(time).getTime();

describe('reservations over HTTP', () => {
  let s: Scene;

  beforeAll(async () => {
    s = new Scene(await startTestApp({ env: ENV }));
  });
  afterAll(() => s?.t.close());

  describe('POST /reservations and POST /ticket_options/:id/reservations → 201', () => {
    it.each([
      ['/reservations', true],
      ['/ticket_options/{id}/reservations', false],
    ])(
      '%s holds: the document, Location, and expires_at = created_at + ttl by the database clock',
      async (route, withRelationship) => {
        const optionId = await s.option(10);
        const userId = randomUUID();
        const body = reservationBody(withRelationship ? optionId : undefined, 2, {
          userId,
          ttlSeconds: 120,
        });
        const before = await s.dbNow();
        const response = await s.api.post(route.replace('{id}', optionId), body);
        const after = await s.dbNow();

        expect(response.status).toBe(201);
        expect(response.headers.get('content-type')).toBe(JSONAPI);
        const { id, attributes } = response.body.data;
        expect(response.headers.get('location')).toBe(`/reservations/${id}`);
        expect(response.body).toEqual({
          data: {
            type: 'reservations',
            id,
            attributes: {
              quantity: 2,
              status: 'held',
              expires_at: expect.stringMatching(RFC3339_UTC),
              created_at: expect.stringMatching(RFC3339_UTC),
            },
            relationships: {
              ticket_option: { data: { type: 'ticket_options', id: optionId } },
              user: { data: { type: 'users', id: userId } },
              purchase: { data: null },
            },
            links: { self: `/reservations/${id}` },
          },
        });
        expect(ms(attributes.created_at)).toBeGreaterThanOrEqual(before);
        expect(ms(attributes.created_at)).toBeLessThanOrEqual(after);
        expect(ms(attributes.expires_at) - ms(attributes.created_at)).toBe(120_000);
        expect(await s.meta(optionId)).toEqual({ remaining: 8, sold: 0, held: 2 });
        // The stored row says the same.
        const row = await s.row(id);
        expect({ status: row.status, expires_at: row.expires_at.getTime() }).toEqual({
          status: 'held',
          expires_at: ms(attributes.expires_at),
        });
      },
    );

    it('holds for RESERVATION_TTL_S without ttl_seconds, and accepts ttl_seconds 1 and the maximum', async () => {
      const optionId = await s.option(10);
      const lifetime = (r: ApiResponse) =>
        ms(r.body.data.attributes.expires_at) - ms(r.body.data.attributes.created_at);
      const byDefault = await s.hold(optionId, 1);
      expect(byDefault.status).toBe(201);
      expect(lifetime(byDefault)).toBe(DEFAULT_TTL_S * 1000);
      for (const ttlSeconds of [1, MAX_TTL_S]) {
        const response = await s.hold(optionId, 1, { ttlSeconds });
        expect(response.status).toBe(201);
        expect(lifetime(response)).toBe(ttlSeconds * 1000);
      }
      expect((await s.meta(optionId)).sold).toBe(0);
    });

    it.each([
      ['0', 0],
      ['negative', -5],
      ['over RESERVATION_MAX_TTL_S', MAX_TTL_S + 1],
      ['over the schema maximum', 86_401],
      ['fractional', 1.5],
      ['a string', '60'],
      ['null', null],
      ['a boolean', true],
    ])(
      'refuses a ttl_seconds that is %s: 400 invalid_attribute, nothing held',
      async (_case, ttlSeconds) => {
        const optionId = await s.option(10);
        const response = await s.hold(optionId, 1, { ttlSeconds });
        expectError(response, 400, 'invalid_attribute', TTL_POINTER);
        expect(await s.meta(optionId)).toEqual({ remaining: 10, sold: 0, held: 0 });
        expect(await s.reservationCount(optionId)).toBe(0);
      },
    );

    it.each([0, -1, 1.5, '2', 2147483648])(
      'refuses a quantity of %j: 400 invalid_attribute, nothing held',
      async (quantity) => {
        const optionId = await s.option(10);
        const response = await s.api.post('/reservations', reservationBody(optionId, quantity));
        expectError(response, 400, 'invalid_attribute', QUANTITY_POINTER);
        expect(await s.reservationCount(optionId)).toBe(0);
      },
    );

    it('refuses more than remains: 400 invalid_reservation_quantity, nothing held; holds count against purchases', async () => {
      const optionId = await s.option(5);
      expect((await s.api.purchase(optionId, 1)).status).toBe(201);
      await s.held(optionId, 3);
      const before = await s.meta(optionId);
      expect(before).toEqual({ remaining: 1, sold: 1, held: 3 });

      for (const path of ['/reservations', `/ticket_options/${optionId}/reservations`]) {
        const response = await s.api.post(path, reservationBody(optionId, 2));
        expectError(response, 400, 'invalid_reservation_quantity', QUANTITY_POINTER);
      }
      expect(await s.meta(optionId)).toEqual(before);
      expect(await s.reservationCount(optionId)).toBe(1);
      // A direct purchase sees the held tickets as gone, with the brief's error object.
      const bought = await s.api.purchase(optionId, 2);
      expect(bought.status).toBe(400);
      expect(bought.body.errors[0]).toMatchObject(INVALID_PURCHASE_QUANTITY);
      // The last ticket can still be held.
      expect((await s.hold(optionId, 1)).status).toBe(201);
      expect(await s.meta(optionId)).toEqual({ remaining: 0, sold: 1, held: 4 });
    });

    it('answers 404 for an unknown option: pointer on POST /reservations, the path on the nested route', async () => {
      const unknown = await s.hold(randomUUID(), 1);
      expectError(unknown, 404, 'not_found', OPTION_POINTER);
      for (const id of [randomUUID(), 'not-a-uuid']) {
        const nested = await s.api.post(
          `/ticket_options/${id}/reservations`,
          reservationBody(undefined, 1),
        );
        expectError(nested, 404, 'not_found');
      }
    });

    it('refuses a nested hold whose ticket_option differs from the path: 409 id_conflict, nothing held', async () => {
      const optionId = await s.option(4);
      const other = await s.option(4);
      const conflict = await s.api.post(
        `/ticket_options/${optionId}/reservations`,
        reservationBody(other, 1),
      );
      expectError(conflict, 409, 'id_conflict', OPTION_POINTER);
      expect(await s.reservationCount(optionId)).toBe(0);
      expect(await s.reservationCount(other)).toBe(0);
      const matching = await s.api.post(
        `/ticket_options/${optionId}/reservations`,
        reservationBody(optionId.toUpperCase(), 1),
      );
      expect(matching.status).toBe(201);
      expect(matching.body.data.relationships.ticket_option.data.id).toBe(optionId);
    });

    it('refuses a missing user, a wrong type and a client id, with their codes', async () => {
      const optionId = await s.option(4);
      const noUser = reservationBody(optionId, 1);
      delete noUser.data.relationships.user;
      expectError(
        await s.api.post('/reservations', noUser),
        400,
        'invalid_relationship',
        '/data/relationships/user',
      );
      const wrongType = reservationBody(optionId, 1);
      wrongType.data.type = 'purchases';
      expectError(await s.api.post('/reservations', wrongType), 409, 'type_conflict', '/data/type');
      const withId = { data: { ...reservationBody(optionId, 1).data, id: randomUUID() } };
      expectError(
        await s.api.post('/reservations', withId),
        403,
        'client_id_unsupported',
        '/data/id',
      );
      expect(await s.reservationCount(optionId)).toBe(0);
    });

    it('replays a hold sent again with its Idempotency-Key: same id and expires_at, held once', async () => {
      const optionId = await s.option(10);
      const headers = { 'idempotency-key': `hold-${randomUUID()}` };
      const body = reservationBody(optionId, 3, { ttlSeconds: 600 });
      const first = await s.api.post('/reservations', body, headers);
      const second = await s.api.post('/reservations', body, headers);
      const nested = await s.api.post(`/ticket_options/${optionId}/reservations`, body, headers);

      expect(first.status).toBe(201);
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      expect(second.status).toBe(201);
      expect(second.headers.get('idempotent-replayed')).toBe('true');
      expect(second.headers.get('location')).toBe(first.headers.get('location'));
      expect(second.body).toEqual(first.body);
      expect(await s.meta(optionId)).toEqual({ remaining: 7, sold: 0, held: 3 });
      expect(await s.reservationCount(optionId)).toBe(1);
      // The same key elsewhere (another path) is another request: refused, not run.
      expectError(nested, 422, 'idempotency_key_reused');
      const other = await s.api.post('/reservations', reservationBody(optionId, 4), headers);
      expectError(other, 422, 'idempotency_key_reused');
      expect(await s.meta(optionId)).toEqual({ remaining: 7, sold: 0, held: 3 });
    });
  });

  describe('GET /reservations/:id', () => {
    it('reads a hold back as its 201, then confirmed with its purchase, or released', async () => {
      const optionId = await s.option(10);
      const created = await s.hold(optionId, 2);
      const id = created.body.data.id;
      const read = await s.api.get(`/reservations/${id}`);
      expect(read.status).toBe(200);
      expect(read.headers.get('content-type')).toBe(JSONAPI);
      expect(read.body).toEqual(created.body);

      const confirmed = await s.confirm(id);
      expect(confirmed.status).toBe(201);
      const afterConfirm = await s.api.get(`/reservations/${id}`);
      expect(afterConfirm.body.data.attributes).toEqual({
        ...created.body.data.attributes,
        status: 'confirmed',
      });
      expect(afterConfirm.body.data.relationships.purchase).toEqual({
        data: { type: 'purchases', id: confirmed.body.data.id },
      });

      const releasedId = await s.held(optionId);
      expect((await s.api.delete(`/reservations/${releasedId}`)).status).toBe(204);
      const released = await s.api.get(`/reservations/${releasedId}`);
      expect(released.body.data.attributes.status).toBe('released');
      expect(released.body.data.relationships.purchase).toEqual({ data: null });
    });

    it('include=purchase,ticket_option: a compound document of the purchase and the option', async () => {
      const optionId = await s.option(10);
      const id = await s.held(optionId, 2);
      const confirmed = await s.confirm(id);
      const [compound, purchase, option] = await Promise.all([
        s.api.get(`/reservations/${id}?include=purchase,ticket_option`),
        s.api.get(`/purchases/${confirmed.body.data.id}`),
        s.api.get(`/ticket_options/${optionId}`),
      ]);
      expect(compound.status).toBe(200);
      expect(compound.body.included).toHaveLength(2);
      expect(compound.body.included).toEqual(
        expect.arrayContaining([purchase.body.data, option.body.data]),
      );
      const heldOnly = await s.api.get(
        `/reservations/${await s.held(optionId)}?include=purchase,ticket_option`,
      );
      expect(heldOnly.body.included).toEqual([option.body.data]);
    });

    it('fields[reservations] keeps only the named fields', async () => {
      const id = await s.held(await s.option(3), 1);
      const response = await s.api.get(`/reservations/${id}?fields[reservations]=status,user`);
      expect(response.status).toBe(200);
      expect(response.body.data.attributes).toEqual({ status: 'held' });
      expect(Object.keys(response.body.data.relationships)).toEqual(['user']);
      expect(response.body.data.links).toEqual({ self: `/reservations/${id}` });
    });

    it('answers 404 for an unknown reservation and for an id that is not a UUID', async () => {
      for (const id of [randomUUID(), 'nope', '123']) {
        expectError(await s.api.get(`/reservations/${id}`), 404, 'not_found');
      }
    });
  });

  describe('confirmation: POST /purchases (or the nested route) with a reservation → 201', () => {
    it('converts the whole hold into a purchase: relationships.reservation, held → sold', async () => {
      const optionId = await s.option(10);
      const userId = randomUUID();
      const hold = await s.hold(optionId, 3, { userId });
      const id = hold.body.data.id;
      expect(await s.meta(optionId)).toEqual({ remaining: 7, sold: 0, held: 3 });

      const response = await s.confirm(id);

      expect(response.status).toBe(201);
      const purchaseId = response.body.data.id;
      expect(response.headers.get('location')).toBe(`/purchases/${purchaseId}`);
      expect(response.body).toEqual({
        data: {
          type: 'purchases',
          id: purchaseId,
          attributes: { quantity: 3, status: 'completed', cancelled_at: null },
          relationships: {
            ticket_option: { data: { type: 'ticket_options', id: optionId } },
            user: { data: { type: 'users', id: userId } },
            reservation: { data: { type: 'reservations', id } },
          },
          links: { self: `/purchases/${purchaseId}` },
        },
      });
      expect(await s.meta(optionId)).toEqual({ remaining: 7, sold: 3, held: 0 });
      expect((await s.api.get(`/purchases/${purchaseId}`)).body).toEqual(response.body);
      const rows = await s.t.sql.query(
        `SELECT r.status, r.purchase_id, p.reservation_id FROM reservations r
           JOIN purchases p ON p.id = r.purchase_id WHERE r.id = $1`,
        [id],
      );
      expect(rows.rows).toEqual([
        { status: 'confirmed', purchase_id: purchaseId, reservation_id: id },
      ]);
    });

    it('confirms through the nested route of its option', async () => {
      const optionId = await s.option(4);
      const id = await s.held(optionId, 4);
      const response = await s.api.post(
        `/ticket_options/${optionId}/purchases`,
        confirmationBody(id),
      );
      expect(response.status).toBe(201);
      expect(response.body.data.relationships.reservation.data).toEqual({
        type: 'reservations',
        id,
      });
      expect(await s.meta(optionId)).toEqual({ remaining: 0, sold: 4, held: 0 });
    });

    it('is never refused for availability: an option sold out by purchases and this hold', async () => {
      const optionId = await s.option(5);
      expect((await s.api.purchase(optionId, 3)).status).toBe(201);
      const id = await s.held(optionId, 2);
      expect(await s.meta(optionId)).toEqual({ remaining: 0, sold: 3, held: 2 });
      expect((await s.api.purchase(optionId, 1)).status).toBe(400);
      expectError(await s.hold(optionId, 1), 400, 'invalid_reservation_quantity', QUANTITY_POINTER);

      const response = await s.confirm(id);

      expect(response.status).toBe(201);
      expect(await s.meta(optionId)).toEqual({ remaining: 0, sold: 5, held: 0 });
    });

    it('accepts quantity, ticket_option and user when they match the reservation', async () => {
      const optionId = await s.option(10);
      const userId = randomUUID();
      const id = (await s.hold(optionId, 2, { userId })).body.data.id;
      const response = await s.confirm(id, {
        attributes: { quantity: 2 },
        relationships: {
          ticket_option: { data: { type: 'ticket_options', id: optionId } },
          user: { data: { type: 'users', id: userId } },
        },
      });
      expect(response.status).toBe(201);
      expect(response.body.data.attributes.quantity).toBe(2);
    });

    it('refuses what does not match the reservation, and changes nothing', async () => {
      const optionId = await s.option(10);
      const other = await s.option(10);
      const id = await s.held(optionId, 2);
      const relationship = (name: string, type: string, value: string) => ({
        relationships: { [name]: { data: { type, id: value } } },
      });
      expectError(
        await s.confirm(id, relationship('ticket_option', 'ticket_options', other)),
        409,
        'id_conflict',
        OPTION_POINTER,
      );
      expectError(
        await s.confirm(id, relationship('user', 'users', randomUUID())),
        409,
        'id_conflict',
        USER_POINTER,
      );
      expectError(
        await s.confirm(id, { attributes: { quantity: 3 } }),
        400,
        'invalid_attribute',
        QUANTITY_POINTER,
      );
      const underOther = await s.api.post(
        `/ticket_options/${other}/purchases`,
        confirmationBody(id),
      );
      expectError(underOther, 409, 'id_conflict', RESERVATION_POINTER);
      expect(await s.status(id)).toBe('held');
      expect(await s.meta(optionId)).toEqual({ remaining: 8, sold: 0, held: 2 });
      expect(await s.meta(other)).toEqual({ remaining: 10, sold: 0, held: 0 });
    });

    it('refuses a released reservation (409 reservation_released) and an unknown one (404)', async () => {
      const optionId = await s.option(10);
      const id = await s.held(optionId, 2);
      expect((await s.api.delete(`/reservations/${id}`)).status).toBe(204);
      expectError(await s.confirm(id), 409, 'reservation_released', RESERVATION_POINTER);
      expectError(await s.confirm(randomUUID()), 404, 'not_found', RESERVATION_POINTER);
      const wrongType = confirmationBody(await s.held(optionId));
      (wrongType.data.relationships.reservation as any).data.type = 'holds';
      expectError(
        await s.api.post('/purchases', wrongType),
        400,
        'invalid_relationship',
        '/data/relationships/reservation/data/type',
      );
      expect(await s.meta(optionId)).toEqual({ remaining: 9, sold: 0, held: 1 });
    });

    it('refuses a second confirmation (409 reservation_confirmed); the same Idempotency-Key replays the 201', async () => {
      const optionId = await s.option(10);
      const id = await s.held(optionId, 2);
      const headers = { 'idempotency-key': `confirm-${randomUUID()}` };
      const first = await s.confirm(id, {}, headers);
      expect(first.status).toBe(201);
      expect(first.headers.get('idempotent-replayed')).toBeNull();

      const replayed = await s.confirm(id, {}, headers);
      expect(replayed.status).toBe(201);
      expect(replayed.headers.get('idempotent-replayed')).toBe('true');
      expect(replayed.body).toEqual(first.body);
      expect(replayed.headers.get('location')).toBe(first.headers.get('location'));

      expectError(await s.confirm(id), 409, 'reservation_confirmed', RESERVATION_POINTER);
      const nested = await s.api.post(
        `/ticket_options/${optionId}/purchases`,
        confirmationBody(id),
      );
      expectError(nested, 409, 'reservation_confirmed', RESERVATION_POINTER);
      expect(await s.meta(optionId)).toEqual({ remaining: 8, sold: 2, held: 0 });
      const purchases = await s.t.sql.query('SELECT id FROM purchases WHERE reservation_id = $1', [
        id,
      ]);
      expect(purchases.rows).toEqual([{ id: first.body.data.id }]);
    });

    it('refuses a hold whose expires_at has passed, swept by now: 409 reservation_expired', async () => {
      const optionId = await s.option(10);
      const hold = await s.hold(optionId, 2, { ttlSeconds: 1 });
      const id = hold.body.data.id;
      await s.untilPast(hold.body.data.attributes.expires_at);
      await waitFor(
        'the sweep to expire the hold',
        () => s.row(id),
        (row) => row.status === 'expired',
      );
      expectError(await s.confirm(id), 409, 'reservation_expired', RESERVATION_POINTER);
      expect(await s.meta(optionId)).toEqual({ remaining: 10, sold: 0, held: 0 });
    });
  });

  describe('DELETE /reservations/:id', () => {
    it('releases: 204, the tickets available at once; again 204', async () => {
      const optionId = await s.option(2);
      const id = await s.held(optionId, 2);
      expect((await s.api.purchase(optionId, 1)).status).toBe(400);

      const released = await s.api.delete(`/reservations/${id}`);

      expect(released.status).toBe(204);
      expect(released.text).toBe('');
      // No body, so no Content-Type; the request id still comes back.
      expect(released.headers.get('content-type')).toBeNull();
      expect(released.headers.get('x-request-id')).toEqual(expect.any(String));
      expect(await s.meta(optionId)).toEqual({ remaining: 2, sold: 0, held: 0 });
      expect(await s.status(id)).toBe('released');
      expect((await s.api.delete(`/reservations/${id}`)).status).toBe(204);
      expect(await s.status(id)).toBe('released');
      expect((await s.api.purchase(optionId, 2)).status).toBe(201);
      expect(await s.meta(optionId)).toEqual({ remaining: 0, sold: 2, held: 0 });
    });

    it('answers 204 for an expired hold and leaves it expired', async () => {
      const optionId = await s.option(3);
      const hold = await s.hold(optionId, 3, { ttlSeconds: 1 });
      await s.untilPast(hold.body.data.attributes.expires_at);
      expect((await s.api.delete(`/reservations/${hold.body.data.id}`)).status).toBe(204);
      expect(await s.status(hold.body.data.id)).toBe('expired');
      expect(await s.meta(optionId)).toEqual({ remaining: 3, sold: 0, held: 0 });
    });

    it('refuses a confirmed reservation (409 reservation_confirmed): its tickets stay sold', async () => {
      const optionId = await s.option(3);
      const id = await s.held(optionId, 2);
      expect((await s.confirm(id)).status).toBe(201);
      expectError(await s.api.delete(`/reservations/${id}`), 409, 'reservation_confirmed');
      expect(await s.status(id)).toBe('confirmed');
      expect(await s.meta(optionId)).toEqual({ remaining: 1, sold: 2, held: 0 });
    });

    it('answers 404 for an unknown reservation and an id that is not a UUID', async () => {
      for (const id of [randomUUID(), 'x']) {
        expectError(await s.api.delete(`/reservations/${id}`), 404, 'not_found');
      }
    });
  });

  describe('DELETE /purchases/:id', () => {
    it('cancels: 204, then status cancelled with cancelled_at, sold decreases; again 204', async () => {
      const optionId = await s.option(4);
      const bought = await s.api.purchase(optionId, 4);
      const id = bought.body.data.id;
      expect(bought.body.data.attributes).toEqual({
        quantity: 4,
        status: 'completed',
        cancelled_at: null,
      });

      const before = await s.dbNow();
      const cancelled = await s.api.delete(`/purchases/${id}`);
      const after = await s.dbNow();

      expect(cancelled.status).toBe(204);
      expect(cancelled.text).toBe('');
      const read = await s.api.get(`/purchases/${id}`);
      expect(read.body.data.attributes).toEqual({
        quantity: 4,
        status: 'cancelled',
        cancelled_at: expect.stringMatching(RFC3339_UTC),
      });
      const cancelledAt = read.body.data.attributes.cancelled_at;
      expect(ms(cancelledAt)).toBeGreaterThanOrEqual(before);
      expect(ms(cancelledAt)).toBeLessThanOrEqual(after);
      expect(await s.meta(optionId)).toEqual({ remaining: 4, sold: 0, held: 0 });

      expect((await s.api.delete(`/purchases/${id}`)).status).toBe(204);
      expect((await s.api.get(`/purchases/${id}`)).body.data.attributes.cancelled_at).toBe(
        cancelledAt,
      );
      expect(await s.meta(optionId)).toEqual({ remaining: 4, sold: 0, held: 0 });
      expect((await s.api.purchase(optionId, 4)).status).toBe(201);
    });

    it('cancels a confirmed purchase too: its tickets come back, the reservation stays confirmed', async () => {
      const optionId = await s.option(3);
      const id = await s.held(optionId, 3);
      const confirmed = await s.confirm(id);
      expect((await s.api.delete(`/purchases/${confirmed.body.data.id}`)).status).toBe(204);
      const read = await s.api.get(`/purchases/${confirmed.body.data.id}?include=reservation`);
      expect(read.body.data.attributes.status).toBe('cancelled');
      expect(read.body.included[0].attributes.status).toBe('confirmed');
      expect(await s.meta(optionId)).toEqual({ remaining: 3, sold: 0, held: 0 });
      expectError(await s.confirm(id), 409, 'reservation_confirmed', RESERVATION_POINTER);
    });

    it('answers 404 for an unknown purchase and an id that is not a UUID', async () => {
      for (const id of [randomUUID(), 'x']) {
        expectError(await s.api.delete(`/purchases/${id}`), 404, 'not_found');
      }
    });
  });

  describe('expiry with the sweep running (RESERVATION_SWEEP_MS=250)', () => {
    it('gives a hold’s tickets to another buyer no later than 1 s after expires_at, by the database clock', async () => {
      const optionId = await s.option(3);
      const hold = await s.hold(optionId, 3, { ttlSeconds: 1 });
      const id = hold.body.data.id;
      const expiresAt = ms(hold.body.data.attributes.expires_at);
      expectError(
        await s.api.purchase(optionId, 1),
        400,
        'invalid_purchase_quantity',
        QUANTITY_POINTER,
      );

      const swept = await waitFor(
        'the sweep to expire the hold',
        () => s.row(id),
        (row) => row.status === 'expired',
      );
      // The sweep's own commit time (database clock), not when this test happened to look.
      expect(swept.updated_at.getTime() - expiresAt).toBeGreaterThanOrEqual(0);
      expect(swept.updated_at.getTime() - expiresAt).toBeLessThanOrEqual(1000);
      const counters = await s.t.sql.query(
        'SELECT purchased, held FROM ticket_options WHERE id = $1',
        [optionId],
      );
      expect(counters.rows[0]).toEqual({ purchased: 0, held: 0 });

      const other = await s.api.purchase(optionId, 3, randomUUID());
      expect(other.status).toBe(201);
      expect(await s.meta(optionId)).toEqual({ remaining: 0, sold: 3, held: 0 });
      expect(await s.status(id)).toBe('expired');
    });
  });

  describe('metrics', () => {
    it('counts holds created, confirmed, released and expired, cancellations, and tickets held', async () => {
      const m = new Scene(await startTestApp({ env: ENV }));
      try {
        const scrape = async () => parsePrometheus((await m.api.get('/metrics')).text);
        const read = async () => {
          const samples = await scrape();
          return Object.fromEntries(
            [
              'ticket_holds_created_total',
              'ticket_holds_confirmed_total',
              'ticket_holds_released_total',
              'ticket_holds_expired_total',
              'ticket_purchases_cancelled_total',
              'tickets_held',
            ].map((name) => [name.replace(/^tickets?_/, ''), valueOf(samples, name)]),
          );
        };
        const start = await read();
        const delta = async () => {
          const now = await read();
          return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - start[k]]));
        };
        const optionId = await m.option(20);
        const toConfirm = await m.held(optionId, 2);
        const toRelease = await m.held(optionId, 3);
        expect(await delta()).toEqual({
          holds_created_total: 2,
          holds_confirmed_total: 0,
          holds_released_total: 0,
          holds_expired_total: 0,
          purchases_cancelled_total: 0,
          held: 5,
        });

        const confirmed = await m.confirm(toConfirm);
        expect((await m.api.delete(`/reservations/${toRelease}`)).status).toBe(204);
        expect((await m.api.delete(`/purchases/${confirmed.body.data.id}`)).status).toBe(204);
        expect(await delta()).toMatchObject({
          holds_confirmed_total: 1,
          holds_released_total: 1,
          purchases_cancelled_total: 1,
          held: 0,
        });

        const toExpire = await m.hold(optionId, 4, { ttlSeconds: 1 });
        expect(toExpire.status).toBe(201);
        await m.untilPast(toExpire.body.data.attributes.expires_at);
        const expired = await waitFor(
          'the sweep to count the expired hold',
          delta,
          (d) => d.holds_expired_total === 1,
        );
        expect(expired).toMatchObject({
          holds_created_total: 3,
          holds_confirmed_total: 1,
          holds_released_total: 1,
        });
      } finally {
        await m.t.close();
      }
    });
  });
});

describe('reservations without a sweep (RESERVATION_SWEEP_MS=60000)', () => {
  let s: Scene;

  beforeAll(async () => {
    s = new Scene(await startTestApp({ env: { ...ENV, RESERVATION_SWEEP_MS: '60000' } }));
  });
  afterAll(() => s?.t.close());

  it('reads a hold as expired as soon as expires_at has passed, before any sweep, and never confirms it', async () => {
    const optionId = await s.option(4);
    const hold = await s.hold(optionId, 4, { ttlSeconds: 1 });
    const id = hold.body.data.id;
    await s.untilPast(hold.body.data.attributes.expires_at);

    expect(await s.status(id)).toBe('expired');
    expect((await s.row(id)).status).toBe('held'); // not swept: the stored row is unchanged
    // Availability counts unexpired holds only, swept or not.
    expect(await s.meta(optionId)).toEqual({ remaining: 4, sold: 0, held: 0 });
    expectError(await s.confirm(id), 409, 'reservation_expired', RESERVATION_POINTER);
    const nested = await s.api.post(`/ticket_options/${optionId}/purchases`, confirmationBody(id));
    expectError(nested, 409, 'reservation_expired', RESERVATION_POINTER);
    expect(await s.status(id)).toBe('expired');
  });

  it('lets another buyer have an expired, unswept hold’s tickets at once (a refusal does not count it)', async () => {
    const optionId = await s.option(3);
    const hold = await s.hold(optionId, 3, { ttlSeconds: 1 });
    await s.untilPast(hold.body.data.attributes.expires_at);
    const bought = await s.api.post('/purchases', purchaseBody(optionId, 2));
    expect(bought.status).toBe(201);
    expect((await s.hold(optionId, 1)).status).toBe(201);
    expect(await s.meta(optionId)).toEqual({ remaining: 0, sold: 2, held: 1 });
    expect(await s.status(hold.body.data.id)).toBe('expired');
    expectError(
      await s.confirm(hold.body.data.id),
      409,
      'reservation_expired',
      RESERVATION_POINTER,
    );
  });
});

describe('reservations on an instance whose clock is an hour ahead', () => {
  let s: Scene;
  let skewed: ServerProcess | undefined;
  let skewedApi: JsonApiClient;

  beforeAll(async () => {
    s = new Scene(await startTestApp({ env: ENV }));
    const port = await findFreePort();
    skewed = spawnServer(
      {
        ...ENV,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: s.t.databaseUrl,
        LOG_LEVEL: 'info',
        CLOCK_SHIFT_MS: '3600000',
      },
      {
        args: [
          '-r',
          'ts-node/register/transpile-only',
          '-r',
          join(__dirname, 'support', 'clock-shift.ts'),
          'src/main.ts',
        ],
      },
    );
    const baseUrl = `http://127.0.0.1:${port}`;
    await waitUntilServing(skewed, baseUrl);
    skewedApi = new JsonApiClient(baseUrl);
  });
  afterAll(async () => {
    if (skewed) {
      skewed.child.kill('SIGTERM');
      await skewed.exited;
    }
    await s?.t.close();
  });

  it('is really skewed: the times it logs are an hour ahead of the database clock', async () => {
    const before = await s.dbNow();
    const response = await skewedApi.get('/nowhere');
    const requestId = response.headers.get('x-request-id')!;
    const line = await waitFor(
      'the request to be logged',
      () =>
        Promise.resolve(
          skewed!
            .output()
            .split('\n')
            .find((l) => l.includes(requestId)),
        ),
      (found) => found !== undefined,
    );
    const logged = (JSON.parse(line!) as { time: number }).time;
    expect(logged - before).toBeGreaterThan(30 * 60_000);
  });

  it('dates its holds by the database clock; the normal instance confirms them', async () => {
    const optionId = await s.option(10);
    const before = await s.dbNow();
    const hold = await skewedApi.post(
      '/reservations',
      reservationBody(optionId, 2, { ttlSeconds: 600 }),
    );
    const after = await s.dbNow();
    expect(hold.status).toBe(201);
    const { created_at, expires_at } = hold.body.data.attributes;
    expect(ms(created_at)).toBeGreaterThanOrEqual(before);
    expect(ms(created_at)).toBeLessThanOrEqual(after);
    expect(ms(expires_at) - ms(created_at)).toBe(600_000);

    const confirmed = await s.confirm(hold.body.data.id);
    expect(confirmed.status).toBe(201);
    expect(await s.meta(optionId)).toEqual({ remaining: 8, sold: 2, held: 0 });
    // And the other way: the skewed instance confirms a hold of the normal one (its own clock
    // would call the hold long expired).
    const normalHold = await s.held(optionId, 1, 600);
    const viaSkewed = await skewedApi.post('/purchases', confirmationBody(normalHold));
    expect(viaSkewed.status).toBe(201);
    // Its own holds it confirms and releases like any other (not expired an hour early).
    const own = await skewedApi.post(
      '/reservations',
      reservationBody(optionId, 1, { ttlSeconds: 600 }),
    );
    const toRelease = await skewedApi.post('/reservations', reservationBody(optionId, 1));
    expect((await skewedApi.post('/purchases', confirmationBody(own.body.data.id))).status).toBe(
      201,
    );
    expect(
      (await skewedApi.get(`/reservations/${toRelease.body.data.id}`)).body.data.attributes.status,
    ).toBe('held');
    expect((await skewedApi.delete(`/reservations/${toRelease.body.data.id}`)).status).toBe(204);
    expect(await s.status(toRelease.body.data.id)).toBe('released');
    expect(await s.meta(optionId)).toEqual({ remaining: 6, sold: 4, held: 0 });
  });

  it('expires a hold at the same moment for both instances', async () => {
    const optionId = await s.option(10);
    const hold = await skewedApi.post(
      '/reservations',
      reservationBody(optionId, 2, { ttlSeconds: 5 }),
    );
    expect(hold.status).toBe(201);
    const { id } = hold.body.data;
    const expiresAt = hold.body.data.attributes.expires_at;
    const statuses = async () => {
      const [normal, other] = await Promise.all([
        s.api.get(`/reservations/${id}`),
        skewedApi.get(`/reservations/${id}`),
      ]);
      return [normal.body.data.attributes.status, other.body.data.attributes.status];
    };
    const early = await statuses();
    const stillEarly = !(
      await s.t.sql.query('SELECT now() >= $1::timestamptz AS past', [expiresAt])
    ).rows[0].past;
    // Read before expires_at by the database clock: both must still call it held.
    if (stillEarly) expect(early).toEqual(['held', 'held']);

    await s.untilPast(expiresAt);
    expect(await statuses()).toEqual(['expired', 'expired']);
    expectError(
      await skewedApi.post('/purchases', confirmationBody(id)),
      409,
      'reservation_expired',
      RESERVATION_POINTER,
    );
    expectError(await s.confirm(id), 409, 'reservation_expired', RESERVATION_POINTER);
  });
});
