import { randomUUID } from 'node:crypto';
import {
  INVALID_PURCHASE_QUANTITY,
  JSONAPI,
  JsonApiClient,
  purchaseBody,
} from './support/jsonapi-client';
import { startTestApp, TestApp } from './support/test-app';

describe('purchases over HTTP', () => {
  let t: TestApp;
  let api: JsonApiClient;

  beforeAll(async () => {
    t = await startTestApp();
    api = new JsonApiClient(t.baseUrl);
  });
  afterAll(() => t.close());

  async function persisted(
    optionId: string,
  ): Promise<{ purchased: number; sum: number; rows: number }> {
    const result = await t.sql.query(
      `SELECT o.purchased,
              COALESCE((SELECT sum(quantity) FROM purchases WHERE ticket_option_id = o.id), 0)::int AS sum,
              (SELECT count(*) FROM purchases WHERE ticket_option_id = o.id)::int AS rows
         FROM ticket_options o WHERE o.id = $1`,
      [optionId],
    );
    return result.rows[0];
  }

  // Without a `reservation` relationship, POST /purchases is the direct purchase it always was:
  // the same statuses, codes and pointers as before reservations existed (docs/design.md,
  // Reservations); the new attributes and the `reservation: null` relationship are all it gains.
  describe('POST /purchases (no reservation: exactly as before)', () => {
    it('buys tickets: 201, Location, both relationships echoed, and the row is committed', async () => {
      const optionId = await api.createTicketOption({ name: 'Stalls', allocation: 10 });
      const userId = randomUUID();

      const response = await api.purchase(optionId, 3, userId);

      expect(response.status).toBe(201);
      expect(response.headers.get('content-type')).toBe(JSONAPI);
      const id = response.body.data.id;
      expect(response.headers.get('location')).toBe(`/purchases/${id}`);
      expect(response.body).toEqual({
        data: {
          type: 'purchases',
          id,
          attributes: { quantity: 3, status: 'completed', cancelled_at: null },
          relationships: {
            ticket_option: { data: { type: 'ticket_options', id: optionId } },
            user: { data: { type: 'users', id: userId } },
            reservation: { data: null },
          },
          links: { self: `/purchases/${id}` },
        },
      });
      const row = await t.sql.query('SELECT * FROM purchases WHERE id = $1', [id]);
      expect(row.rows[0]).toMatchObject({
        ticket_option_id: optionId,
        user_id: userId,
        quantity: 3,
        status: 'completed',
        cancelled_at: null,
        reservation_id: null,
      });
      expect(await persisted(optionId)).toEqual({ purchased: 3, sum: 3, rows: 1 });

      const readBack = await api.get(`/purchases/${id}`);
      expect(readBack.status).toBe(200);
      expect(readBack.headers.get('content-type')).toBe(JSONAPI);
      expect(readBack.body).toEqual(response.body);
    });

    it('refuses more than remains with invalid_purchase_quantity and persists nothing', async () => {
      const optionId = await api.createTicketOption({ name: 'Box', allocation: 5 });
      expect((await api.purchase(optionId, 4)).status).toBe(201);

      const response = await api.purchase(optionId, 2);

      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toBe(JSONAPI);
      expect(response.body.errors).toHaveLength(1);
      expect(response.body.errors[0]).toMatchObject(INVALID_PURCHASE_QUANTITY);
      expect(typeof response.body.errors[0].detail).toBe('string');
      expect(await persisted(optionId)).toEqual({ purchased: 4, sum: 4, rows: 1 });
    });

    it('sells out exactly, then refuses even one more ticket', async () => {
      const optionId = await api.createTicketOption({ name: 'Exact', allocation: 6 });
      expect((await api.purchase(optionId, 2)).status).toBe(201);
      expect((await api.purchase(optionId, 4)).status).toBe(201);

      const oneMore = await api.purchase(optionId, 1);

      expect(oneMore.status).toBe(400);
      expect(oneMore.body.errors[0]).toMatchObject(INVALID_PURCHASE_QUANTITY);
      expect(await persisted(optionId)).toEqual({ purchased: 6, sum: 6, rows: 2 });
      const option = await api.get(`/ticket_options/${optionId}`);
      expect(option.body.data.attributes.allocation).toBe(6);
      expect(option.body.meta.remaining).toBe(0);
    });

    it('refuses any purchase of an option with allocation 0', async () => {
      const optionId = await api.createTicketOption({ name: 'Empty', allocation: 0 });
      const response = await api.purchase(optionId, 1);
      expect(response.status).toBe(400);
      expect(response.body.errors[0]).toMatchObject(INVALID_PURCHASE_QUANTITY);
      expect(await persisted(optionId)).toEqual({ purchased: 0, sum: 0, rows: 0 });
    });

    it('answers 404 for an unknown ticket option, pointing at the relationship', async () => {
      const response = await api.purchase(randomUUID(), 1);
      expect(response.status).toBe(404);
      expect(response.body.errors).toEqual([
        expect.objectContaining({
          status: '404',
          code: 'not_found',
          source: { pointer: '/data/relationships/ticket_option/data/id' },
        }),
      ]);
    });

    it.each([
      ['zero', 0],
      ['negative', -1],
      ['fractional', 1.5],
      ['a string', '2'],
      ['null', null],
      ['above int32', 2147483648],
      ['a boolean', true],
    ])(
      'refuses a quantity that is %s with invalid_attribute and persists nothing',
      async (_c, quantity) => {
        const optionId = await api.createTicketOption({ name: 'Q', allocation: 10 });
        const response = await api.purchase(optionId, quantity);
        expect(response.status).toBe(400);
        expect(response.body.errors).toEqual([
          expect.objectContaining({
            status: '400',
            code: 'invalid_attribute',
            source: { pointer: '/data/attributes/quantity' },
          }),
        ]);
        expect(await persisted(optionId)).toEqual({ purchased: 0, sum: 0, rows: 0 });
      },
    );

    it('refuses a missing quantity', async () => {
      const optionId = await api.createTicketOption({ name: 'Q', allocation: 10 });
      const body = purchaseBody(optionId, 1);
      body.data.attributes = {};
      const response = await api.post('/purchases', body);
      expect(response.status).toBe(400);
      expect(response.body.errors[0]).toMatchObject({
        code: 'invalid_attribute',
        source: { pointer: '/data/attributes/quantity' },
      });
    });

    it.each([
      [
        'missing ticket_option',
        (b: any) => delete b.data.relationships.ticket_option,
        '/data/relationships/ticket_option',
      ],
      ['missing user', (b: any) => delete b.data.relationships.user, '/data/relationships/user'],
      [
        'user id not a UUID',
        (b: any) => (b.data.relationships.user.data.id = 'bob'),
        '/data/relationships/user/data/id',
      ],
      [
        'user of the wrong type',
        (b: any) => (b.data.relationships.user.data.type = 'people'),
        '/data/relationships/user/data/type',
      ],
      [
        'ticket_option without data',
        (b: any) => (b.data.relationships.ticket_option = {}),
        '/data/relationships/ticket_option/data',
      ],
      [
        'to-many linkage',
        (b: any) => (b.data.relationships.user.data = []),
        '/data/relationships/user/data',
      ],
      [
        'unknown relationship',
        (b: any) => (b.data.relationships.venue = { data: null }),
        '/data/relationships/venue',
      ],
    ])('refuses %s with invalid_relationship and a pointer', async (_case, mutate, pointer) => {
      const optionId = await api.createTicketOption({ name: 'R', allocation: 10 });
      const body = purchaseBody(optionId, 1);
      mutate(body);
      const response = await api.post('/purchases', body);
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([
        expect.objectContaining({
          status: '400',
          code: 'invalid_relationship',
          source: { pointer },
        }),
      ]);
      expect(await persisted(optionId)).toEqual({ purchased: 0, sum: 0, rows: 0 });
    });

    it('refuses a wrong data.type with 409 and a client id with 403', async () => {
      const optionId = await api.createTicketOption({ name: 'T', allocation: 10 });
      const wrongType = purchaseBody(optionId, 1);
      wrongType.data.type = 'orders';
      const typeResponse = await api.post('/purchases', wrongType);
      expect(typeResponse.status).toBe(409);
      expect(typeResponse.body.errors[0]).toMatchObject({
        code: 'type_conflict',
        source: { pointer: '/data/type' },
      });

      const withId = { data: { ...purchaseBody(optionId, 1).data, id: randomUUID() } };
      const idResponse = await api.post('/purchases', withId);
      expect(idResponse.status).toBe(403);
      expect(idResponse.body.errors[0]).toMatchObject({
        code: 'client_id_unsupported',
        source: { pointer: '/data/id' },
      });
      expect(await persisted(optionId)).toEqual({ purchased: 0, sum: 0, rows: 0 });
    });
  });

  describe('POST /ticket_options/:id/purchases', () => {
    it('buys with the option taken from the path', async () => {
      const optionId = await api.createTicketOption({ name: 'Nested', allocation: 4 });
      const response = await api.post(
        `/ticket_options/${optionId}/purchases`,
        purchaseBody(undefined, 4),
      );
      expect(response.status).toBe(201);
      expect(response.headers.get('location')).toBe(`/purchases/${response.body.data.id}`);
      expect(response.body.data.relationships.ticket_option.data).toEqual({
        type: 'ticket_options',
        id: optionId,
      });
      expect(await persisted(optionId)).toEqual({ purchased: 4, sum: 4, rows: 1 });

      const refused = await api.post(
        `/ticket_options/${optionId}/purchases`,
        purchaseBody(undefined, 1),
      );
      expect(refused.status).toBe(400);
      expect(refused.body.errors[0]).toMatchObject(INVALID_PURCHASE_QUANTITY);
    });

    it('accepts a ticket_option relationship that matches the path', async () => {
      const optionId = await api.createTicketOption({ name: 'Nested', allocation: 4 });
      const response = await api.post(
        `/ticket_options/${optionId}/purchases`,
        purchaseBody(optionId.toUpperCase(), 1),
      );
      expect(response.status).toBe(201);
    });

    it('refuses a ticket_option relationship that differs from the path with 409 id_conflict', async () => {
      const optionId = await api.createTicketOption({ name: 'Nested', allocation: 4 });
      const other = await api.createTicketOption({ name: 'Other', allocation: 4 });
      const response = await api.post(
        `/ticket_options/${optionId}/purchases`,
        purchaseBody(other, 1),
      );
      expect(response.status).toBe(409);
      expect(response.body.errors).toEqual([
        expect.objectContaining({
          status: '409',
          code: 'id_conflict',
          source: { pointer: '/data/relationships/ticket_option/data/id' },
        }),
      ]);
      expect(await persisted(optionId)).toEqual({ purchased: 0, sum: 0, rows: 0 });
      expect(await persisted(other)).toEqual({ purchased: 0, sum: 0, rows: 0 });
    });

    it('answers 404 for an unknown option and for a path id that is not a UUID', async () => {
      for (const id of [randomUUID(), 'nope']) {
        const response = await api.post(
          `/ticket_options/${id}/purchases`,
          purchaseBody(undefined, 1),
        );
        expect(response.status).toBe(404);
        expect(response.body.errors[0]).toMatchObject({ status: '404', code: 'not_found' });
      }
    });
  });

  describe('GET /purchases/:id', () => {
    it('answers 404 for an unknown purchase and for an id that is not a UUID', async () => {
      for (const id of [randomUUID(), 'x']) {
        const response = await api.get(`/purchases/${id}`);
        expect(response.status).toBe(404);
        expect(response.headers.get('content-type')).toBe(JSONAPI);
        expect(response.body.errors[0]).toMatchObject({ status: '404', code: 'not_found' });
      }
    });
  });
});
