/**
 * The machine's HTTP ceiling for the purchase route: Fastify parses the JSON:API body and answers
 * a canned 201, with no database and no allocation logic. No purchase server here can beat it.
 */
import { app, listen, MEDIA_TYPE, purchaseDocument } from './common';

const ID = '00000000-0000-4000-8000-000000000001';
const user = { userId: '00000000-0000-4000-8000-000000000003', quantity: 1 };
// Serialised once: the ceiling should not pay for building the document either.
const body = JSON.stringify(purchaseDocument(ID, '00000000-0000-4000-8000-000000000002', user));

app.post('/ticket_options/:id/purchases', (_request, reply) =>
  reply
    .code(201)
    .header('content-type', MEDIA_TYPE)
    .header('location', `/purchases/${ID}`)
    .send(body),
);
listen();
