-- The service's commit statement for ONE option (src/allocation/ledger-statements.ts,
-- purchaseStatement: mode `guarded`, single option, no Idempotency-Key), text unchanged except that
-- its array parameters are built in SQL: $1..$3 = the option, the tickets taken, the version read;
-- $4..$7 = :batch purchases of 1 ticket (fresh random UUIDs, as the service's randomUUID()).
-- Variables (pgbench -D): batch = purchases per statement, options = 1 (one hot row) or more.
\set opt random(1, :options)
WITH d AS (
  SELECT * FROM unnest(ARRAY[bench_option_id(:opt)], ARRAY[:batch::int], ARRAY[1])
    AS d(id, taken, expected_version)
), p AS (
  SELECT * FROM unnest(
    ARRAY(SELECT gen_random_uuid() FROM generate_series(1, :batch::int)),
    array_fill(bench_option_id(:opt), ARRAY[:batch::int]),
    ARRAY(SELECT gen_random_uuid() FROM generate_series(1, :batch::int)),
    array_fill(1, ARRAY[:batch::int])
  ) AS p(id, option_id, user_id, quantity)
), bumped AS (
  UPDATE ticket_options t
     SET purchased = t.purchased + d.taken, version = t.version + 1, updated_at = now()
    FROM d
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
