/**
 * A Redis gate: a Lua script takes the quantity from the option's counter in Redis atomically (or
 * refuses), then a guarded INSERT (the option must exist) writes the purchase to PostgreSQL; when
 * the insert does not happen the counter is given back. `ticket_options.purchased` is not kept
 * (that row would serialise buyers again): sold is allocation - the counter. Counters are
 * `<REDIS_PREFIX><option id>`, loaded on first use from the purchases, deleted at shutdown.
 * Env: REDIS_URL (redis://127.0.0.1:6379), REDIS_PREFIX (bench:), and common.ts's.
 */
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { listen, Outcome, pool, PurchaseInput, serveReads, servePurchases } from './common';

const [NO_COUNTER, NOT_ENOUGH] = [-1, -2];
const TAKE = `local left = redis.call('GET', KEYS[1])
if not left then return ${NO_COUNTER} end
if tonumber(left) < tonumber(ARGV[1]) then return ${NOT_ENOUGH} end
return redis.call('DECRBY', KEYS[1], ARGV[1])`;
const LOAD = `SELECT o.allocation - COALESCE(SUM(p.quantity), 0)::int AS left
  FROM ticket_options o LEFT JOIN purchases p ON p.ticket_option_id = o.id WHERE o.id = $1 GROUP BY o.id`;
const INSERT = {
  name: 'redis-gate-insert',
  text: 'INSERT INTO purchases (id, ticket_option_id, user_id, quantity) SELECT $1, id, $3, $4 FROM ticket_options WHERE id = $2',
};

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  maxRetriesPerRequest: 1,
});
redis.defineCommand('take', { numberOfKeys: 1, lua: TAKE });
const take = (key: string, n: number) =>
  (redis as unknown as { take(k: string, n: number): Promise<number> }).take(key, n);
const prefix = process.env.REDIS_PREFIX ?? 'bench:';
const keys = new Set<string>();

/** The counter starts at what the purchases leave; NX: a racing loader changes nothing. */
async function load(optionId: string, key: string): Promise<boolean> {
  const row = (await pool.query<{ left: number }>(LOAD, [optionId])).rows[0];
  if (row) await redis.set(key, row.left, 'NX').then(() => keys.add(key));
  return row !== undefined;
}

async function purchase(optionId: string, input: PurchaseInput): Promise<Outcome> {
  const key = prefix + optionId;
  let left = await take(key, input.quantity);
  if (left === NO_COUNTER && !(await load(optionId, key))) return { kind: 'not_found' };
  if (left === NO_COUNTER) left = await take(key, input.quantity);
  if (left === NOT_ENOUGH) return { kind: 'sold_out' };
  if (left < 0) throw new Error(`the counter ${key} is gone`);
  const id = randomUUID();
  let inserted = false;
  try {
    const values = [id, optionId, input.userId, input.quantity];
    inserted = (await pool.query({ ...INSERT, values })).rowCount === 1;
  } finally {
    // Compensation: what was taken in Redis and not written to PostgreSQL goes back.
    if (!inserted) await redis.incrby(key, input.quantity);
  }
  return inserted ? { kind: 'created', id } : { kind: 'not_found' };
}

servePurchases(purchase);
serveReads(async (row) => {
  const left = await redis.get(prefix + row.id);
  return left === null ? row.allocation - row.purchased : Number(left);
});
listen(async () => {
  if (keys.size > 0) await redis.del(...keys);
  redis.disconnect();
});
