import { randomUUID } from 'node:crypto';
import { JSONAPI, JsonApiClient, purchaseBody, ticketOptionBody } from './support/jsonapi-client';
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

  beforeAll(async () => {
    t = await startTestApp();
    api = new JsonApiClient(t.baseUrl);
    optionId = await api.createTicketOption({ name: 'Circle', allocation: 100 });
    userId = randomUUID();
    const bought = await api.purchase(optionId, 2, userId);
    purchaseId = bought.body.data.id;
  });
  afterAll(() => t.close());

  const purchase = (query: string) => api.get(`/purchases/${purchaseId}${query}`);
  const option = (query: string) => api.get(`/ticket_options/${optionId}${query}`);
  const rowCounts = async () =>
    (
      await t.sql.query(
        `SELECT (SELECT count(*) FROM ticket_options)::int AS options,
                (SELECT count(*) FROM purchases)::int AS purchases`,
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

    it.each([
      'reservation',
      'ticket_option,reservation',
      'user',
      'ticket_option.purchases',
      'ticket_option,',
      'TICKET_OPTION',
    ])('refuses include=%s with 400 naming the include parameter', async (value) => {
      expect(await refusedParameters(purchase(`?include=${value}`))).toEqual([refused('include')]);
    });

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
      expect(response.body.meta).toEqual({ remaining: expect.any(Number) });
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
        expect(read.body.data.attributes).toEqual({ quantity: 1 });
      }
    });

    it.each([
      ['/purchases/{p}', 'fields[purchases]=quantity,price', 'fields[purchases]'],
      ['/purchases/{p}', 'fields[users]=name', 'fields[users]'],
      ['/purchases/{p}', 'fields[orders]=x', 'fields[orders]'],
      ['/purchases/{p}', 'fields[purchases]=quantity,', 'fields[purchases]'],
      ['/ticket_options/{o}', 'fields[ticket_options]=remaining', 'fields[ticket_options]'],
      ['/ticket_options/{o}', 'fields[purchases]=quantity', 'fields[purchases]'],
      ['/ticket_options/{o}', 'fields%5Bticket_options%5D=purchased', 'fields[ticket_options]'],
    ])('GET %s?%s → 400 naming %s', async (path, query, parameter) => {
      const url = path.replace('{p}', purchaseId).replace('{o}', optionId);
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
        purchase('?sort=quantity&debugMode=1&include=reservation&fields[orders]=x&foo=1'),
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

    it('reads an unknown purchase with include as 404, like without', async () => {
      const response = await api.get(`/purchases/${randomUUID()}?include=ticket_option`);
      expect(response.status).toBe(404);
    });
  });
});
