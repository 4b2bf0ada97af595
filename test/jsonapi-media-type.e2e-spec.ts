import { JSONAPI, JsonApiClient, ticketOptionBody } from './support/jsonapi-client';
import { startTestApp, TestApp } from './support/test-app';

const VALID = JSON.stringify(ticketOptionBody({ name: 'Media', allocation: 3 }));

describe('JSON:API media types and error documents', () => {
  let t: TestApp;
  let api: JsonApiClient;

  beforeAll(async () => {
    t = await startTestApp({ env: { BODY_LIMIT_BYTES: '65536' } });
    api = new JsonApiClient(t.baseUrl);
  });
  afterAll(() => t.close());

  const post = (contentType: string | undefined, body: string | Buffer = VALID) =>
    api.request('POST', '/ticket_options', {
      rawBody: body,
      headers: contentType === undefined ? {} : { 'content-type': contentType },
    });

  it.each([
    JSONAPI,
    'application/json',
    'application/json; charset=utf-8',
    'application/json;charset=UTF-8',
    'APPLICATION/VND.API+JSON',
    `${JSONAPI}; ext="https://jsonapi.org/ext/atomic"`,
    `${JSONAPI}; profile="https://example.com/profile"`,
  ])('accepts a body sent as %s', async (contentType) => {
    const response = await post(contentType);
    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toBe(JSONAPI);
  });

  it.each([
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/xml',
    `${JSONAPI}; charset=utf-8`,
    `${JSONAPI}; version=1`,
    'application/json; charset=latin1',
    'application/json; foo=bar',
    'multipart/form-data; boundary=x',
  ])('refuses a body sent as %s with 415 unsupported_media_type', async (contentType) => {
    const response = await post(contentType);
    expect(response.status).toBe(415);
    expect(response.headers.get('content-type')).toBe(JSONAPI);
    expect(response.body.errors).toEqual([
      expect.objectContaining({
        status: '415',
        code: 'unsupported_media_type',
        source: { parameter: 'Content-Type' },
      }),
    ]);
  });

  it.each([
    `${JSONAPI}; profile="https://example.com/a;b"`,
    `${JSONAPI}; profile="https://example.com/a,b \\"quoted\\""; ext="x"`,
    `${JSONAPI};\tPROFILE="https://example.com/p" ;`,
    'application/json; charset="UTF-8"',
  ])('reads %s per RFC 9110 (quoted strings, escapes, case, whitespace): 201', async (type) => {
    const response = await post(type);
    expect(response.status).toBe(201);
  });

  it.each([
    `${JSONAPI}; profile="https://example.com/a;charset=utf-8"; charset=utf-8`,
    `${JSONAPI}; profile="unterminated`,
    `${JSONAPI}; profile`,
    'application/json; charset = utf-8',
  ])('refuses %s (a forbidden parameter, or malformed) with 415', async (type) => {
    const response = await post(type);
    expect(response.status).toBe(415);
    expect(response.body.errors).toEqual([
      expect.objectContaining({
        code: 'unsupported_media_type',
        source: { parameter: 'Content-Type' },
      }),
    ]);
  });

  it('refuses a body with no Content-Type at all with 415', async () => {
    const response = await post(undefined, Buffer.from(VALID));
    expect(response.status).toBe(415);
    expect(response.body.errors[0].code).toBe('unsupported_media_type');
  });

  it('serves a GET that carries a Content-Type and no body', async () => {
    const id = await api.createTicketOption();
    const response = await api.get(`/ticket_options/${id}`, { 'content-type': JSONAPI });
    expect(response.status).toBe(200);
  });

  it.each([
    ['malformed JSON', '{"data": '],
    ['an empty body', ''],
    ['a JSON number', '42'],
    [
      '__proto__ members',
      '{"data":{"type":"ticket_options","attributes":{"name":"n","allocation":1}},"__proto__":{"x":1}}',
    ],
  ])('answers %s with 400 invalid_document', async (_case, body) => {
    const response = await post(JSONAPI, body);
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe(JSONAPI);
    expect(response.body.errors).toEqual([
      expect.objectContaining({ status: '400', code: 'invalid_document' }),
    ]);
  });

  it('answers a body over the limit with 413 payload_too_large', async () => {
    const big = JSON.stringify(
      ticketOptionBody({ name: 'n', allocation: 1, description: 'x'.repeat(70000) }),
    );
    const response = await post(JSONAPI, big);
    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toBe(JSONAPI);
    expect(response.body.errors).toEqual([
      expect.objectContaining({ status: '413', code: 'payload_too_large' }),
    ]);
  });

  it.each([
    ['GET', '/nowhere'],
    ['POST', '/nowhere'],
    ['DELETE', '/ticket_options'],
    ['GET', '/purchases'],
  ])('answers an unknown route %s %s with a JSON:API 404', async (method, path) => {
    const response = await api.request(method, path);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe(JSONAPI);
    expect(response.body.errors).toEqual([
      expect.objectContaining({ status: '404', code: 'not_found' }),
    ]);
  });

  it('answers 406 when every JSON:API media type in Accept has a forbidden parameter', async () => {
    const id = await api.createTicketOption();
    const refused = await api.get(`/ticket_options/${id}`, { accept: `${JSONAPI}; charset=utf-8` });
    expect(refused.status).toBe(406);
    expect(refused.body.errors[0]).toMatchObject({ status: '406', code: 'not_acceptable' });

    for (const accept of [
      `${JSONAPI}; charset=utf-8, ${JSONAPI}`,
      '*/*',
      'application/json',
      'text/html',
    ]) {
      const served = await api.get(`/ticket_options/${id}`, { accept });
      expect(served.status).toBe(200);
    }
  });

  it('splits Accept only on commas outside quoted strings, and reads quoted parameters whole', async () => {
    const id = await api.createTicketOption();
    const get = (accept: string) => api.get(`/ticket_options/${id}`, { accept });
    // A `;` inside the quoted profile is not a second parameter.
    expect((await get(`${JSONAPI}; profile="https://example.com/a;charset=utf-8"`)).status).toBe(
      200,
    );
    // The bare JSON:API type inside the quoted string is not an instance of it.
    const refused = await get(
      `text/html; x="a, ${JSONAPI}, b", ${JSONAPI}; charset=utf-8, application/json`,
    );
    expect(refused.status).toBe(406);
    expect(refused.body.errors).toEqual([
      expect.objectContaining({ code: 'not_acceptable', source: { parameter: 'Accept' } }),
    ]);
    expect((await get(`${JSONAPI}; charset=utf-8, ${JSONAPI}; profile="a,b"; q=0.5`)).status).toBe(
      200,
    );
    // Malformed ranges are no instance of the JSON:API media type: the answer is served.
    expect((await get(`${JSONAPI}; profile="unterminated, text/html`)).status).toBe(200);
  });

  it('never leaks stack traces or driver messages in error documents', async () => {
    const responses = await Promise.all([
      post(JSONAPI, '{"data": ['),
      post('text/plain', 'x'),
      api.get('/ticket_options/%zz'),
      post(
        JSONAPI,
        '{"data":{"type":"ticket_options","attributes":{"name":"n","allocation":99999999999999999999}}}',
      ),
    ]);
    for (const response of responses) {
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      expect(response.text).not.toMatch(
        /at .*\.(js|ts):\d+|SyntaxError|FST_|QueryFailed|postgres/i,
      );
      for (const error of response.body.errors) {
        expect(Object.keys(error).sort()).toEqual(
          expect.arrayContaining(['code', 'detail', 'status', 'title']),
        );
      }
    }
  });

  it('returns an X-Request-Id, keeping a sane incoming one', async () => {
    const generated = await api.get('/nowhere');
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const kept = await api.get('/nowhere', { 'x-request-id': 'lb-1234' });
    expect(kept.headers.get('x-request-id')).toBe('lb-1234');
    expect(kept.headers.get('x-content-type-options')).toBe('nosniff');
  });
});
