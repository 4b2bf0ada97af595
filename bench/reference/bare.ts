/**
 * The service's own design on bare Fastify + pg: a queue per option; while one commit of an option
 * is in flight its next requests wait and go together in the next one. A commit is ONE guarded
 * statement (the capacity-checked UPDATE and the INSERT of the batch's rows), and every request of
 * the batch is answered after it. The architecture's ceiling without NestJS, MikroORM, validation,
 * idempotency or metrics: the difference to the service is what they cost.
 */
import { randomUUID } from 'node:crypto';
import { listen, Outcome, pool, PurchaseInput, serveReads, servePurchases } from './common';

/** Bounded like the service's batches: one statement never carries unbounded arrays. */
const [MAX_BATCH, MAX_ATTEMPTS] = [1000, 5];
const COMMIT = {
  name: 'bare-commit',
  text: `WITH bump AS (
           UPDATE ticket_options SET purchased = purchased + $2, version = version + 1, updated_at = now()
            WHERE id = $1 AND purchased + $2 <= allocation RETURNING id)
         INSERT INTO purchases (id, ticket_option_id, user_id, quantity)
         SELECT p.id, bump.id, p.user_id, p.quantity
           FROM bump, unnest($3::uuid[], $4::uuid[], $5::int[]) AS p(id, user_id, quantity)`,
};
const REMAINING = {
  name: 'bare-remaining',
  text: 'SELECT allocation - purchased AS left FROM ticket_options WHERE id = $1',
};

interface Waiter {
  id: string;
  input: PurchaseInput;
  resolve(outcome: Outcome): void;
  reject(error: Error): void;
}

const queues = new Map<string, Waiter[]>();
const committing = new Set<string>();

const purchase = (optionId: string, input: PurchaseInput) =>
  new Promise<Outcome>((resolve, reject) => {
    const queue = queues.get(optionId) ?? queues.set(optionId, []).get(optionId)!;
    queue.push({ id: randomUUID(), input, resolve, reject });
    if (!committing.has(optionId)) void drain(optionId);
  });

/** One commit at a time per option, each taking what was queued meanwhile. */
async function drain(optionId: string): Promise<void> {
  committing.add(optionId);
  for (let queue = queues.get(optionId); queue?.length; queue = queues.get(optionId)) {
    const batch = queue.splice(0, MAX_BATCH);
    if (queue.length === 0) queues.delete(optionId);
    await commit(optionId, batch).catch((error: Error) => batch.forEach((w) => w.reject(error)));
  }
  committing.delete(optionId);
}

async function insert(optionId: string, batch: Waiter[]): Promise<boolean> {
  const total = batch.reduce((sum, w) => sum + w.input.quantity, 0);
  const columns = [
    batch.map((w) => w.id),
    batch.map((w) => w.input.userId),
    batch.map((w) => w.input.quantity),
  ];
  return (
    (await pool.query({ ...COMMIT, values: [optionId, total, ...columns] })).rowCount ===
    batch.length
  );
}

/** When the guard refuses the batch: keep, in arrival order, what the remainder still covers. */
async function commit(optionId: string, batch: Waiter[]): Promise<void> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS && batch.length > 0; attempt++) {
    if (await insert(optionId, batch))
      return batch.forEach((w) => w.resolve({ kind: 'created', id: w.id }));
    const row = (await pool.query<{ left: number }>({ ...REMAINING, values: [optionId] })).rows[0];
    if (!row) return batch.forEach((w) => w.resolve({ kind: 'not_found' }));
    let left = row.left;
    batch = batch.filter((w) => {
      const fits = w.input.quantity <= left;
      if (fits) left -= w.input.quantity;
      else w.resolve({ kind: 'sold_out' });
      return fits;
    });
  }
  batch.forEach((w) => w.reject(new Error(`the guard refused ${MAX_ATTEMPTS} times`)));
}

servePurchases(purchase);
serveReads();
listen();
