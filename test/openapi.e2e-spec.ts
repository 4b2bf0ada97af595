import SwaggerParser from '@apidevtools/swagger-parser';
import { MikroORM } from '@mikro-orm/postgresql';
import Ajv2020, { ValidateFunction } from 'ajv/dist/2020';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { TicketOptionActorRegistry } from '../src/allocation/ticket-option-actor.registry';
import { requestFingerprint } from '../src/idempotency/idempotency-key';
import {
  ApiResponse,
  confirmationBody,
  JSONAPI,
  JsonApiClient,
  purchaseBody,
  reservationBody,
  ticketOptionBody,
} from './support/jsonapi-client';
import { startTestApp, TestApp } from './support/test-app';
import { waitFor } from './support/waiting';

/**
 * The OpenAPI document served at /docs-json is checked against real responses: every case below
 * sends one request to the running app, and its response must have a status documented for that
 * route, the exact JSON:API media type, a body valid against the documented schema, and every
 * documented required header. Adding a case is one entry in CASES.
 */

const BODY_LIMIT_BYTES = 4096;

type Route =
  | 'POST /ticket_options'
  | 'GET /ticket_options/{id}'
  | 'POST /purchases'
  | 'POST /ticket_options/{id}/purchases'
  | 'GET /purchases/{id}'
  | 'DELETE /purchases/{id}'
  | 'POST /reservations'
  | 'POST /ticket_options/{id}/reservations'
  | 'GET /reservations/{id}'
  | 'DELETE /reservations/{id}';

interface Scene {
  api: JsonApiClient;
  /** A second instance on the same database, drained (purchases: 503) and without its pool (500). */
  degraded: JsonApiClient;
  /** An instance whose database refuses connections (503). */
  unreachable: JsonApiClient;
  t: TestApp;
  optionId: string;
  soldOutId: string;
  purchaseId: string;
  /** A reservation confirmed into `confirmedPurchaseId`. */
  confirmedId: string;
  confirmedPurchaseId: string;
}

interface Case {
  route: Route;
  status: number;
  name: string;
  /** Sends the request (and whatever prepares it), checks what the document cannot say. */
  send: (s: Scene) => Promise<ApiResponse>;
}

const c = (route: Route, status: number, name: string, send: Case['send']): Case => ({
  route,
  status,
  name,
  send,
});

const option = (attributes: Record<string, unknown> = { name: 'OpenAPI', allocation: 10 }) =>
  ticketOptionBody(attributes) as { data: object };
const post = (s: Scene, path: string, body: unknown, headers?: Record<string, string>) =>
  s.api.post(path, body, headers);
const postRaw = (s: Scene, path: string, rawBody: string, contentType: string) =>
  s.api.request('POST', path, { rawBody, headers: { 'content-type': contentType } });
const nested = (s: Scene) => `/ticket_options/${s.optionId}/purchases`;
const NOT_ACCEPTABLE = { accept: `${JSONAPI}; charset=utf-8` };
const TOO_LARGE = option({ name: 'n', allocation: 1, description: 'x'.repeat(BODY_LIMIT_BYTES) });
const MIXED_STATUSES = {
  data: { type: 'orders', id: randomUUID(), attributes: { name: '', allocation: 1 } },
};
const withClientId = (body: { data: object }) => ({ data: { ...body.data, id: randomUUID() } });
const withType = (body: { data: object }, type: string) => ({ data: { ...body.data, type } });
const withoutUser = (body: ReturnType<typeof purchaseBody>) => {
  delete body.data.relationships.user;
  return body;
};
const key = () => `key-${randomUUID()}`;
const holdsOf = (s: Scene) => `/ticket_options/${s.optionId}/reservations`;
const hold = (optionId: string | undefined, quantity: unknown, ttlSeconds?: unknown) =>
  reservationBody(optionId, quantity, { ttlSeconds });

/** A new held reservation of the scene's option (quantity 1 unless told), by its id. */
async function held(s: Scene, ttlSeconds?: number): Promise<string> {
  const response = await post(s, '/reservations', hold(s.optionId, 1, ttlSeconds));
  expect(response.status).toBe(201);
  return response.body.data.id as string;
}

/** A reservation whose `expires_at` has passed by the database clock (swept or not). */
async function expired(s: Scene): Promise<string> {
  const id = await held(s, 1);
  await waitFor(
    'the hold to pass its expires_at',
    async () =>
      (
        await s.t.sql.query('SELECT now() >= expires_at AS due FROM reservations WHERE id = $1', [
          id,
        ])
      ).rows[0].due as boolean,
    (due) => due,
  );
  return id;
}

async function released(s: Scene): Promise<string> {
  const id = await held(s);
  expect((await s.api.delete(`/reservations/${id}`)).status).toBe(204);
  return id;
}

/** A purchase just bought from the scene's option, by its id. */
async function bought(s: Scene): Promise<string> {
  const response = await post(s, '/purchases', purchaseBody(s.optionId, 1));
  expect(response.status).toBe(201);
  return response.body.data.id as string;
}

/** Checks the error code the document cannot tell apart from the others of its status. */
async function withCode(response: Promise<ApiResponse>, code: string): Promise<ApiResponse> {
  const answer = await response;
  expect(answer.body?.errors?.map((e: { code: string }) => e.code)).toEqual([code]);
  return answer;
}

/** A confirmation of a new held reservation, to `path` (with `extra` members), as sent. */
async function confirmNew(
  s: Scene,
  path: string,
  extra: Parameters<typeof confirmationBody>[1] = {},
) {
  return post(s, path, confirmationBody(await held(s), extra));
}

/** Sends the same request twice with one Idempotency-Key; answers the second response. */
async function twice(s: Scene, path: string, body: unknown, secondBody = body) {
  const idempotencyKey = key();
  await post(s, path, body, { 'idempotency-key': idempotencyKey });
  return post(s, path, secondBody, { 'idempotency-key': idempotencyKey });
}

/** Claims a key in the database as a request still being processed would. */
async function inFlight(s: Scene, path: string, body: unknown) {
  const idempotencyKey = key();
  await s.t.sql.query(
    'INSERT INTO idempotency_keys (key, fingerprint, claim) VALUES ($1, $2, $3)',
    [idempotencyKey, requestFingerprint('POST', path, body), randomUUID()],
  );
  return post(s, path, body, { 'idempotency-key': idempotencyKey });
}

/** Sends one request twice with one Idempotency-Key: the second answer must be the first, replayed. */
const replay = (
  route: Route,
  status: number,
  name: string,
  request: (s: Scene) => [string, unknown] | Promise<[string, unknown]>,
) =>
  c(route, status, name, async (s) => {
    const [path, body] = await request(s);
    const idempotencyKey = key();
    const first = await post(s, path, body, { 'idempotency-key': idempotencyKey });
    const second = await post(s, path, body, { 'idempotency-key': idempotencyKey });
    expect({ status: second.status, body: second.body }).toEqual({
      status: first.status,
      body: first.body,
    });
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    return second;
  });

const CASES: Case[] = [
  c('POST /ticket_options', 201, 'a valid option', (s) => post(s, '/ticket_options', option())),
  c('POST /ticket_options', 201, 'a body sent as application/json; charset=utf-8', (s) =>
    post(s, '/ticket_options', option(), { 'content-type': 'application/json; charset=utf-8' }),
  ),
  c('POST /ticket_options', 201, 'allocation 0 and a null description', (s) =>
    post(s, '/ticket_options', option({ name: 'n', description: null, allocation: 0 })),
  ),
  c('POST /ticket_options', 400, 'three invalid attributes', (s) =>
    post(s, '/ticket_options', option({ name: ' ', allocation: -1, colour: 'red' })),
  ),
  c('POST /ticket_options', 400, 'malformed JSON', (s) =>
    postRaw(s, '/ticket_options', '{"data": ', JSONAPI),
  ),
  c('POST /ticket_options', 400, 'no data member', (s) => post(s, '/ticket_options', { meta: {} })),
  c('POST /ticket_options', 400, 'problems of mixed statuses', (s) =>
    post(s, '/ticket_options', MIXED_STATUSES),
  ),
  c('POST /ticket_options', 400, 'a malformed Idempotency-Key', (s) =>
    post(s, '/ticket_options', option(), { 'idempotency-key': 'k'.repeat(256) }),
  ),
  c('POST /ticket_options', 403, 'a client-generated id', (s) =>
    post(s, '/ticket_options', withClientId(option())),
  ),
  c('POST /ticket_options', 406, 'Accept with a forbidden parameter', (s) =>
    post(s, '/ticket_options', option(), NOT_ACCEPTABLE),
  ),
  c('POST /ticket_options', 409, 'a wrong data.type', (s) =>
    post(s, '/ticket_options', withType(option(), 'purchases')),
  ),
  c('POST /ticket_options', 409, 'an Idempotency-Key in flight', (s) =>
    inFlight(s, '/ticket_options', option()),
  ),
  c('POST /ticket_options', 413, 'a body over the limit', (s) =>
    post(s, '/ticket_options', TOO_LARGE),
  ),
  c('POST /ticket_options', 415, 'a text/plain body', (s) =>
    postRaw(s, '/ticket_options', JSON.stringify(option()), 'text/plain'),
  ),
  c('POST /ticket_options', 422, 'an Idempotency-Key reused with another body', (s) =>
    twice(s, '/ticket_options', option(), option({ name: 'other', allocation: 1 })),
  ),
  c('POST /ticket_options', 201, 'a sparse fieldset', (s) =>
    post(s, '/ticket_options?fields[ticket_options]=name', option()),
  ),
  c('POST /ticket_options', 400, 'an unknown field in fields[ticket_options]', (s) =>
    post(s, '/ticket_options?fields[ticket_options]=remaining', option()),
  ),
  replay('POST /ticket_options', 201, 'a replay', () => ['/ticket_options', option()]),
  c('POST /ticket_options', 500, 'a database that is gone', (s) =>
    s.degraded.post('/ticket_options', option()),
  ),
  c('POST /ticket_options', 503, 'a database that is unreachable', (s) =>
    s.unreachable.post('/ticket_options', option()),
  ),

  c('GET /ticket_options/{id}', 200, 'an option', (s) =>
    s.api.get(`/ticket_options/${s.optionId}`),
  ),
  c('GET /ticket_options/{id}', 200, 'a sold-out option', (s) =>
    s.api.get(`/ticket_options/${s.soldOutId}`),
  ),
  c('GET /ticket_options/{id}', 200, 'a sparse fieldset', (s) =>
    s.api.get(`/ticket_options/${s.optionId}?fields[ticket_options]=allocation`),
  ),
  c('GET /ticket_options/{id}', 400, 'include on a type without relationships', (s) =>
    s.api.get(`/ticket_options/${s.optionId}?include=purchases`),
  ),
  c('GET /ticket_options/{id}', 404, 'an unknown id', (s) =>
    s.api.get(`/ticket_options/${randomUUID()}`),
  ),
  c('GET /ticket_options/{id}', 404, 'an id that is not a UUID', (s) =>
    s.api.get('/ticket_options/not-a-uuid'),
  ),
  c('GET /ticket_options/{id}', 406, 'Accept with a forbidden parameter', (s) =>
    s.api.get(`/ticket_options/${s.optionId}`, NOT_ACCEPTABLE),
  ),
  c('GET /ticket_options/{id}', 500, 'a database that is gone', (s) =>
    s.degraded.get(`/ticket_options/${s.optionId}`),
  ),
  c('GET /ticket_options/{id}', 503, 'a database that is unreachable', (s) =>
    s.unreachable.get(`/ticket_options/${s.optionId}`),
  ),

  c('POST /purchases', 201, 'a purchase', (s) =>
    post(s, '/purchases', purchaseBody(s.optionId, 2)),
  ),
  c('POST /purchases', 201, 'a sparse fieldset', (s) =>
    post(s, '/purchases?fields[purchases]=quantity', purchaseBody(s.optionId, 1)),
  ),
  c('POST /purchases', 400, 'include, which a POST does not honour', (s) =>
    post(s, '/purchases?include=ticket_option', purchaseBody(s.optionId, 1)),
  ),
  c('POST /purchases', 400, 'more tickets than remain', (s) =>
    post(s, '/purchases', purchaseBody(s.soldOutId, 1)),
  ),
  c('POST /purchases', 400, 'a quantity of 0', (s) =>
    post(s, '/purchases', purchaseBody(s.optionId, 0)),
  ),
  c('POST /purchases', 400, 'a missing user', (s) =>
    post(s, '/purchases', withoutUser(purchaseBody(s.optionId, 1))),
  ),
  c('POST /purchases', 400, 'a body that is a JSON number', (s) =>
    postRaw(s, '/purchases', '42', JSONAPI),
  ),
  c('POST /purchases', 400, 'a malformed Idempotency-Key', (s) =>
    post(s, '/purchases', purchaseBody(s.optionId, 1), { 'idempotency-key': '' }),
  ),
  c('POST /purchases', 403, 'a client-generated id', (s) =>
    post(s, '/purchases', withClientId(purchaseBody(s.optionId, 1))),
  ),
  c('POST /purchases', 404, 'an unknown ticket option', (s) =>
    post(s, '/purchases', purchaseBody(randomUUID(), 1)),
  ),
  c('POST /purchases', 406, 'Accept with a forbidden parameter', (s) =>
    post(s, '/purchases', purchaseBody(s.optionId, 1), NOT_ACCEPTABLE),
  ),
  c('POST /purchases', 409, 'a wrong data.type', (s) =>
    post(s, '/purchases', withType(purchaseBody(s.optionId, 1), 'orders')),
  ),
  c('POST /purchases', 409, 'an Idempotency-Key in flight', (s) =>
    inFlight(s, '/purchases', purchaseBody(s.optionId, 1)),
  ),
  c('POST /purchases', 413, 'a body over the limit', (s) => post(s, '/purchases', TOO_LARGE)),
  c('POST /purchases', 415, 'a form body', (s) =>
    postRaw(s, '/purchases', 'quantity=1', 'application/x-www-form-urlencoded'),
  ),
  c('POST /purchases', 422, 'an Idempotency-Key reused with another body', (s) =>
    twice(s, '/purchases', purchaseBody(s.optionId, 1), purchaseBody(s.optionId, 2)),
  ),
  replay('POST /purchases', 201, 'a replay', (s) => ['/purchases', purchaseBody(s.optionId, 1)]),
  replay('POST /purchases', 400, 'a replayed refusal', (s) => [
    '/purchases',
    purchaseBody(s.soldOutId, 1),
  ]),
  c('POST /purchases', 503, 'an instance that is draining', (s) =>
    s.degraded.post('/purchases', purchaseBody(s.optionId, 1)),
  ),

  c('POST /ticket_options/{id}/purchases', 201, 'a purchase', (s) =>
    post(s, nested(s), purchaseBody(undefined, 1)),
  ),
  c('POST /ticket_options/{id}/purchases', 201, 'a matching ticket_option relationship', (s) =>
    post(s, nested(s), purchaseBody(s.optionId, 1)),
  ),
  c('POST /ticket_options/{id}/purchases', 201, 'a sparse fieldset', (s) =>
    post(s, `${nested(s)}?fields[purchases]=user`, purchaseBody(undefined, 1)),
  ),
  c('POST /ticket_options/{id}/purchases', 400, 'a repeated query parameter', (s) =>
    post(s, `${nested(s)}?fields[purchases]=user&fields[purchases]=`, purchaseBody(undefined, 1)),
  ),
  c('POST /ticket_options/{id}/purchases', 400, 'more tickets than remain', (s) =>
    post(s, `/ticket_options/${s.soldOutId}/purchases`, purchaseBody(undefined, 1)),
  ),
  c('POST /ticket_options/{id}/purchases', 400, 'a fractional quantity and no user', (s) =>
    post(s, nested(s), withoutUser(purchaseBody(undefined, 1.5))),
  ),
  c('POST /ticket_options/{id}/purchases', 403, 'a client-generated id', (s) =>
    post(s, nested(s), withClientId(purchaseBody(undefined, 1))),
  ),
  c('POST /ticket_options/{id}/purchases', 404, 'an unknown ticket option', (s) =>
    post(s, `/ticket_options/${randomUUID()}/purchases`, purchaseBody(undefined, 1)),
  ),
  c('POST /ticket_options/{id}/purchases', 404, 'a path id that is not a UUID', (s) =>
    post(s, '/ticket_options/nope/purchases', purchaseBody(undefined, 1)),
  ),
  c('POST /ticket_options/{id}/purchases', 406, 'Accept with a forbidden parameter', (s) =>
    post(s, nested(s), purchaseBody(undefined, 1), NOT_ACCEPTABLE),
  ),
  c('POST /ticket_options/{id}/purchases', 409, 'a relationship to another option', (s) =>
    post(s, nested(s), purchaseBody(s.soldOutId, 1)),
  ),
  c('POST /ticket_options/{id}/purchases', 409, 'a wrong data.type', (s) =>
    post(s, nested(s), withType(purchaseBody(undefined, 1), 'orders')),
  ),
  c('POST /ticket_options/{id}/purchases', 409, 'an Idempotency-Key in flight', (s) =>
    inFlight(s, nested(s), purchaseBody(undefined, 1)),
  ),
  c('POST /ticket_options/{id}/purchases', 413, 'a body over the limit', (s) =>
    post(s, nested(s), TOO_LARGE),
  ),
  c('POST /ticket_options/{id}/purchases', 415, 'no Content-Type', (s) =>
    s.api.request('POST', nested(s), {
      rawBody: Buffer.from(JSON.stringify(purchaseBody(undefined, 1))),
    }),
  ),
  c(
    'POST /ticket_options/{id}/purchases',
    422,
    'an Idempotency-Key reused with another body',
    (s) => twice(s, nested(s), purchaseBody(undefined, 1), purchaseBody(undefined, 3)),
  ),
  replay('POST /ticket_options/{id}/purchases', 201, 'a replay', (s) => [
    nested(s),
    purchaseBody(undefined, 1),
  ]),
  replay('POST /ticket_options/{id}/purchases', 400, 'a replayed refusal', (s) => [
    `/ticket_options/${s.soldOutId}/purchases`,
    purchaseBody(undefined, 1),
  ]),
  c('POST /ticket_options/{id}/purchases', 503, 'an instance that is draining', (s) =>
    s.degraded.post(nested(s), purchaseBody(undefined, 1)),
  ),

  c('GET /purchases/{id}', 200, 'a purchase', (s) => s.api.get(`/purchases/${s.purchaseId}`)),
  c('GET /purchases/{id}', 200, 'a compound document', (s) =>
    s.api.get(`/purchases/${s.purchaseId}?include=ticket_option`),
  ),
  c('GET /purchases/{id}', 200, 'a sparse compound document', (s) =>
    s.api.get(
      `/purchases/${s.purchaseId}?include=ticket_option&fields[ticket_options]=name&fields[purchases]=`,
    ),
  ),
  c('GET /purchases/{id}', 200, 'an empty include', (s) =>
    s.api.get(`/purchases/${s.purchaseId}?include=`),
  ),
  c('GET /purchases/{id}', 400, 'sort, an unknown include path and a reserved name', (s) =>
    s.api.get(`/purchases/${s.purchaseId}?sort=quantity&include=reservation&foo=1`),
  ),
  c('GET /purchases/{id}', 404, 'an unknown id', (s) => s.api.get(`/purchases/${randomUUID()}`)),
  c('GET /purchases/{id}', 404, 'an id that is not a UUID', (s) => s.api.get('/purchases/x')),
  c('GET /purchases/{id}', 406, 'Accept with a forbidden parameter', (s) =>
    s.api.get(`/purchases/${s.purchaseId}`, NOT_ACCEPTABLE),
  ),
  c('GET /purchases/{id}', 500, 'a database that is gone', (s) =>
    s.degraded.get(`/purchases/${s.purchaseId}`),
  ),
  c('GET /purchases/{id}', 503, 'a database that is unreachable', (s) =>
    s.unreachable.get(`/purchases/${s.purchaseId}`),
  ),
  c('GET /purchases/{id}', 200, 'a confirmed purchase with its reservation included', (s) =>
    s.api.get(`/purchases/${s.confirmedPurchaseId}?include=ticket_option,reservation`),
  ),
  c('GET /purchases/{id}', 200, 'a cancelled purchase', async (s) => {
    const id = await bought(s);
    expect((await s.api.delete(`/purchases/${id}`)).status).toBe(204);
    return s.api.get(`/purchases/${id}`);
  }),

  ...confirmationCases('POST /purchases', () => '/purchases'),
  ...confirmationCases('POST /ticket_options/{id}/purchases', nested),
  c('POST /purchases', 400, 'a confirmation with another quantity', (s) =>
    withCode(confirmNew(s, '/purchases', { attributes: { quantity: 2 } }), 'invalid_attribute'),
  ),
  c('POST /purchases', 404, 'a confirmation of an unknown reservation', (s) =>
    withCode(post(s, '/purchases', confirmationBody(randomUUID())), 'not_found'),
  ),
  c('POST /purchases', 409, 'a confirmation naming another user', (s) =>
    withCode(
      confirmNew(s, '/purchases', {
        relationships: { user: { data: { type: 'users', id: randomUUID() } } },
      }),
      'id_conflict',
    ),
  ),
  c('POST /ticket_options/{id}/purchases', 409, 'a confirmation under another option', (s) =>
    withCode(confirmNew(s, `/ticket_options/${s.soldOutId}/purchases`), 'id_conflict'),
  ),

  c('DELETE /purchases/{id}', 204, 'a cancellation', async (s) =>
    s.api.delete(`/purchases/${await bought(s)}`),
  ),
  c('DELETE /purchases/{id}', 204, 'a purchase cancelled before', async (s) => {
    const id = await bought(s);
    expect((await s.api.delete(`/purchases/${id}`)).status).toBe(204);
    return s.api.delete(`/purchases/${id}`);
  }),
  c('DELETE /purchases/{id}', 204, 'a confirmed purchase', async (s) => {
    const confirmed = await confirmNew(s, '/purchases');
    expect(confirmed.status).toBe(201);
    return s.api.delete(`/purchases/${confirmed.body.data.id}`);
  }),
  c('DELETE /purchases/{id}', 400, 'a query parameter', async (s) =>
    s.api.delete(`/purchases/${await bought(s)}?sort=quantity`),
  ),
  c('DELETE /purchases/{id}', 404, 'an unknown id', (s) =>
    s.api.delete(`/purchases/${randomUUID()}`),
  ),
  c('DELETE /purchases/{id}', 404, 'an id that is not a UUID', (s) => s.api.delete('/purchases/x')),
  c('DELETE /purchases/{id}', 406, 'Accept with a forbidden parameter', async (s) =>
    s.api.delete(`/purchases/${await bought(s)}`, NOT_ACCEPTABLE),
  ),
  c('DELETE /purchases/{id}', 500, 'a database that is gone', (s) =>
    s.degraded.delete(`/purchases/${s.purchaseId}`),
  ),
  c('DELETE /purchases/{id}', 503, 'a database that is unreachable', (s) =>
    s.unreachable.delete(`/purchases/${s.purchaseId}`),
  ),

  ...holdCases(
    'POST /reservations',
    () => '/reservations',
    (s) => s.optionId,
  ),
  ...holdCases('POST /ticket_options/{id}/reservations', holdsOf, () => undefined),
  c('POST /reservations', 400, 'a ttl_seconds of 0', (s) =>
    withCode(post(s, '/reservations', hold(s.optionId, 1, 0)), 'invalid_attribute'),
  ),
  c('POST /reservations', 400, 'a ttl_seconds over the maximum', (s) =>
    withCode(post(s, '/reservations', hold(s.optionId, 1, 3601)), 'invalid_attribute'),
  ),
  c('POST /reservations', 400, 'a missing user', (s) =>
    post(s, '/reservations', withoutUser(hold(s.optionId, 1))),
  ),
  c('POST /reservations', 404, 'an unknown ticket option', (s) =>
    post(s, '/reservations', hold(randomUUID(), 1)),
  ),
  c('POST /ticket_options/{id}/reservations', 201, 'a matching ticket_option relationship', (s) =>
    post(s, holdsOf(s), hold(s.optionId, 1)),
  ),
  c('POST /ticket_options/{id}/reservations', 404, 'an unknown ticket option', (s) =>
    post(s, `/ticket_options/${randomUUID()}/reservations`, hold(undefined, 1)),
  ),
  c('POST /ticket_options/{id}/reservations', 404, 'a path id that is not a UUID', (s) =>
    post(s, '/ticket_options/nope/reservations', hold(undefined, 1)),
  ),
  c('POST /ticket_options/{id}/reservations', 409, 'a relationship to another option', (s) =>
    withCode(post(s, holdsOf(s), hold(s.soldOutId, 1)), 'id_conflict'),
  ),

  c('GET /reservations/{id}', 200, 'a held reservation', async (s) =>
    s.api.get(`/reservations/${await held(s)}`),
  ),
  c('GET /reservations/{id}', 200, 'a confirmed reservation with both included', (s) =>
    s.api.get(`/reservations/${s.confirmedId}?include=purchase,ticket_option`),
  ),
  c('GET /reservations/{id}', 200, 'a released reservation, sparse', async (s) =>
    s.api.get(`/reservations/${await released(s)}?fields[reservations]=status`),
  ),
  c('GET /reservations/{id}', 200, 'an expired reservation', async (s) => {
    const response = await s.api.get(`/reservations/${await expired(s)}`);
    expect(response.body.data.attributes.status).toBe('expired');
    return response;
  }),
  c('GET /reservations/{id}', 400, 'an unknown include path', (s) =>
    s.api.get(`/reservations/${s.confirmedId}?include=user`),
  ),
  c('GET /reservations/{id}', 404, 'an unknown id', (s) =>
    s.api.get(`/reservations/${randomUUID()}`),
  ),
  c('GET /reservations/{id}', 404, 'an id that is not a UUID', (s) => s.api.get('/reservations/x')),
  c('GET /reservations/{id}', 406, 'Accept with a forbidden parameter', (s) =>
    s.api.get(`/reservations/${s.confirmedId}`, NOT_ACCEPTABLE),
  ),
  c('GET /reservations/{id}', 500, 'a database that is gone', (s) =>
    s.degraded.get(`/reservations/${s.confirmedId}`),
  ),
  c('GET /reservations/{id}', 503, 'a database that is unreachable', (s) =>
    s.unreachable.get(`/reservations/${s.confirmedId}`),
  ),

  c('DELETE /reservations/{id}', 204, 'a release', async (s) =>
    s.api.delete(`/reservations/${await held(s)}`),
  ),
  c('DELETE /reservations/{id}', 204, 'a reservation released before', async (s) =>
    s.api.delete(`/reservations/${await released(s)}`),
  ),
  c('DELETE /reservations/{id}', 204, 'an expired reservation', async (s) =>
    s.api.delete(`/reservations/${await expired(s)}`),
  ),
  c('DELETE /reservations/{id}', 400, 'a query parameter', async (s) =>
    s.api.delete(`/reservations/${await held(s)}?foo=1`),
  ),
  c('DELETE /reservations/{id}', 404, 'an unknown id', (s) =>
    s.api.delete(`/reservations/${randomUUID()}`),
  ),
  c('DELETE /reservations/{id}', 404, 'an id that is not a UUID', (s) =>
    s.api.delete('/reservations/x'),
  ),
  c('DELETE /reservations/{id}', 406, 'Accept with a forbidden parameter', async (s) =>
    s.api.delete(`/reservations/${await held(s)}`, NOT_ACCEPTABLE),
  ),
  c('DELETE /reservations/{id}', 409, 'a confirmed reservation', (s) =>
    withCode(s.api.delete(`/reservations/${s.confirmedId}`), 'reservation_confirmed'),
  ),
  c('DELETE /reservations/{id}', 500, 'a database that is gone', (s) =>
    s.degraded.delete(`/reservations/${s.confirmedId}`),
  ),
  c('DELETE /reservations/{id}', 503, 'a database that is unreachable', (s) =>
    s.unreachable.delete(`/reservations/${s.confirmedId}`),
  ),
];

/** The confirmation answers of one purchase route: 201, each 409 reservation_*, the replays. */
function confirmationCases(route: Route, path: (s: Scene) => string): Case[] {
  return [
    c(route, 201, 'a confirmation', (s) => confirmNew(s, path(s))),
    c(route, 201, 'a confirmation repeating the reservation', async (s) => {
      const id = await held(s);
      const read = await s.api.get(`/reservations/${id}`);
      const { ticket_option, user } = read.body.data.relationships;
      return post(
        s,
        path(s),
        confirmationBody(id, {
          attributes: { quantity: 1 },
          relationships: { ticket_option, user },
        }),
      );
    }),
    replay(route, 201, 'a replayed confirmation', async (s) => [
      path(s),
      confirmationBody(await held(s)),
    ]),
    c(route, 409, 'a reservation confirmed before', (s) =>
      withCode(post(s, path(s), confirmationBody(s.confirmedId)), 'reservation_confirmed'),
    ),
    c(route, 409, 'a released reservation', async (s) =>
      withCode(post(s, path(s), confirmationBody(await released(s))), 'reservation_released'),
    ),
    c(route, 409, 'an expired reservation, swept or not', async (s) =>
      withCode(post(s, path(s), confirmationBody(await expired(s))), 'reservation_expired'),
    ),
  ];
}

/** The answers of one hold route; `optionOf` gives the relationship (none on the nested route). */
function holdCases(
  route: Route,
  path: (s: Scene) => string,
  optionOf: (s: Scene) => string | undefined,
): Case[] {
  const soldOut = (s: Scene) =>
    optionOf(s) === undefined ? `/ticket_options/${s.soldOutId}/reservations` : path(s);
  const soldOutBody = (s: Scene) => hold(optionOf(s) && s.soldOutId, 1);
  return [
    c(route, 201, 'a hold', (s) => post(s, path(s), hold(optionOf(s), 2))),
    c(route, 201, 'a hold with its own ttl_seconds', (s) =>
      post(s, path(s), hold(optionOf(s), 1, 60)),
    ),
    c(route, 201, 'a sparse fieldset', (s) =>
      post(s, `${path(s)}?fields[reservations]=expires_at,purchase`, hold(optionOf(s), 1)),
    ),
    replay(route, 201, 'a replay', (s) => [path(s), hold(optionOf(s), 1)]),
    c(route, 400, 'more tickets than remain', (s) =>
      withCode(post(s, soldOut(s), soldOutBody(s)), 'invalid_reservation_quantity'),
    ),
    replay(route, 400, 'a replayed refusal', (s) => [soldOut(s), soldOutBody(s)]),
    c(route, 400, 'a fractional quantity and a ttl that is not an integer', (s) =>
      post(s, path(s), hold(optionOf(s), 1.5, '60')),
    ),
    c(route, 400, 'an include, which a POST does not honour', (s) =>
      post(s, `${path(s)}?include=ticket_option`, hold(optionOf(s), 1)),
    ),
    c(route, 403, 'a client-generated id', (s) =>
      post(s, path(s), withClientId(hold(optionOf(s), 1))),
    ),
    c(route, 406, 'Accept with a forbidden parameter', (s) =>
      post(s, path(s), hold(optionOf(s), 1), NOT_ACCEPTABLE),
    ),
    c(route, 409, 'a wrong data.type', (s) =>
      withCode(post(s, path(s), withType(hold(optionOf(s), 1), 'purchases')), 'type_conflict'),
    ),
    c(route, 409, 'an Idempotency-Key in flight', (s) =>
      inFlight(s, path(s), hold(optionOf(s), 1)),
    ),
    c(route, 413, 'a body over the limit', (s) => post(s, path(s), TOO_LARGE)),
    c(route, 415, 'a text/plain body', (s) =>
      postRaw(s, path(s), JSON.stringify(hold(optionOf(s), 1)), 'text/plain'),
    ),
    c(route, 422, 'an Idempotency-Key reused with another body', (s) =>
      twice(s, path(s), hold(optionOf(s), 1), hold(optionOf(s), 2)),
    ),
    c(route, 503, 'an instance that is draining', (s) =>
      s.degraded.post(path(s), hold(optionOf(s), 1)),
    ),
  ];
}

/** Documented responses no case can provoke deterministically over HTTP, and why. */
const NOT_PROVOKED: Record<string, string> = {
  'POST /purchases 500':
    'no trigger: the actor answers any failure of its store with 503 (other routes show the 500 document)',
  'POST /ticket_options/{id}/purchases 500': 'as POST /purchases 500',
  'POST /reservations 500': 'as POST /purchases 500: a hold goes through the actor too',
  'POST /ticket_options/{id}/reservations 500': 'as POST /purchases 500',
};

describe('the OpenAPI document against real responses', () => {
  let t: TestApp;
  let degraded: TestApp;
  let unreachable: TestApp;
  let scene: Scene;
  /** The document as served (with $refs) and dereferenced (schemas inline, ready for ajv). */
  let served: any;
  let document: any;
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  // RFC 3339 date-time (the times of reservations and cancellations).
  ajv.addFormat(
    'date-time',
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/i,
  );
  const validators = new Map<unknown, ValidateFunction>();
  const validatorOf = (schema: object) => {
    let validate = validators.get(schema);
    if (!validate) {
      validate = ajv.compile(schema);
      validators.set(schema, validate);
    }
    return validate;
  };

  beforeAll(async () => {
    const env = { BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES) };
    t = await startTestApp({ env });
    degraded = await startTestApp({ databaseUrl: t.databaseUrl, env });
    await degraded.app.get(TicketOptionActorRegistry).drain();
    await degraded.app.get(MikroORM).close(true);
    unreachable = await startTestApp({ env });
    await refuseConnections(unreachable.databaseUrl);

    const api = new JsonApiClient(t.baseUrl);
    const optionId = await api.createTicketOption({ name: 'Stalls', allocation: 1_000_000 });
    const soldOutId = await api.createTicketOption({ name: 'Sold out', allocation: 0 });
    const bought = await api.purchase(optionId, 1);
    const reservation = await api.post('/reservations', reservationBody(optionId, 1));
    const confirmed = await api.post('/purchases', confirmationBody(reservation.body.data.id));
    expect(confirmed.status).toBe(201);
    scene = {
      api,
      degraded: new JsonApiClient(degraded.baseUrl),
      unreachable: new JsonApiClient(unreachable.baseUrl),
      t,
      optionId,
      soldOutId,
      purchaseId: bought.body.data.id,
      confirmedId: reservation.body.data.id,
      confirmedPurchaseId: confirmed.body.data.id,
    };

    const response = await api.get('/docs-json');
    expect(response.status).toBe(200);
    served = response.body;
    document = await SwaggerParser.dereference(structuredClone(served));
  });
  afterAll(async () => {
    await degraded?.close();
    await unreachable?.close();
    await t?.close();
  });

  /** Everything in which `response` differs from what the document promises for `route`. */
  function driftFrom(
    route: Route,
    response: { status: number; headers: Headers; body: unknown; text?: string },
  ) {
    const [method, path] = route.split(' ');
    const operation = document.paths[path]?.[method.toLowerCase()];
    if (!operation) return [`${route} is not in the document`];
    const documented = operation.responses[String(response.status)];
    if (!documented) {
      return [
        `${route} answered ${response.status}, documented: ${Object.keys(operation.responses).join(', ')}`,
      ];
    }
    const problems =
      response.status === 204
        ? noContentDrift(documented, response)
        : bodyDrift(documented, response);
    for (const [name, header] of Object.entries<any>(documented.headers ?? {})) {
      const value = response.headers.get(name);
      if (value === null) {
        if (header.required) problems.push(`header ${name} is missing`);
      } else if (!validatorOf(header.schema)(value)) {
        problems.push(`header ${name}: ${JSON.stringify(value)} does not match its schema`);
      }
    }
    return problems;
  }

  /** A JSON:API document answer: the exact media type and a body valid against its schema. */
  function bodyDrift(
    documented: any,
    response: { status: number; headers: Headers; body: unknown },
  ) {
    const problems: string[] = [];
    const contentType = response.headers.get('content-type');
    if (contentType !== JSONAPI) problems.push(`Content-Type is ${contentType}`);
    const schema = documented.content?.[JSONAPI]?.schema;
    if (!schema) {
      problems.push(`no ${JSONAPI} schema documented for ${response.status}`);
    } else {
      const validate = validatorOf(schema);
      if (!validate(response.body)) {
        problems.push(`body: ${ajv.errorsText(validate.errors, { separator: '; ' })}`);
      }
    }
    return problems;
  }

  /** A 204: no content documented and none sent (a Content-Type, if any, is still exact). */
  function noContentDrift(documented: any, response: { headers: Headers; text?: string }) {
    const problems: string[] = [];
    if (documented.content !== undefined) problems.push('a 204 documents a body');
    const contentType = response.headers.get('content-type');
    if (contentType !== null && contentType !== JSONAPI) {
      problems.push(`a 204 has Content-Type ${contentType}`);
    }
    if (response.text !== undefined && response.text !== '') problems.push('a 204 has a body');
    return problems;
  }

  it('is a valid OpenAPI 3.1 document', async () => {
    expect(served.openapi).toBe('3.1.0');
    await expect(SwaggerParser.validate(structuredClone(served))).resolves.toBeDefined();
  });

  it.each(CASES.map((one) => [one.route, one.status, one.name, one] as const))(
    '%s → %i (%s) matches the document',
    async (_route, _status, _name, one) => {
      const response = await one.send(scene);
      expect({ status: response.status, body: response.body }).toMatchObject({
        status: one.status,
      });
      expect(driftFrom(one.route, response)).toEqual([]);
    },
  );

  it('catches a body, status or header that drifts from the document', async () => {
    const created = await post(scene, '/ticket_options', option());
    const route: Route = 'POST /ticket_options';
    expect(driftFrom(route, created)).toEqual([]);
    const body = () => structuredClone(created.body);

    const unknownAttribute = body();
    unknownAttribute.data.attributes.remaining = 1;
    const noMeta = body();
    delete noMeta.meta;
    const stringAllocation = body();
    stringAllocation.data.attributes.allocation = '10';
    const wrongType = body();
    wrongType.data.type = 'ticket_option';
    for (const drifted of [unknownAttribute, noMeta, stringAllocation, wrongType]) {
      expect(driftFrom(route, { ...created, body: drifted })).not.toEqual([]);
    }

    const refused = await post(scene, '/ticket_options', withClientId(option()));
    const retitled = structuredClone(refused.body);
    retitled.errors[0].title = 'Forbidden';
    expect(driftFrom(route, { ...refused, body: retitled })).not.toEqual([]);
    expect(driftFrom(route, { ...created, status: 418 })).not.toEqual([]);
    const headers = new Headers(created.headers);
    headers.delete('location');
    expect(driftFrom(route, { ...created, headers })).not.toEqual([]);
    headers.set('content-type', 'application/json');
    expect(driftFrom(route, { ...refused, headers })).not.toEqual([]);

    // A 204 that grows a body, or another media type, drifts too.
    const noContent = await scene.api.delete(`/purchases/${await bought(scene)}`);
    expect(driftFrom('DELETE /purchases/{id}', noContent)).toEqual([]);
    expect(driftFrom('DELETE /purchases/{id}', { ...noContent, text: '{}' })).not.toEqual([]);
    const jsonHeaders = new Headers({ 'content-type': 'application/json' });
    expect(driftFrom('DELETE /purchases/{id}', { ...noContent, headers: jsonHeaders })).not.toEqual(
      [],
    );
  });

  it('catches a compound document that drifts from the document', async () => {
    const route: Route = 'GET /purchases/{id}';
    const compound = await scene.api.get(`/purchases/${scene.purchaseId}?include=ticket_option`);
    expect(compound.body.included).toHaveLength(1);
    expect(driftFrom(route, compound)).toEqual([]);
    const wrongType = structuredClone(compound.body);
    wrongType.included[0].type = 'purchases';
    const notAnArray = structuredClone(compound.body);
    notAnArray.included = notAnArray.included[0];
    const remainingInAttributes = structuredClone(compound.body);
    remainingInAttributes.included[0].attributes.remaining = 1;
    for (const drifted of [wrongType, notAnArray, remainingInAttributes]) {
      expect(driftFrom(route, { ...compound, body: drifted })).not.toEqual([]);
    }
    // A 201 never holds `included`: the POSTs do not honour include.
    const created = await post(scene, '/purchases', purchaseBody(scene.optionId, 1));
    const withIncluded = { ...created.body, included: compound.body.included };
    expect(driftFrom('POST /purchases', { ...created, body: withIncluded })).not.toEqual([]);
  });

  it('lists the query parameters of every route: include where honoured, fields[TYPE] per type', () => {
    const queryOf = (route: Route) => {
      const [method, path] = route.split(' ');
      return Object.fromEntries(
        (document.paths[path][method.toLowerCase()].parameters ?? [])
          .filter((parameter: any) => parameter.in === 'query')
          .map((parameter: any) => [parameter.name, parameter.schema.items.enum]),
      );
    };
    const optionFields = ['name', 'description', 'allocation'];
    const purchaseFields = [
      'quantity',
      'ticket_option',
      'user',
      'reservation',
      'status',
      'cancelled_at',
    ];
    // What a reservation answer shows (ttl_seconds is a request attribute, never shown).
    const reservationFields = [
      'quantity',
      'ticket_option',
      'user',
      'purchase',
      'status',
      'expires_at',
      'created_at',
    ];
    const sorted = (query: Record<string, string[]>) =>
      Object.fromEntries(Object.entries(query).map(([name, values]) => [name, [...values].sort()]));
    expect(sorted(queryOf('GET /purchases/{id}'))).toEqual(
      sorted({
        include: [
          'ticket_option',
          'reservation',
          'reservation.ticket_option',
          'reservation.purchase',
          'reservation.purchase.ticket_option',
          'reservation.purchase.reservation',
        ],
        'fields[purchases]': purchaseFields,
        'fields[reservations]': reservationFields,
        'fields[ticket_options]': optionFields,
      }),
    );
    expect(sorted(queryOf('GET /reservations/{id}'))).toEqual(
      sorted({
        include: [
          'ticket_option',
          'purchase',
          'purchase.ticket_option',
          'purchase.reservation',
          'purchase.reservation.ticket_option',
          'purchase.reservation.purchase',
        ],
        'fields[purchases]': purchaseFields,
        'fields[reservations]': reservationFields,
        'fields[ticket_options]': optionFields,
      }),
    );
    expect(queryOf('GET /ticket_options/{id}')).toEqual({ 'fields[ticket_options]': optionFields });
    expect(queryOf('POST /ticket_options')).toEqual({ 'fields[ticket_options]': optionFields });
    for (const route of ['POST /purchases', 'POST /ticket_options/{id}/purchases'] as const) {
      expect(sorted(queryOf(route))).toEqual(sorted({ 'fields[purchases]': purchaseFields }));
    }
    for (const route of ['POST /reservations', 'POST /ticket_options/{id}/reservations'] as const) {
      expect(sorted(queryOf(route))).toEqual(sorted({ 'fields[reservations]': reservationFields }));
    }
    for (const route of ['DELETE /purchases/{id}', 'DELETE /reservations/{id}'] as const) {
      expect(queryOf(route)).toEqual({});
    }
  });

  it('provokes every documented JSON:API response, or says why it cannot', () => {
    const documented = jsonApiOperations().flatMap(([route, operation]) =>
      Object.keys(operation.responses).map((status) => `${route} ${status}`),
    );
    const provoked = new Set(CASES.map((one) => `${one.route} ${one.status}`));
    expect(documented.filter((r) => !provoked.has(r) && !(r in NOT_PROVOKED))).toEqual([]);
    // An excuse must go as soon as a case provokes the response, or the response is dropped.
    expect(
      Object.keys(NOT_PROVOKED).filter((r) => provoked.has(r) || !documented.includes(r)),
    ).toEqual([]);
    expect([...provoked].filter((r) => !documented.includes(r))).toEqual([]);
  });

  it('documents every route the application serves, and only those', () => {
    const servedRoutes = routesOf(
      t.app.getHttpAdapter().getInstance().printRoutes({ commonPrefix: false }),
    )
      .filter(({ method, url }) => method !== 'HEAD' && !/^\/docs($|[/-])/.test(url))
      .map(({ method, url }) => `${method} ${url.replace(/:(\w+)/g, '{$1}')}`);
    const documented = Object.entries<any>(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(servedRoutes).toEqual(expect.arrayContaining(CASES.map((one) => one.route)));
    expect([...new Set(servedRoutes)].sort()).toEqual([...documented].sort());
  });

  it('documents every JSON:API route completely: success document, negotiation, failures', () => {
    for (const [route, operation] of jsonApiOperations()) {
      const statuses = Object.keys(operation.responses);
      expect({ route, statuses }).toEqual({
        route,
        statuses: expect.arrayContaining(['406', '500', '503']),
      });
      for (const [status, response] of Object.entries<any>(operation.responses)) {
        // A 204 has no content (RFC 9110 §15.3.5): no body, so no media type; every other
        // answer is a JSON:API document.
        expect({ route, status, types: Object.keys(response.content ?? {}) }).toEqual({
          route,
          status,
          types: status === '204' ? [] : [JSONAPI],
        });
      }
      // Every route answers a document or (DELETE) no content on success.
      expect({ route, success: statuses.filter((s) => s.startsWith('2')) }).toEqual({
        route,
        success: [route.startsWith('DELETE ') ? '204' : route.startsWith('POST ') ? '201' : '200'],
      });
    }
  });

  it('serves Swagger UI and its assets to a browser', async () => {
    const browser = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
    const page = await scene.api.get('/docs', browser);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const assets = [...page.text.matchAll(/(?:href|src)="\.\/([^"]+)"/g)].map((m) => `/${m[1]}`);
    expect(assets).toEqual(
      expect.arrayContaining([
        '/docs/swagger-ui.css',
        '/docs/swagger-ui-bundle.js',
        '/docs/swagger-ui-init.js',
      ]),
    );
    for (const asset of assets) {
      const response = await scene.api.get(asset, browser);
      expect({ asset, status: response.status }).toEqual({ asset, status: 200 });
      expect(response.text.length).toBeGreaterThan(0);
    }
    const json = await scene.api.get('/docs-json', browser);
    expect(json.status).toBe(200);
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
  });

  /** The operations of the JSON:API routes (the operational ones keep their own formats). */
  function jsonApiOperations(): Array<[string, any]> {
    return Object.entries<any>(document.paths)
      .filter(([path]) => !/^\/(health|metrics|docs)(\/|$)/.test(path))
      .flatMap(([path, item]) =>
        Object.entries<any>(item).map(([method, operation]): [string, any] => [
          `${method.toUpperCase()} ${path}`,
          operation,
        ]),
      );
  }
});

/** Makes a test database refuse connections, and ends those it has: as if its server were gone. */
async function refuseConnections(databaseUrl: string): Promise<void> {
  const name = new URL(databaseUrl).pathname.slice(1);
  const admin = new Client({ connectionString: process.env.TEST_PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
      name,
    ]);
  } finally {
    await admin.end();
  }
}

/**
 * Reads Fastify's route tree (`printRoutes({ commonPrefix: false })`): one node per line, four
 * columns of drawing per level, the node's methods in parentheses; a route's URL is the
 * concatenation of the nodes from the root.
 */
function routesOf(tree: string): Array<{ method: string; url: string }> {
  const routes: Array<{ method: string; url: string }> = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1].length / 4;
    stack.length = depth;
    stack.push(match[2]);
    for (const method of (match[3] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter(Boolean)) {
      routes.push({ method, url: stack.join('') });
    }
  }
  return routes;
}
