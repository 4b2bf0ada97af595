/**
 * The reference the service is measured against: what a typical implementation does, one
 * transaction per purchase holding the option's row lock (SELECT ... FOR UPDATE) across three
 * round trips. Same database, same tables, same pool size (10) and same wire format as the service,
 * so the difference in the bench is the allocation design, not the plumbing.
 *
 * Env: PORT (required), HOST (127.0.0.1), DATABASE_URL (required).
 */
import { randomUUID } from 'node:crypto';
import Fastify, { FastifyReply } from 'fastify';
import { Pool, PoolClient, QueryConfig } from 'pg';

const MEDIA_TYPE = 'application/vnd.api+json';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// Named statements are prepared once per connection, as the service's hot path is: a fair fight.
const LOCK_OPTION: Omit<QueryConfig, 'values'> = {
  name: 'row-lock-select',
  text: 'SELECT allocation, purchased FROM ticket_options WHERE id = $1 FOR UPDATE',
};
const BUMP_OPTION: Omit<QueryConfig, 'values'> = {
  name: 'row-lock-update',
  text: `UPDATE ticket_options
            SET purchased = purchased + $2, version = version + 1, updated_at = now()
          WHERE id = $1`,
};
const INSERT_PURCHASE: Omit<QueryConfig, 'values'> = {
  name: 'row-lock-insert',
  text: 'INSERT INTO purchases (id, ticket_option_id, user_id, quantity) VALUES ($1, $2, $3, $4)',
};
const READ_OPTION: Omit<QueryConfig, 'values'> = {
  name: 'row-lock-read',
  text: 'SELECT id, name, description, allocation, purchased FROM ticket_options WHERE id = $1',
};

interface PurchaseInput {
  userId: string;
  quantity: number;
}

type Outcome = { kind: 'created'; id: string } | { kind: 'sold_out' } | { kind: 'not_found' };

const port = Number(process.env.PORT);
const databaseUrl = process.env.DATABASE_URL;
if (!Number.isInteger(port) || port <= 0 || !databaseUrl) {
  console.error('row-lock reference: PORT and DATABASE_URL are required');
  process.exit(1);
}

const pool = new Pool({ connectionString: databaseUrl, max: 10 });
pool.on('error', (error) => console.error('row-lock reference: idle client error', error.message));

const app = Fastify({ logger: false });
app.addContentTypeParser(
  MEDIA_TYPE,
  { parseAs: 'string' },
  app.getDefaultJsonParser('error', 'error'),
);

function send(reply: FastifyReply, status: number, document: unknown): FastifyReply {
  return reply.code(status).header('content-type', MEDIA_TYPE).send(JSON.stringify(document));
}

function error(reply: FastifyReply, status: number, code: string, title: string, pointer?: string) {
  return send(reply, status, {
    errors: [
      {
        status: String(status),
        code,
        title,
        detail: title,
        ...(pointer ? { source: { pointer } } : {}),
      },
    ],
  });
}

/** Just enough validation to refuse garbage; the service's full JSON:API checks are not the point. */
function parsePurchase(body: unknown): PurchaseInput | null {
  const data = (body as { data?: Record<string, unknown> } | null)?.data;
  const quantity = (data?.attributes as { quantity?: unknown } | undefined)?.quantity;
  const userId = (data?.relationships as { user?: { data?: { id?: unknown } } } | undefined)?.user
    ?.data?.id;
  if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1) return null;
  if (typeof userId !== 'string' || !UUID.test(userId)) return null;
  return { userId, quantity };
}

async function purchase(optionId: string, input: PurchaseInput): Promise<Outcome> {
  const client: PoolClient = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const locked = await client.query<{ allocation: number; purchased: number }>({
      ...LOCK_OPTION,
      values: [optionId],
    });
    const row = locked.rows[0];
    if (!row) {
      await client.query('ROLLBACK');
      return { kind: 'not_found' };
    }
    if (row.allocation - row.purchased < input.quantity) {
      await client.query('ROLLBACK');
      return { kind: 'sold_out' };
    }
    const id = randomUUID();
    await client.query({ ...BUMP_OPTION, values: [optionId, input.quantity] });
    await client.query({
      ...INSERT_PURCHASE,
      values: [id, optionId, input.userId, input.quantity],
    });
    await client.query('COMMIT');
    return { kind: 'created', id };
  } catch (failure) {
    broken = failure instanceof Error ? failure : new Error(String(failure));
    await client.query('ROLLBACK').catch(() => undefined);
    throw broken;
  } finally {
    // A connection that failed mid-transaction is discarded rather than reused.
    client.release(broken);
  }
}

app.post<{ Params: { id: string } }>('/ticket_options/:id/purchases', async (request, reply) => {
  const optionId = request.params.id;
  if (!UUID.test(optionId)) return error(reply, 404, 'not_found', 'Not found');
  const input = parsePurchase(request.body);
  if (!input) return error(reply, 400, 'invalid_document', 'Invalid purchase document');
  let outcome: Outcome;
  try {
    outcome = await purchase(optionId, input);
  } catch (failure) {
    console.error('row-lock reference: purchase failed', (failure as Error).message);
    return error(reply, 500, 'internal_error', 'Internal error');
  }
  if (outcome.kind === 'not_found') return error(reply, 404, 'not_found', 'Not found');
  if (outcome.kind === 'sold_out') {
    return error(
      reply,
      400,
      'invalid_purchase_quantity',
      'Unable to purchase provided quantity',
      '/data/attributes/quantity',
    );
  }
  void reply.header('location', `/purchases/${outcome.id}`);
  return send(reply, 201, {
    data: {
      type: 'purchases',
      id: outcome.id,
      attributes: { quantity: input.quantity },
      relationships: {
        ticket_option: { data: { type: 'ticket_options', id: optionId } },
        user: { data: { type: 'users', id: input.userId } },
      },
      links: { self: `/purchases/${outcome.id}` },
    },
  });
});

app.get<{ Params: { id: string } }>('/ticket_options/:id', async (request, reply) => {
  const optionId = request.params.id;
  if (!UUID.test(optionId)) return error(reply, 404, 'not_found', 'Not found');
  const result = await pool.query<{
    id: string;
    name: string;
    description: string | null;
    allocation: number;
    purchased: number;
  }>({ ...READ_OPTION, values: [optionId] });
  const row = result.rows[0];
  if (!row) return error(reply, 404, 'not_found', 'Not found');
  return send(reply, 200, {
    data: {
      type: 'ticket_options',
      id: row.id,
      attributes: { name: row.name, description: row.description, allocation: row.allocation },
      meta: { remaining: row.allocation - row.purchased },
      links: { self: `/ticket_options/${row.id}` },
    },
  });
});

async function shutdown(): Promise<void> {
  let code = 0;
  try {
    await app.close();
    await pool.end();
  } catch (failure) {
    console.error('row-lock reference: shutdown failed', failure);
    code = 1;
  }
  process.exit(code);
}
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());

app.listen({ port, host: process.env.HOST ?? '127.0.0.1' }).catch((failure: unknown) => {
  console.error('row-lock reference: failed to start', failure);
  process.exit(1);
});
