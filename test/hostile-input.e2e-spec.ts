/**
 * Fixed hostile requests against the real application: sizes and shapes a fuzzer reaches rarely
 * (5 MB, 10,000 levels, 100,000 members), requests below what fetch can send (raw bytes, raw
 * sockets), the headers of every answer, and the regressions the fuzz tests found
 * (test/fuzz.e2e-spec.ts).
 */
import { randomUUID } from 'node:crypto';
import { MAX_NESTING_DEPTH } from '../src/jsonapi/json-body';
import { JSONAPI, JsonApiClient, purchaseBody, ticketOptionBody } from './support/jsonapi-client';
import {
  Answer,
  answerOf,
  assertJsonApiAnswer,
  echoableTexts,
} from './support/jsonapi-conformance';
import { RawResponse, sendNodeHttp, sendRawHttp } from './support/raw-http';
import { startTestApp, TestApp } from './support/test-app';
import { waitFor } from './support/waiting';

const MiB = 1024 * 1024;

describe('hostile input: fixed cases', () => {
  let t: TestApp;
  let api: JsonApiClient;
  let port: number;
  let optionId: string;

  beforeAll(async () => {
    t = await startTestApp(); // the default body limit: 1 MiB
    api = new JsonApiClient(t.baseUrl);
    port = Number(new URL(t.baseUrl).port);
    optionId = await api.createTicketOption({ name: 'Hostile', allocation: 1000 });
  });
  afterAll(() => t.close());

  async function send(
    method: string,
    path: string,
    body?: string | Buffer,
    headers: Record<string, string> = { 'content-type': JSONAPI },
  ): Promise<Answer> {
    const response = await fetch(`${t.baseUrl}${path}`, {
      method,
      headers,
      body: typeof body === 'string' ? Buffer.from(body) : body,
    });
    const answer = answerOf(response.status, response.headers, await response.text());
    assertJsonApiAnswer(
      answer,
      echoableTexts(path, headers, typeof body === 'string' ? Buffer.from(body) : body),
    );
    return answer;
  }

  const post = (path: string, body: string | Buffer, headers?: Record<string, string>) =>
    send('POST', path, body, headers);

  function fromRaw(response: RawResponse): Answer {
    const answer = answerOf(response.status, response.headers, response.text);
    assertJsonApiAnswer(answer);
    return answer;
  }

  /** The error codes of an answer, after checking it is a well-formed error document. */
  function codes(answer: Answer, status: number): string[] {
    expect(answer.status).toBe(status);
    return answer.document.errors.map((error: { code: string }) => error.code);
  }

  async function rowCounts(): Promise<{ options: number; purchases: number }> {
    const result = await t.sql.query(
      `SELECT (SELECT count(*) FROM ticket_options)::int AS options,
              (SELECT count(*) FROM purchases)::int AS purchases`,
    );
    return result.rows[0];
  }

  /** Runs `refused` and checks that it persisted nothing. */
  async function persistsNothing(refused: () => Promise<void>): Promise<void> {
    const before = await rowCounts();
    await refused();
    expect(await rowCounts()).toEqual(before);
  }

  const purchaseText = (quantity: unknown = 1) => JSON.stringify(purchaseBody(optionId, quantity));
  const optionText = (attributes: Record<string, unknown>) =>
    JSON.stringify(ticketOptionBody({ name: 'n', allocation: 1, ...attributes }));

  describe('size', () => {
    it('refuses a 5 MB body with 413 payload_too_large, sent whole or streamed', async () => {
      const body = optionText({ description: 'x'.repeat(5 * MiB) });
      await persistsNothing(async () => {
        expect(codes(await post('/ticket_options', body), 413)).toEqual(['payload_too_large']);

        // Chunked, without a Content-Length: the limit counts bytes as they arrive.
        const bytes = Buffer.from(body);
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let at = 0; at < bytes.length; at += 64 * 1024) {
              controller.enqueue(bytes.subarray(at, at + 64 * 1024));
            }
            controller.close();
          },
        });
        const response = await fetch(`${t.baseUrl}/purchases`, {
          method: 'POST',
          headers: { 'content-type': JSONAPI },
          body: stream,
          duplex: 'half',
        });
        const answer = answerOf(response.status, response.headers, await response.text());
        assertJsonApiAnswer(answer);
        expect(codes(answer, 413)).toEqual(['payload_too_large']);
      });
    });

    it('answers a body of 100,000 members with at most 21 error objects', async () => {
      const members = (n: number) =>
        Array.from({ length: n }, (_, i) => `"${i.toString(36)}":0`).join(',');
      const topLevel = `{${members(100_000)}}`;
      const inAttributes = `{"data":{"type":"purchases","attributes":{${members(100_000)}}}}`;
      expect(Buffer.byteLength(inAttributes)).toBeLessThan(MiB);

      await persistsNothing(async () => {
        for (const body of [topLevel, inAttributes]) {
          const answer = await post('/purchases', body);
          expect(answer.status).toBe(400);
          expect(answer.document.errors).toHaveLength(21);
          expect(answer.document.errors[20]).toMatchObject({
            code: 'invalid_document',
            detail: expect.stringMatching(/^\d+ more invalid members are not listed/),
          });
        }
      });

      // In `meta` (free-form) they are no error: the purchase goes through.
      const inMeta = `{"data":${JSON.stringify(purchaseBody(optionId, 1).data)},"meta":{${members(100_000)}}}`;
      expect((await post('/purchases', inMeta)).status).toBe(201);
    });
  });

  describe('nesting', () => {
    const arrays = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
    const objects = (levels: number) => '{"a":'.repeat(levels) + '0' + '}'.repeat(levels);

    it.each([
      ['10,000 levels of arrays', arrays(10_000)],
      ['10,000 levels of objects', objects(10_000)],
      [
        '10,000 levels inside an attribute',
        `{"data":{"type":"ticket_options","attributes":{"name":${arrays(10_000)},"allocation":1}}}`,
      ],
      ['200,000 levels of arrays', arrays(200_000)],
    ])(
      'refuses %s with 400 invalid_document, with or without Idempotency-Key',
      async (_case, body) => {
        await persistsNothing(async () => {
          for (const path of [
            '/ticket_options',
            '/purchases',
            `/ticket_options/${optionId}/purchases`,
          ]) {
            for (const key of [undefined, `deep-${randomUUID()}`]) {
              const headers: Record<string, string> = { 'content-type': JSONAPI };
              if (key) headers['idempotency-key'] = key; // its fingerprint once overflowed the stack: 500
              const answer = await post(path, body, headers);
              expect(codes(answer, 400)).toEqual(['invalid_document']);
              expect(answer.document.errors[0].detail).toMatch(/nested deeper than 64 levels/);
            }
          }
        });
      },
    );

    it(`accepts ${MAX_NESTING_DEPTH} levels in all, in meta`, async () => {
      // The document is level 1, meta level 2: 62 more objects inside make 64.
      const meta = '{"a":'.repeat(MAX_NESTING_DEPTH - 2) + '{}' + '}'.repeat(MAX_NESTING_DEPTH - 2);
      const body = (metaText: string) =>
        `{"data":${JSON.stringify(purchaseBody(optionId, 1).data)},"meta":${metaText}}`;
      expect((await post('/purchases', body(meta))).status).toBe(201);
      expect(codes(await post('/purchases', body(`{"b":${meta}}`)), 400)).toEqual([
        'invalid_document',
      ]);
    });
  });

  describe('not a resource document', () => {
    it.each(['"data"', '42', '1e3', '-0', 'null', 'true', '[]', `[${purchaseText()}]`, '{}'])(
      'refuses the top-level JSON value %s with 400 invalid_document',
      async (body) => {
        await persistsNothing(async () => {
          for (const path of [
            '/ticket_options',
            '/purchases',
            `/ticket_options/${optionId}/purchases`,
          ]) {
            const answer = await post(path, body);
            expect(answer.status).toBe(400);
            expect(codes(answer, 400)[0]).toBe('invalid_document');
          }
        });
      },
    );

    it('refuses bytes that are not UTF-8 (sent raw through node:http) with invalid_document', async () => {
      const [head, tail] = optionText({ name: 'NAME' }).split('NAME');
      await persistsNothing(async () => {
        for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0x80]]) {
          const body = Buffer.concat([Buffer.from(head), Buffer.from(bad), Buffer.from(tail)]);
          const answer = fromRaw(
            await sendNodeHttp(port, {
              method: 'POST',
              path: '/ticket_options',
              headers: { 'content-type': JSONAPI },
              body,
            }),
          );
          expect(codes(answer, 400)).toEqual(['invalid_document']);
          expect(answer.document.errors[0].detail).toBe('The request body is not valid UTF-8.');
        }
      });
    });

    it('reads numbers by value and duplicate members as the last one, as JSON.parse does', async () => {
      const option = await post(
        '/ticket_options',
        '{"data":{"type":"ticket_options","attributes":{"name":"x","name":"Exp","allocation":-1,"allocation":1e3}}}',
      );
      expect(option.status).toBe(201);
      expect(option.document.data.attributes).toMatchObject({ name: 'Exp', allocation: 1000 });
      const purchase = await post(
        '/purchases',
        purchaseText(1).replace('"quantity":1', '"quantity":2.0E0'),
      );
      expect(purchase.status).toBe(201);
      expect(purchase.document.data.attributes.quantity).toBe(2);
    });
  });

  describe('text the database cannot store (regression: NUL was a 503 "database unavailable")', () => {
    it.each([
      ['NUL in name', '{"name":"a\\u0000b","allocation":1}', '/data/attributes/name'],
      [
        'NUL in description',
        '{"name":"n","description":"\\u0000","allocation":1}',
        '/data/attributes/description',
      ],
      ['a lone high surrogate', '{"name":"a\\ud800","allocation":1}', '/data/attributes/name'],
      ['a lone low surrogate', '{"name":"\\udfffa","allocation":1}', '/data/attributes/name'],
    ])(
      'refuses %s with 400 invalid_attribute, with or without Idempotency-Key',
      async (_case, attributes, pointer) => {
        const body = `{"data":{"type":"ticket_options","attributes":${attributes}}}`;
        await persistsNothing(async () => {
          const variants: Array<Record<string, string>> = [
            { 'content-type': JSONAPI },
            { 'content-type': JSONAPI, 'idempotency-key': `text-${randomUUID()}` },
          ];
          for (const headers of variants) {
            const answer = await post('/ticket_options', body, headers);
            expect(codes(answer, 400)).toEqual(['invalid_attribute']);
            expect(answer.document.errors[0].source).toEqual({ pointer });
          }
        });
      },
    );

    it('stores surrogate pairs and reads them back unchanged', async () => {
      const created = await post(
        '/ticket_options',
        '{"data":{"type":"ticket_options","attributes":{"name":"\\ud83d\\ude00 é","description":"😀","allocation":1}}}',
      );
      expect(created.status).toBe(201);
      const read = await send('GET', created.document.data.links.self, undefined, {});
      expect(read.document.data.attributes).toEqual({
        name: '😀 é',
        description: '😀',
        allocation: 1,
      });
    });
  });

  describe('paths', () => {
    it.each([
      ['a path that does not decode', '/ticket_options/%zz'],
      ['invalid UTF-8, percent-encoded', '/purchases/%ff%fe'],
      ['an id longer than the router takes', `/ticket_options/${'a'.repeat(5000)}`],
      ['a nested route with a bad id', '/ticket_options/%c0%80/purchases'],
    ])(
      'answers %s with a JSON:API 404 with all the usual headers (regression: `; charset=utf-8`, no nosniff)',
      async (_case, path) => {
        for (const method of ['GET', 'POST']) {
          const answer = await send(method, path, method === 'POST' ? purchaseText() : undefined);
          expect(codes(answer, 404)).toEqual(['not_found']);
          expect(answer.headers.get('x-request-id')).toBeTruthy();
        }
      },
    );

    it('answers other methods on every route with a JSON:API 404', async () => {
      for (const path of [
        '/ticket_options',
        `/ticket_options/${optionId}`,
        '/purchases',
        `/purchases/${randomUUID()}`,
        `/ticket_options/${optionId}/purchases`,
      ]) {
        for (const method of ['PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
          expect(codes(await send(method, path, purchaseText()), 404)).toEqual(['not_found']);
        }
      }
    });
  });

  describe('headers fetch cannot send', () => {
    it('refuses an Idempotency-Key with bytes 0x80–0xff (latin1, through node:http) with 400 invalid_header', async () => {
      await persistsNothing(async () => {
        const answer = fromRaw(
          await sendNodeHttp(port, {
            method: 'POST',
            path: '/purchases',
            headers: { 'content-type': JSONAPI, 'idempotency-key': 'cl\u00e9-\u00ff' },
            body: purchaseText(),
          }),
        );
        expect(codes(answer, 400)).toEqual(['invalid_header']);
        expect(answer.document.errors[0].source).toEqual({ parameter: 'Idempotency-Key' });
      });
    });

    // Node's HTTP parser refuses these before Fastify routes them; app.factory.ts's
    // clientErrorHandler answers with a JSON:API 400 and closes the connection.
    it.each([
      [
        'a control character in a header',
        'POST /purchases HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\x01b\r\nContent-Length: 2\r\n\r\n{}',
        'invalid_header',
      ],
      [
        'raw bytes 0xff in the request line',
        'GET /ticket_options/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n',
        'invalid_document',
      ],
      [
        'headers over 16 KB',
        `GET /ticket_options/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
        'invalid_header',
      ],
      [
        'not HTTP at all',
        '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n',
        'invalid_document',
      ],
    ])(
      'refuses %s with a 4xx, closes, leaks nothing, and keeps serving',
      async (_case, request, code) => {
        const response = await sendRawHttp(port, Buffer.from(request, 'latin1'));
        expect(response.status).toBe(400);
        expect(response.headers['content-type']).toBe(JSONAPI);
        expect(response.headers['x-content-type-options']).toBe('nosniff');
        const document = JSON.parse(response.text) as { errors: Array<Record<string, unknown>> };
        // A header at fault is invalid_header; a request that is not HTTP is invalid_document.
        expect(document.errors).toEqual([expect.objectContaining({ status: '400', code })]);
        expect(response.text).not.toMatch(/\bat \/|node_modules|Error:|stack/);
        expect((await send('GET', `/ticket_options/${optionId}`, undefined, {})).status).toBe(200);
      },
    );
  });

  describe('headers of every answer', () => {
    it('sends nosniff and no X-Powered-By or Server on every route and every outcome', async () => {
      const requests: Array<[string, string, (string | undefined)?, Record<string, string>?]> = [
        ['POST', '/ticket_options', optionText({})],
        ['GET', `/ticket_options/${optionId}`],
        ['POST', '/purchases', purchaseText()],
        ['POST', '/purchases', purchaseText(10_000)], // invalid_purchase_quantity
        ['POST', '/purchases', '{'],
        ['POST', '/purchases', purchaseText(), { 'content-type': 'text/plain' }],
        ['GET', `/purchases/${randomUUID()}`],
        ['GET', `/ticket_options/${optionId}`, undefined, { accept: `${JSONAPI}; charset=utf-8` }],
        ['GET', '/nowhere'],
        ['GET', '/ticket_options/%zz'],
        ['POST', '/ticket_options', optionText({ description: 'x'.repeat(2 * MiB) })],
      ];
      for (const [method, path, body, headers] of requests) {
        const answer = await send(method, path, body, headers ?? { 'content-type': JSONAPI });
        expect(answer.headers.get('x-request-id')).toBeTruthy();
        expect(answer.headers.has('server')).toBe(false);
      }
      const fetchWhole = async (path: string) => {
        const response = await fetch(`${t.baseUrl}${path}`);
        await response.arrayBuffer();
        return response;
      };
      for (const path of ['/health/live', '/health/ready', '/metrics', '/docs-json', '/docs']) {
        // Readiness pings with a fixed 1 s budget, which a busy machine can miss once: ask again.
        const response = await waitFor(
          `200 from ${path}`,
          () => fetchWhole(path),
          (r) => r.status === 200 || path !== '/health/ready',
        );
        expect(response.status).toBe(200);
        expect(response.headers.get('x-content-type-options')).toBe('nosniff');
        expect(response.headers.has('x-powered-by')).toBe(false);
        expect(response.headers.has('server')).toBe(false);
      }
    });
  });
});
