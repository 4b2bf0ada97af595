-- The service's coalesced commit statement for SEVERAL options (src/allocation/
-- ledger-statements.ts, purchaseStatement: mode `guarded`, multi-option, no
-- Idempotency-Key): the "1,000 options" case, where one statement carries the batches of many
-- actors. Text unchanged except that the arrays are built in SQL.
-- Variables (pgbench -D): width = options per statement (distinct: a stride of options / width
-- from a random start), per_option = purchases of 1 ticket per option, options = options seeded.
\set base random(0, :options - 1)
\set stride :options / :width
\set n :width * :per_option
WITH d AS (
  SELECT * FROM unnest(
    ARRAY(SELECT bench_option_id(1 + (:base + i * :stride) % :options)
            FROM generate_series(0, :width::int - 1) i),
    array_fill(:per_option::int, ARRAY[:width::int]),
    array_fill(1, ARRAY[:width::int])
  ) AS d(id, taken, expected_version)
), p AS (
  SELECT * FROM unnest(
    ARRAY(SELECT gen_random_uuid() FROM generate_series(1, :n::int)),
    ARRAY(SELECT bench_option_id(1 + (:base + (i / :per_option::int) * :stride) % :options)
            FROM generate_series(0, :n::int - 1) i),
    ARRAY(SELECT gen_random_uuid() FROM generate_series(1, :n::int)),
    array_fill(1, ARRAY[:n::int])
  ) AS p(id, option_id, user_id, quantity)
), locked AS (
  SELECT t.id FROM ticket_options t JOIN d ON d.id = t.id ORDER BY t.id FOR UPDATE OF t
), bumped AS (
  UPDATE ticket_options t
     SET purchased = t.purchased + d.taken, version = t.version + 1, updated_at = now()
    FROM d JOIN locked l ON l.id = d.id
   WHERE t.id = d.id AND t.purchased::bigint + t.held + d.taken <= t.allocation
  RETURNING t.id, t.purchased, t.held, t.version, t.updated_at
), inserted AS (
  INSERT INTO purchases (id, ticket_option_id, user_id, quantity, created_at, updated_at)
  SELECT p.id, p.option_id, p.user_id, p.quantity, b.updated_at, b.updated_at
    FROM p JOIN bumped b ON b.id = p.option_id
  RETURNING ticket_option_id
)
SELECT b.id, b.purchased, b.version, b.updated_at,
       (SELECT count(*) FROM inserted i WHERE i.ticket_option_id = b.id)::int AS inserted,
       NULL::uuid AS lost_purchase_id
  FROM bumped b;
