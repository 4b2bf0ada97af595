import {
  JSONAPI,
  JsonApiClient,
  reservationBody,
  ticketOptionBody,
} from './support/jsonapi-client';
import { startTestApp, TestApp } from './support/test-app';

describe('ticket options over HTTP', () => {
  let t: TestApp;
  let api: JsonApiClient;

  beforeAll(async () => {
    t = await startTestApp();
    api = new JsonApiClient(t.baseUrl);
  });
  afterAll(() => t.close());

  describe('POST /ticket_options', () => {
    it('creates an option and returns it with a server id, Location and the exact media type', async () => {
      const response = await api.post(
        '/ticket_options',
        ticketOptionBody({ name: 'example', description: 'sample description', allocation: 100 }),
      );

      expect(response.status).toBe(201);
      expect(response.headers.get('content-type')).toBe(JSONAPI);
      const id = response.body.data.id;
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(response.headers.get('location')).toBe(`/ticket_options/${id}`);
      expect(response.body.data).toEqual({
        type: 'ticket_options',
        id,
        attributes: { name: 'example', description: 'sample description', allocation: 100 },
        links: { self: `/ticket_options/${id}` },
      });

      const row = await t.sql.query('SELECT * FROM ticket_options WHERE id = $1', [id]);
      expect(row.rows[0]).toMatchObject({
        name: 'example',
        allocation: 100,
        purchased: 0,
        version: 1,
      });
    });

    it('stores an omitted description as null', async () => {
      const response = await api.post(
        '/ticket_options',
        ticketOptionBody({ name: 'n', allocation: 1 }),
      );
      expect(response.status).toBe(201);
      expect(response.body.data.attributes.description).toBeNull();
    });

    it('accepts allocation 0 (an option that is sold out) and the int32 maximum', async () => {
      for (const allocation of [0, 2147483647]) {
        const response = await api.post(
          '/ticket_options',
          ticketOptionBody({ name: 'n', allocation }),
        );
        expect(response.status).toBe(201);
        expect(response.body.data.attributes.allocation).toBe(allocation);
      }
    });

    it.each([
      ['missing name', { allocation: 1 }, '/data/attributes/name'],
      ['empty name', { name: '', allocation: 1 }, '/data/attributes/name'],
      ['blank name', { name: '   ', allocation: 1 }, '/data/attributes/name'],
      ['name of 256 chars', { name: 'x'.repeat(256), allocation: 1 }, '/data/attributes/name'],
      ['numeric name', { name: 5, allocation: 1 }, '/data/attributes/name'],
      [
        'description of 10,001 chars',
        { name: 'n', description: 'd'.repeat(10001), allocation: 1 },
        '/data/attributes/description',
      ],
      [
        'numeric description',
        { name: 'n', description: 3, allocation: 1 },
        '/data/attributes/description',
      ],
      ['missing allocation', { name: 'n' }, '/data/attributes/allocation'],
      ['negative allocation', { name: 'n', allocation: -1 }, '/data/attributes/allocation'],
      ['fractional allocation', { name: 'n', allocation: 1.5 }, '/data/attributes/allocation'],
      ['string allocation', { name: 'n', allocation: '10' }, '/data/attributes/allocation'],
      ['null allocation', { name: 'n', allocation: null }, '/data/attributes/allocation'],
      [
        'allocation above int32',
        { name: 'n', allocation: 2147483648 },
        '/data/attributes/allocation',
      ],
      [
        'unknown attribute',
        { name: 'n', allocation: 1, remaining: 1 },
        '/data/attributes/remaining',
      ],
    ])(
      'refuses %s with invalid_attribute and a pointer to it',
      async (_case, attributes, pointer) => {
        const response = await api.post('/ticket_options', ticketOptionBody(attributes));

        expect(response.status).toBe(400);
        expect(response.headers.get('content-type')).toBe(JSONAPI);
        expect(response.body.errors).toEqual([
          expect.objectContaining({
            status: '400',
            code: 'invalid_attribute',
            source: { pointer },
          }),
        ]);
        expect(typeof response.body.errors[0].title).toBe('string');
        expect(typeof response.body.errors[0].detail).toBe('string');
      },
    );

    it('reports every invalid field, each with its own pointer', async () => {
      const response = await api.post(
        '/ticket_options',
        ticketOptionBody({ name: '', allocation: -5, colour: 'red' }),
      );
      expect(response.status).toBe(400);
      const pointers = response.body.errors.map(
        (e: { source: { pointer: string } }) => e.source.pointer,
      );
      expect(pointers.sort()).toEqual(
        ['/data/attributes/allocation', '/data/attributes/colour', '/data/attributes/name'].sort(),
      );
      const count = await t.sql.query(
        'SELECT count(*)::int AS n FROM ticket_options WHERE allocation < 0',
      );
      expect(count.rows[0].n).toBe(0);
    });

    it('refuses a client-generated id with 403 client_id_unsupported', async () => {
      const response = await api.post('/ticket_options', {
        data: {
          type: 'ticket_options',
          id: '6f1f7b5e-8c1e-4a52-9d8e-0a4f6f7c1b11',
          attributes: { name: 'n', allocation: 1 },
        },
      });
      expect(response.status).toBe(403);
      expect(response.body.errors).toEqual([
        expect.objectContaining({
          status: '403',
          code: 'client_id_unsupported',
          source: { pointer: '/data/id' },
        }),
      ]);
    });

    it('refuses a wrong data.type with 409 type_conflict', async () => {
      const response = await api.post('/ticket_options', {
        data: { type: 'purchases', attributes: { name: 'n', allocation: 1 } },
      });
      expect(response.status).toBe(409);
      expect(response.body.errors).toEqual([
        expect.objectContaining({
          status: '409',
          code: 'type_conflict',
          source: { pointer: '/data/type' },
        }),
      ]);
    });

    it.each([
      ['no data member', { meta: {} }, '/data'],
      ['data that is not an object', { data: [] }, '/data'],
      ['data without type', { data: { attributes: { name: 'n', allocation: 1 } } }, '/data/type'],
      ['a top-level array', [{ data: {} }], undefined],
      ['a top-level string', 'hello', undefined],
      ['null', null, undefined],
      [
        'attributes that are not an object',
        { data: { type: 'ticket_options', attributes: 7 } },
        '/data/attributes',
      ],
      [
        'an unknown top-level member',
        { data: { type: 'ticket_options', attributes: { name: 'n', allocation: 1 } }, extra: 1 },
        '/extra',
      ],
    ])('refuses %s with 400 invalid_document', async (_case, body, pointer) => {
      const response = await api.request('POST', '/ticket_options', {
        rawBody: JSON.stringify(body),
        headers: { 'content-type': JSONAPI },
      });
      expect(response.status).toBe(400);
      // The document's shape is at fault, not an attribute: one error, invalid_document, and a
      // pointer to the member that breaks it (none when the whole document is not an object).
      expect(response.body.errors).toEqual([
        expect.objectContaining({ status: '400', code: 'invalid_document' }),
      ]);
      expect(response.body.errors[0].source).toEqual(
        pointer === undefined ? undefined : { pointer },
      );
    });
  });

  describe('GET /ticket_options/:id', () => {
    it('returns the option as created, with the original allocation and remaining, sold and held in meta', async () => {
      const id = await api.createTicketOption({
        name: 'Balcony',
        description: 'Row A',
        allocation: 50,
      });
      const bought = await api.purchase(id, 7);
      expect(bought.status).toBe(201);
      const held = await api.post('/reservations', reservationBody(id, 2));
      expect(held.status).toBe(201);

      const response = await api.get(`/ticket_options/${id}`);

      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(JSONAPI);
      expect(response.body).toEqual({
        data: {
          type: 'ticket_options',
          id,
          attributes: { name: 'Balcony', description: 'Row A', allocation: 50 },
          links: { self: `/ticket_options/${id}` },
        },
        meta: { remaining: 41, sold: 7, held: 2 },
      });
    });

    it('answers 404 not_found for an unknown id and for an id that is not a UUID', async () => {
      for (const id of ['0b5d8c0e-3f4a-4c1e-9a55-6f0d2b8e7a10', 'not-a-uuid', '123']) {
        const response = await api.get(`/ticket_options/${id}`);
        expect(response.status).toBe(404);
        expect(response.headers.get('content-type')).toBe(JSONAPI);
        expect(response.body.errors).toEqual([
          expect.objectContaining({ status: '404', code: 'not_found' }),
        ]);
      }
    });
  });
});
