/**
 * The machine's HTTP ceiling for this route: Fastify parses the JSON:API body and answers a canned
 * 201, with no database and no allocation logic. No purchase server on this machine can beat it.
 *
 * Env: PORT (required), HOST (127.0.0.1).
 */
import Fastify from 'fastify';

const MEDIA_TYPE = 'application/vnd.api+json';
const PURCHASE_ID = '00000000-0000-4000-8000-000000000001';

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('canned reference: PORT is required');
  process.exit(1);
}

// Serialised once: the ceiling should not pay for building the document either.
const body = JSON.stringify({
  data: {
    type: 'purchases',
    id: PURCHASE_ID,
    attributes: { quantity: 1 },
    relationships: {
      ticket_option: {
        data: { type: 'ticket_options', id: '00000000-0000-4000-8000-000000000002' },
      },
      user: { data: { type: 'users', id: '00000000-0000-4000-8000-000000000003' } },
    },
    links: { self: `/purchases/${PURCHASE_ID}` },
  },
});

const app = Fastify({ logger: false });
app.addContentTypeParser(
  MEDIA_TYPE,
  { parseAs: 'string' },
  app.getDefaultJsonParser('error', 'error'),
);

app.post('/ticket_options/:id/purchases', (_request, reply) =>
  reply
    .code(201)
    .header('content-type', MEDIA_TYPE)
    .header('location', `/purchases/${PURCHASE_ID}`)
    .send(body),
);

async function shutdown(): Promise<void> {
  let code = 0;
  try {
    await app.close();
  } catch (failure) {
    console.error('canned reference: shutdown failed', failure);
    code = 1;
  }
  process.exit(code);
}
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());

app.listen({ port, host: process.env.HOST ?? '127.0.0.1' }).catch((failure: unknown) => {
  console.error('canned reference: failed to start', failure);
  process.exit(1);
});
