import { randomUUID } from 'node:crypto';
import {
  confirmationBody,
  JSONAPI,
  JsonApiClient,
  purchaseBody,
  reservationBody,
  ticketOptionBody,
} from './support/jsonapi-client';
import { startTestApp, TestApp } from './support/test-app';

/**
 * JSON:API 1.1 §7 query parameters on every JSON:API route (docs/design.md, Wire contract "Query parameters"):
 * `include` and `fields[TYPE]` are honoured, everything else JSON:API reserves is refused with
 * 400 `invalid_query_parameter` naming the parameter as sent, and implementation-specific names
 * (with a character other than a–z) are ignored.
 */
describe('JSON:API query parameters', () => {
  let t: TestApp;
  let api: JsonApiClient;
  let optionId: string;
  let purchaseId: string;
  let userId: string;
  /** A reservation confirmed into `confirmedId`, and one still held. */
  let reservationId: string;
  let confirmedId: string;
  let heldId: string;

  beforeAll(async () => {
    t = await startTestApp();
    api = new JsonApiClient(t.baseUrl);
    optionId = await api.createTicketOption({ name: 'Circle', allocation: 100 });
    userId = randomUUID();
    const bought = await api.purchase(optionId, 2, userId);
    purchaseId = bought.body.data.id;
    const hold = await api.post('/reservations', reservationBody(optionId, 3, { userId }));
    reservationId = hold.body.data.id;
    const confirmed = await api.post('/purchases', confirmationBody(reservationId));
    expect(confirmed.status).toBe(201);
    confirmedId = confirmed.body.data.id;
    heldId = (await api.post('/reservations', reservationBody(optionId, 1))).body.data.id;
  });
  afterAll(() => t.close());

  const purchase = (query: string) => api.get(`/purchases/${purchaseId}${query}`);
  const option = (query: string) => api.get(`/ticket_options/${optionId}${query}`);
  const reservation = (query: string, id = reservationId) => api.get(`/reservations/${id}${query}`);
  const rowCounts = async () =>
    (
      await t.sql.query(
        `SELECT (SELECT count(*) FROM ticket_options)::int AS options,
                (SELECT count(*) FROM purchases)::int AS purchases,
                (SELECT count(*) FROM reservations)::int AS reservations`,
      )
    ).rows[0];

  /** The error objects of a 400, as `[code, source.parameter]` pairs. */
  async function refusedParameters(
    response: Promise<{ status: number; headers: Headers; body: any }>,
  ) {
    const answer = await response;
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toBe(JSONAPI);
    for (const error of answer.body.errors) {
      expect(error).toMatchObject({
        status: '400',
        title: 'Invalid query parameter',
        detail: expect.any(String),
      });
    }
    return answer.body.errors.map((error: any) => [error.code, error.source?.parameter]);
  }
  const refused = (parameter: string) => ['invalid_query_parameter', parameter];

  describe('include', () => {
    it('GET /purchases/:id?include=ticket_option is a compound document with the option as GET /ticket_options/:id gives it', async () => {
      const [compound, plain, read] = await Promise.all([
        purchase('?include=ticket_option'),
        purchase(''),
        option(''),
      ]);
      expect(compound.status).toBe(200);
      expect(compound.body).toEqual({ data: plain.body.data, included: [read.body.data] });
      // Full linkage: the included option is the one the relationship names.
      const linkage = compound.body.data.relationships.ticket_option.data;
      expect(compound.body.included.map((r: any) => ({ type: r.type, id: r.id }))).toEqual([
        linkage,
      ]);
    });

    it('includes each related resource once, however often its path is asked for', async () => {
      const response = await purchase('?include=ticket_option,ticket_option');
      expect(response.status).toBe(200);
      expect(response.body.included).toHaveLength(1);
    });

    it('answers include= (empty: no related resources) with an empty included member', async () => {
      const response = await purchase('?include=');
      expect(response.status).toBe(200);
      expect(response.body.included).toEqual([]);
      expect(response.body.data.id).toBe(purchaseId);
    });

    it('GET /purchases/:id?include=reservation adds the reservation it confirmed, as GET /reservations/:id gives it', async () => {
      const [compound, plain, read] = await Promise.all([
        api.get(`/purchases/${confirmedId}?include=reservation`),
        api.get(`/purchases/${confirmedId}`),
        reservation(''),
      ]);
      expect(compound.status).toBe(200);
      expect(read.body.data.attributes.status).toBe('confirmed');
      expect(compound.body).toEqual({ data: plain.body.data, included: [read.body.data] });
      expect(compound.body.data.relationships.reservation.data).toEqual({
        type: 'reservations',
        id: reservationId,
      });
    });

    it('GET /purchases/:id?include=ticket_option,reservation includes both; a direct purchase has no reservation to include', async () => {
      const both = await api.get(`/purchases/${confirmedId}?include=ticket_option,reservation`);
      expect(both.status).toBe(200);
      expect(both.body.included.map((r: any) => [r.type, r.id])).toEqual([
        ['ticket_options', optionId],
        ['reservations', reservationId],
      ]);
      const direct = await purchase('?include=ticket_option,reservation');
      expect(direct.status).toBe(200);
      expect(direct.body.data.relationships.reservation).toEqual({ data: null });
      expect(direct.body.included.map((r: any) => [r.type, r.id])).toEqual([
        ['ticket_options', optionId],
      ]);
      const onlyReservation = await purchase('?include=reservation');
      expect(onlyReservation.status).toBe(200);
      expect(onlyReservation.body.included).toEqual([]);
    });

    it('GET /reservations/:id?include=purchase,ticket_option is a compound document of both', async () => {
      const [compound, plain, bought, read] = await Promise.all([
        reservation('?include=purchase,ticket_option'),
        reservation(''),
        api.get(`/purchases/${confirmedId}`),
        option(''),
      ]);
      expect(compound.status).toBe(200);
      expect(compound.body.data).toEqual(plain.body.data);
      expect(compound.body.included).toEqual(
        expect.arrayContaining([bought.body.data, read.body.data]),
      );
      expect(compound.body.included).toHaveLength(2);
      const held = await reservation('?include=purchase', heldId);
      expect(held.status).toBe(200);
      expect(held.body.data.relationships.purchase).toEqual({ data: null });
      expect(held.body.included).toEqual([]);
    });

    // JSON:API 1.1 §7.2.1: a multi-part path includes every resource along it ("comments.author"
    // includes the comments and their authors); the OpenAPI document lists these paths as valid.
    it.each([
      ['purchases', 'reservation.ticket_option', () => confirmedId],
      ['purchases', 'reservation.purchase', () => confirmedId],
      ['reservations', 'purchase.ticket_option', () => reservationId],
    ])('GET /%s/:id?include=%s includes every resource on the path', async (type, path, id) => {
      const response = await api.get(`/${type}/${id()}?include=${path}`);
      expect(response.status).toBe(200);
      const included = response.body.included.map((r: any) => `${r.type} ${r.id}`).sort();
      const expected = {
        'reservation.ticket_option': [
          `reservations ${reservationId}`,
          `ticket_options ${optionId}`,
        ],
        'reservation.purchase': [`reservations ${reservationId}`],
        'purchase.ticket_option': [`purchases ${confirmedId}`, `ticket_options ${optionId}`],
      }[path]!;
      // The primary resource itself is never repeated in included.
      expect(included).toEqual([...expected].sort());
    });

    it.each([
      'user',
      'ticket_option.purchases',
      'ticket_option,',
      'TICKET_OPTION',
      'reservations',
      'reservation.user',
      'reservation,',
    ])('refuses include=%s with 400 naming the include parameter', async (value) => {
      expect(await refusedParameters(purchase(`?include=${value}`))).toEqual([refused('include')]);
    });

    it.each(['user', 'purchases', 'reservation', 'purchase.user', 'ticket_option,'])(
      'refuses include=%s on a reservation',
      async (value) => {
        expect(await refusedParameters(reservation(`?include=${value}`))).toEqual([
          refused('include'),
        ]);
      },
    );

    it.each(['ticket_option', 'x', ''])(
      'refuses include=%s on a ticket option (it has no relationships)',
      async (value) => {
        expect(await refusedParameters(option(`?include=${value}`))).toEqual([refused('include')]);
      },
    );

    it('refuses include on the POSTs, and sells or creates nothing', async () => {
      const before = await rowCounts();
      const paths = ['/purchases', `/ticket_options/${optionId}/purchases`];
      for (const path of paths) {
        const response = api.post(`${path}?include=ticket_option`, purchaseBody(optionId, 1));
        expect(await refusedParameters(response)).toEqual([refused('include')]);
      }
      for (const path of ['/reservations', `/ticket_options/${optionId}/reservations`]) {
        const response = api.post(`${path}?include=ticket_option`, reservationBody(optionId, 1));
        expect(await refusedParameters(response)).toEqual([refused('include')]);
      }
      const created = api.post(
        '/ticket_options?include=',
        ticketOptionBody({ name: 'n', allocation: 1 }),
      );
      expect(await refusedParameters(created)).toEqual([refused('include')]);
      expect(await rowCounts()).toEqual(before);
    });
  });

  describe('sparse fieldsets', () => {
    it('GET /purchases/:id keeps only the named fields; type, id and links stay', async () => {
      const response = await purchase('?fields[purchases]=quantity');
      expect(response.status).toBe(200);
      expect(response.body).toEqual({
        data: {
          type: 'purchases',
          id: purchaseId,
          attributes: { quantity: 2 },
          relationships: {},
          links: { self: `/purchases/${purchaseId}` },
        },
      });
      const user = await purchase('?fields[purchases]=user');
      expect(user.body.data.attributes).toEqual({});
      expect(user.body.data.relationships).toEqual({
        user: { data: { type: 'users', id: userId } },
      });
    });

    it('applies to included resources by their type, and an empty list keeps no field', async () => {
      const response = await purchase(
        '?include=ticket_option&fields[ticket_options]=name&fields[purchases]=',
      );
      expect(response.status).toBe(200);
      expect(response.body.data.attributes).toEqual({});
      expect(response.body.data.relationships).toEqual({});
      expect(response.body.included).toEqual([
        {
          type: 'ticket_options',
          id: optionId,
          attributes: { name: 'Circle' },
          links: { self: `/ticket_options/${optionId}` },
        },
      ]);
    });

    it('GET /ticket_options/:id keeps the named attributes and the document meta', async () => {
      const response = await option('?fields[ticket_options]=allocation,description');
      expect(response.status).toBe(200);
      expect(response.body.data.attributes).toEqual({ allocation: 100, description: null });
      expect(response.body.meta).toEqual({
        remaining: expect.any(Number),
        sold: expect.any(Number),
        held: expect.any(Number),
      });
    });

    it('honours fields[TYPE] on the 201 of every POST', async () => {
      const created = await api.post(
        '/ticket_options?fields[ticket_options]=name',
        ticketOptionBody({ name: 'Sparse', allocation: 5, description: 'd' }),
      );
      expect(created.status).toBe(201);
      expect(created.body.data.attributes).toEqual({ name: 'Sparse' });
      expect(created.headers.get('location')).toBe(created.body.data.links.self);

      for (const path of ['/purchases', `/ticket_options/${created.body.data.id}/purchases`]) {
        const bought = await api.post(
          `${path}?fields[purchases]=ticket_option`,
          purchaseBody(created.body.data.id, 1),
        );
        expect(bought.status).toBe(201);
        expect(bought.body.data.attributes).toEqual({});
        expect(bought.body.data.relationships).toEqual({
          ticket_option: { data: { type: 'ticket_options', id: created.body.data.id } },
        });
        // Only the answer is sparse: the purchase itself is whole.
        const read = await api.get(bought.body.data.links.self);
        expect(read.body.data.attributes).toEqual({
          quantity: 1,
          status: 'completed',
          cancelled_at: null,
        });
      }

      for (const path of [
        '/reservations',
        `/ticket_options/${created.body.data.id}/reservations`,
      ]) {
        const held = await api.post(
          `${path}?fields[reservations]=status,purchase`,
          reservationBody(created.body.data.id, 1),
        );
        expect(held.status).toBe(201);
        expect(held.body.data.attributes).toEqual({ status: 'held' });
        expect(held.body.data.relationships).toEqual({ purchase: { data: null } });
        expect(held.headers.get('location')).toBe(held.body.data.links.self);
        const read = await api.get(held.body.data.links.self);
        expect(Object.keys(read.body.data.attributes).sort()).toEqual([
          'created_at',
          'expires_at',
          'quantity',
          'status',
        ]);
      }
    });

    it('GET /purchases/:id and GET /reservations/:id keep the new fields when named', async () => {
      const bought = await api.get(
        `/purchases/${confirmedId}?fields[purchases]=status,cancelled_at,reservation`,
      );
      expect(bought.status).toBe(200);
      expect(bought.body.data.attributes).toEqual({ status: 'completed', cancelled_at: null });
      expect(bought.body.data.relationships).toEqual({
        reservation: { data: { type: 'reservations', id: reservationId } },
      });
      const held = await reservation('?fields[reservations]=quantity,expires_at,user');
      expect(held.status).toBe(200);
      expect(held.body.data.attributes).toEqual({
        quantity: 3,
        expires_at: expect.any(String),
      });
      expect(held.body.data.relationships).toEqual({
        user: { data: { type: 'users', id: userId } },
      });
      const sparseIncluded = await reservation(
        '?include=purchase&fields[reservations]=&fields[purchases]=quantity',
      );
      expect(sparseIncluded.status).toBe(200);
      expect(sparseIncluded.body.data.attributes).toEqual({});
      expect(sparseIncluded.body.included[0].attributes).toEqual({ quantity: 3 });
    });

    it.each([
      ['/purchases/{p}', 'fields[purchases]=quantity,price', 'fields[purchases]'],
      ['/purchases/{p}', 'fields[users]=name', 'fields[users]'],
      ['/purchases/{p}', 'fields[orders]=x', 'fields[orders]'],
      ['/purchases/{p}', 'fields[purchases]=quantity,', 'fields[purchases]'],
      ['/ticket_options/{o}', 'fields[ticket_options]=remaining', 'fields[ticket_options]'],
      ['/ticket_options/{o}', 'fields[purchases]=quantity', 'fields[purchases]'],
      ['/ticket_options/{o}', 'fields%5Bticket_options%5D=purchased', 'fields[ticket_options]'],
      ['/ticket_options/{o}', 'fields[ticket_options]=sold', 'fields[ticket_options]'],
      ['/purchases/{p}', 'fields[purchases]=cancelled', 'fields[purchases]'],
      ['/reservations/{r}', 'fields[reservations]=expires', 'fields[reservations]'],
      ['/reservations/{r}', 'fields[reservations]=ttl_seconds', 'fields[reservations]'],
      ['/reservations/{r}', 'fields[users]=name', 'fields[users]'],
    ])('GET %s?%s → 400 naming %s', async (path, query, parameter) => {
      const url = path
        .replace('{p}', purchaseId)
        .replace('{o}', optionId)
        .replace('{r}', reservationId);
      expect(await refusedParameters(api.get(`${url}?${query}`))).toEqual([refused(parameter)]);
    });

    it('refuses an unknown field or type on a POST before creating anything', async () => {
      const before = await rowCounts();
      const response = api.post('/purchases?fields[purchases]=cost', purchaseBody(optionId, 1));
      expect(await refusedParameters(response)).toEqual([refused('fields[purchases]')]);
      // A 201 holds no ticket option: the POSTs do not honour include.
      const option = api.post('/purchases?fields[ticket_options]=name', purchaseBody(optionId, 1));
      expect(await refusedParameters(option)).toEqual([refused('fields[ticket_options]')]);
      const created = api.post(
        '/ticket_options?fields[ticket_options]=remaining',
        ticketOptionBody({ name: 'n', allocation: 1 }),
      );
      expect(await refusedParameters(created)).toEqual([refused('fields[ticket_options]')]);
      expect(await rowCounts()).toEqual(before);
    });

    it('a refused query releases the Idempotency-Key: the corrected retry is served', async () => {
      const key = `query-${randomUUID()}`;
      const headers = { 'idempotency-key': key };
      const body = purchaseBody(optionId, 1);
      const bad = api.post('/purchases?fields[purchases]=cost', body, headers);
      expect(await refusedParameters(bad)).toEqual([refused('fields[purchases]')]);
      const retried = await api.post('/purchases?fields[purchases]=quantity', body, headers);
      expect(retried.status).toBe(201);
      expect(retried.headers.get('idempotent-replayed')).toBeNull();
      expect(retried.body.data.attributes).toEqual({ quantity: 1 });
    });
  });

  describe('other parameters', () => {
    it('refuses reserved parameters on the DELETEs too, and cancels or releases nothing', async () => {
      const bought = await api.purchase(optionId, 1);
      const hold = await api.post('/reservations', reservationBody(optionId, 1));
      for (const path of [bought.body.data.links.self, hold.body.data.links.self]) {
        expect(await refusedParameters(api.delete(`${path}?sort=quantity`))).toEqual([
          refused('sort'),
        ]);
        expect(await refusedParameters(api.delete(`${path}?foo=1`))).toEqual([refused('foo')]);
      }
      expect((await api.get(bought.body.data.links.self)).body.data.attributes.status).toBe(
        'completed',
      );
      expect((await api.get(hold.body.data.links.self)).body.data.attributes.status).toBe('held');
    });

    it.each([
      'sort=name',
      'sort=-quantity',
      'page[size]=1',
      'page[number]=2',
      'filter[quantity]=1',
      'filter=x',
      'page=1',
    ])('refuses %s on a single resource, naming the parameter as sent', async (query) => {
      const name = decodeURIComponent(query.split('=')[0]);
      expect(await refusedParameters(purchase(`?${query}`))).toEqual([refused(name)]);
      expect(await refusedParameters(option(`?${query}`))).toEqual([refused(name)]);
    });

    it.each(['foo=bar', 'debug=1', 'ext=x', 'profile=x', 'ids[]=1', 'include[ticket_option]=1'])(
      'refuses %s: names of only a-z are reserved by JSON:API',
      async (query) => {
        const name = query.split('=')[0];
        expect(await refusedParameters(purchase(`?${query}`))).toEqual([refused(name)]);
      },
    );

    it.each([
      'debugMode=1',
      'x-trace=abc',
      '_=1700000000',
      'utm_source=mail',
      'camelCase[x]=1',
      'a1=b',
    ])('ignores the implementation-specific %s', async (query) => {
      const [plain, withIgnored] = await Promise.all([purchase(''), purchase(`?${query}`)]);
      expect(withIgnored.status).toBe(200);
      expect(withIgnored.body).toEqual(plain.body);
    });

    it.each([
      ['a repeated include', 'include=ticket_option&include=ticket_option', 'include'],
      [
        'a repeated fieldset',
        'fields[purchases]=quantity&fields%5Bpurchases%5D=user',
        'fields[purchases]',
      ],
      ['fields without brackets', 'fields=quantity', 'fields'],
      ['an open bracket', 'fields[=quantity', 'fields['],
      ['two bracket segments', 'fields[purchases][x]=quantity', 'fields[purchases][x]'],
      ['an empty type', 'fields[]=quantity', 'fields[]'],
      ['a bracket without a base name', '[purchases]=quantity', '[purchases]'],
    ])('refuses %s with 400, never 500', async (_case, query, parameter) => {
      expect(await refusedParameters(purchase(`?${query}`))).toEqual([refused(parameter)]);
    });

    it('reports several bad parameters as several errors, and ignores the rest', async () => {
      const errors = await refusedParameters(
        purchase('?sort=quantity&debugMode=1&include=user&fields[orders]=x&foo=1'),
      );
      expect(errors).toEqual([
        refused('sort'),
        refused('include'),
        refused('fields[orders]'),
        refused('foo'),
      ]);
    });

    it('answers thousands of bad parameters with at most 21 error objects', async () => {
      const names = Array.from(
        { length: 2000 },
        (_, i) => `p${i.toString(26).replace(/\d/g, (d) => String.fromCharCode(113 + Number(d)))}`,
      );
      const errors = await refusedParameters(purchase(`?${names.map((n) => `${n}=1`).join('&')}`));
      expect(errors).toHaveLength(21);
      expect(errors.slice(0, 2)).toEqual([refused(names[0]), refused(names[1])]);
    });

    it('reads an unknown purchase or reservation with include as 404, like without', async () => {
      const response = await api.get(`/purchases/${randomUUID()}?include=ticket_option`);
      expect(response.status).toBe(404);
      const unknown = await api.get(`/reservations/${randomUUID()}?include=purchase`);
      expect(unknown.status).toBe(404);
    });

    it.each(['sort=quantity', 'page[size]=1', 'filter[status]=held', 'foo=1'])(
      'refuses %s on a reservation too',
      async (query) => {
        const name = query.split('=')[0];
        expect(await refusedParameters(reservation(`?${query}`))).toEqual([refused(name)]);
      },
    );
  });
});
