/**
 * Bucketed counters (the design of Fatsoma's coding-test PR 8): an option's remaining tickets are
 * split over 32 bucket rows, so concurrent buyers of one option mostly lock different rows. A
 * purchase first tries one random bucket with a guarded decrement (one statement, with the
 * INSERT); when that bucket cannot cover it, it locks every bucket of the option (in order: no
 * deadlock) and fills across them. `ticket_options.purchased` is not kept (that row would be hot
 * again): sold is allocation - SUM(remaining). The bucket table is this reference's own: created
 * at start, dropped at shutdown.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { listen, Outcome, pool, PurchaseInput, serveReads, servePurchases } from './common';
import { transaction } from './common';

type Bucket = { bucket: number; remaining: number };

const BUCKETS = 32;
const TABLE = `CREATE TABLE IF NOT EXISTS bench_ticket_option_buckets (
  ticket_option_id uuid NOT NULL REFERENCES ticket_options (id) ON DELETE CASCADE,
  bucket smallint NOT NULL, remaining integer NOT NULL CHECK (remaining >= 0),
  PRIMARY KEY (ticket_option_id, bucket))`;
/** The first purchase of an option splits what remains of it; a racing second split does nothing. */
const SPLIT = `WITH split AS (
  INSERT INTO bench_ticket_option_buckets (ticket_option_id, bucket, remaining)
  SELECT id, b, (allocation - purchased) / ${BUCKETS} + (b < (allocation - purchased) % ${BUCKETS})::int
    FROM ticket_options, generate_series(0, ${BUCKETS - 1}) AS b WHERE id = $1 ON CONFLICT DO NOTHING)
  SELECT EXISTS (SELECT 1 FROM ticket_options WHERE id = $1) AS found`;
const TAKE_ONE = {
  name: 'buckets-take-one',
  text: `WITH take AS (UPDATE bench_ticket_option_buckets SET remaining = remaining - $3
           WHERE ticket_option_id = $1 AND bucket = $2 AND remaining >= $3 RETURNING ticket_option_id)
         INSERT INTO purchases (id, ticket_option_id, user_id, quantity) SELECT $4, ticket_option_id, $5, $3 FROM take`,
};
const LOCK_ALL =
  'SELECT bucket, remaining FROM bench_ticket_option_buckets WHERE ticket_option_id = $1 ORDER BY bucket FOR UPDATE';
const TAKE_MANY = `UPDATE bench_ticket_option_buckets b SET remaining = b.remaining - t.take
  FROM unnest($2::smallint[], $3::int[]) AS t(bucket, take) WHERE b.ticket_option_id = $1 AND b.bucket = t.bucket`;
const LEFT =
  'SELECT SUM(remaining)::int AS left FROM bench_ticket_option_buckets WHERE ticket_option_id = $1';
const INSERT =
  'INSERT INTO purchases (id, ticket_option_id, user_id, quantity) VALUES ($1, $2, $3, $4)';

const table = pool.query(TABLE);
/** Options whose buckets exist or are being made: each is split once per process. */
const split = new Map<string, Promise<boolean>>();

function ensureSplit(optionId: string): Promise<boolean> {
  let found = split.get(optionId);
  if (!found) {
    found = table
      .then(() => pool.query<{ found: boolean }>(SPLIT, [optionId]))
      .then((r) => r.rows[0].found);
    split.set(optionId, found);
    // Only a split that happened is remembered.
    void found.then(
      (yes) => yes || split.delete(optionId),
      () => split.delete(optionId),
    );
  }
  return found;
}

async function purchase(optionId: string, input: PurchaseInput): Promise<Outcome> {
  if (!(await ensureSplit(optionId))) return { kind: 'not_found' };
  const id = randomUUID();
  const values = [optionId, randomInt(BUCKETS), input.quantity, id, input.userId];
  const { rowCount } = await pool.query({ ...TAKE_ONE, values });
  return rowCount === 1 ? { kind: 'created', id } : fillAcross(optionId, id, input);
}

/** Takes from each locked bucket in turn what the purchase still needs. */
function fillAcross(optionId: string, id: string, input: PurchaseInput): Promise<Outcome> {
  return transaction(async (client) => {
    const { rows } = await client.query<Bucket>(LOCK_ALL, [optionId]);
    let wanted = input.quantity;
    const takes = rows.map((row) => {
      const take = Math.min(row.remaining, wanted);
      wanted -= take;
      return take;
    });
    if (wanted > 0) return { kind: 'sold_out' };
    await client.query(TAKE_MANY, [optionId, rows.map((r) => r.bucket), takes]);
    await client.query(INSERT, [id, optionId, input.userId, input.quantity]);
    return { kind: 'created', id };
  });
}

servePurchases(purchase);
serveReads(async (row) => {
  const { left } = (await pool.query<{ left: number | null }>(LEFT, [row.id])).rows[0];
  return left ?? row.allocation - row.purchased;
});
listen(() => pool.query('DROP TABLE IF EXISTS bench_ticket_option_buckets'));
