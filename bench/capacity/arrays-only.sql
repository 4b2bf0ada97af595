-- Control: builds the same arrays as commit-single.sql and writes nothing. Its CPU per purchase
-- is what building the parameters in SQL adds to the commit scripts (the service sends them).
\set opt random(1, :options)
SELECT cardinality(ARRAY(SELECT gen_random_uuid() FROM generate_series(1, :batch::int))),
       cardinality(array_fill(bench_option_id(:opt), ARRAY[:batch::int])),
       cardinality(ARRAY(SELECT gen_random_uuid() FROM generate_series(1, :batch::int))),
       cardinality(array_fill(1, ARRAY[:batch::int]));
