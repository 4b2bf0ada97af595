/**
 * What every reference server shares: bare Fastify, the service's JSON:API wire format for
 * `POST /ticket_options/:id/purchases` and `GET /ticket_options/:id`, a pg pool of the service's
 * size (10), a clean shutdown on SIGTERM. Each reference adds only its allocation design.
 * Env: PORT (required), HOST (127.0.0.1), DATABASE_URL (the ones with a database).
 */
import Fastify, { FastifyReply } from 'fastify';
import { Pool, PoolClient } from 'pg';

export const MEDIA_TYPE = 'application/vnd.api+json';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type PurchaseInput = { userId: string; quantity: number };

export type Outcome =
  { kind: 'created'; id: string } | { kind: 'sold_out' } | { kind: 'not_found' };

export const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
pool.on('error', (error) => console.error('reference: idle client error', error.message));

export const app = Fastify({ logger: false });
const json = app.getDefaultJsonParser('error', 'error');
app.addContentTypeParser(MEDIA_TYPE, { parseAs: 'string' }, json);

/** `work` between BEGIN and COMMIT (ROLLBACK unless it created); a failed connection is dropped. */
export async function transaction(work: (client: PoolClient) => Promise<Outcome>) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const outcome = await work(client);
    await client.query(outcome.kind === 'created' ? 'COMMIT' : 'ROLLBACK');
    client.release();
    return outcome;
  } catch (failure) {
    client.release(failure as Error);
    throw failure;
  }
}

const send = (reply: FastifyReply, status: number, document: unknown) =>
  reply.code(status).header('content-type', MEDIA_TYPE).send(JSON.stringify(document));

function fail(reply: FastifyReply, status: number, code: string, title: string, pointer?: string) {
  const error = { status: String(status), code, title, detail: title };
  return send(reply, status, { errors: [pointer ? { ...error, source: { pointer } } : error] });
}

const notFound = (reply: FastifyReply) => fail(reply, 404, 'not_found', 'Not found');

/** Just enough validation to refuse garbage; the service's full JSON:API checks are not the point. */
function parsePurchase(body: unknown): PurchaseInput | null {
  type Data = {
    attributes?: { quantity?: unknown };
    relationships?: { user?: { data?: { id?: unknown } } };
  };
  const data = (body as { data?: Data } | null)?.data;
  const [quantity, userId] = [data?.attributes?.quantity, data?.relationships?.user?.data?.id];
  if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1) return null;
  return typeof userId === 'string' && UUID.test(userId) ? { userId, quantity } : null;
}

export const purchaseDocument = (id: string, optionId: string, input: PurchaseInput) => ({
  data: {
    type: 'purchases',
    id,
    attributes: { quantity: input.quantity },
    relationships: {
      ticket_option: { data: { type: 'ticket_options', id: optionId } },
      user: { data: { type: 'users', id: input.userId } },
    },
    links: { self: `/purchases/${id}` },
  },
});

type Purchase = (optionId: string, input: PurchaseInput) => Promise<Outcome>;

/** The nested purchase route, answered once the design has decided (and committed). */
export function servePurchases(purchase: Purchase): void {
  app.post<{ Params: { id: string } }>('/ticket_options/:id/purchases', async (request, reply) => {
    const optionId = request.params.id;
    const input = parsePurchase(request.body);
    if (!UUID.test(optionId)) return notFound(reply);
    if (!input) return fail(reply, 400, 'invalid_document', 'Invalid purchase document');
    const outcome = await purchase(optionId, input).catch((failure: Error) => {
      console.error('purchase failed:', failure.message);
      return null;
    });
    if (!outcome) return fail(reply, 500, 'internal_error', 'Internal error');
    if (outcome.kind === 'not_found') return notFound(reply);
    if (outcome.kind === 'sold_out') {
      const title = 'Unable to purchase provided quantity';
      return fail(reply, 400, 'invalid_purchase_quantity', title, '/data/attributes/quantity');
    }
    void reply.header('location', `/purchases/${outcome.id}`);
    return send(reply, 201, purchaseDocument(outcome.id, optionId, input));
  });
}

const READ = { name: 'reference-read', text: 'SELECT * FROM ticket_options WHERE id = $1' };
export type OptionRow = { id: string; name: string; description: string | null } & Counts;
type Counts = { allocation: number; purchased: number };

/** `GET /ticket_options/:id`; `meta.remaining` from `purchased`, or from the design's counters. */
export function serveReads(
  remaining = (o: OptionRow) => Promise.resolve(o.allocation - o.purchased),
) {
  app.get<{ Params: { id: string } }>('/ticket_options/:id', async (request, reply) => {
    if (!UUID.test(request.params.id)) return notFound(reply);
    const row = (await pool.query<OptionRow>({ ...READ, values: [request.params.id] })).rows[0];
    if (!row) return notFound(reply);
    const { id, name, description, allocation } = row;
    const data = { type: 'ticket_options', id, attributes: { name, description, allocation } };
    const links = { self: `/ticket_options/${id}` };
    const meta = { remaining: await remaining(row) };
    return send(reply, 200, { data: { ...data, links }, meta });
  });
}

/** Listens on PORT; SIGTERM or SIGINT closes the app, then `close`, then the pool, and exits. */
export function listen(close: () => Promise<unknown> = () => Promise.resolve()): void {
  const shutdown = async (): Promise<void> => {
    try {
      await app.close();
      await close();
      await pool.end();
      process.exit(0);
    } catch (failure) {
      console.error('shutdown failed:', failure);
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
  const address = { port: Number(process.env.PORT), host: process.env.HOST ?? '127.0.0.1' };
  app.listen(address).catch((failure: unknown) => {
    console.error('failed to start:', failure);
    process.exit(1);
  });
}
