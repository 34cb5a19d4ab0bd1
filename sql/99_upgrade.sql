-- ALTER EXTENSION lifecycle UPDATE from each released version gives exactly what a fresh
-- install of the current version gives: the same member objects with the same
-- definitions, comments, privileges, defaults, indexes, constraints and triggers
-- (sql/extension_members.psql). The released scripts are installed as they shipped
-- (released/); the last step is the hand-written updates/ script. Each database's
-- description is kept in a psql variable and compared with the fresh one's.
-- (test/upgrade.sh does the same with data, live transitions and the worker running.)
CREATE DATABASE lifecycle_from_0_1_0;
CREATE DATABASE lifecycle_from_0_2_0;
CREATE DATABASE lifecycle_fresh;

\c lifecycle_from_0_1_0
CREATE EXTENSION lifecycle VERSION '0.1.0';
ALTER EXTENSION lifecycle UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'lifecycle';
\i sql/extension_members.psql
SELECT string_agg(line, E'\n' ORDER BY line) AS from_0_1_0 FROM members \gset

\c lifecycle_from_0_2_0
CREATE EXTENSION lifecycle VERSION '0.2.0';
ALTER EXTENSION lifecycle UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'lifecycle';
\i sql/extension_members.psql
SELECT string_agg(line, E'\n' ORDER BY line) AS from_0_2_0 FROM members \gset

\c lifecycle_fresh
CREATE EXTENSION lifecycle;
SELECT extversion FROM pg_extension WHERE extname = 'lifecycle';
\i sql/extension_members.psql
SELECT count(*) > 0 AS has_members FROM members;
-- The lines only one side has (none expected).
SELECT line AS only_in_fresh FROM members
EXCEPT SELECT unnest(string_to_array(:'from_0_2_0', E'\n'));
SELECT unnest(string_to_array(:'from_0_2_0', E'\n')) AS only_in_upgraded_from_0_2_0
EXCEPT SELECT line FROM members;
SELECT unnest(string_to_array(:'from_0_1_0', E'\n')) AS only_in_upgraded_from_0_1_0
EXCEPT SELECT line FROM members;
SELECT string_agg(line, E'\n' ORDER BY line) = :'from_0_2_0' AS same_from_0_2_0,
       string_agg(line, E'\n' ORDER BY line) = :'from_0_1_0' AS same_from_0_1_0
FROM members;
-- After the 0.2.0 -> 0.3.0 script every column of the stage table, the log and the views
-- has a comment, as on a fresh install.
SELECT count(*) AS columns_without_comment
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'lifecycle'::regnamespace
  AND (c.relkind = 'v' OR c.relname IN ('customer_stage', 'transitions'))
  AND col_description(c.oid, a.attnum) IS NULL;

-- Changes queued under 0.2.0 (a row per customer and day) and under 0.3.0 (rows of
-- orders) are both taken by the updated refresh(): the stage table then equals a
-- recomputation from the orders.
CREATE DATABASE lifecycle_queued_0_2_0;
\c lifecycle_queued_0_2_0
SET lifecycle.as_of = '2026-03-01';
CREATE EXTENSION lifecycle VERSION '0.2.0';
CREATE TABLE orders (customer_id integer, ordered_at date, amount numeric);
INSERT INTO orders SELECT c, '2026-01-05', 10 FROM generate_series(1, 30) c;
SELECT lifecycle.track('orders', 'customer_id', 'ordered_at', 'amount') > 0 AS tracked;
INSERT INTO orders SELECT c, '2026-02-01', 5 FROM generate_series(20, 40) c;
UPDATE orders SET amount = 11 WHERE customer_id = 3;
ALTER EXTENSION lifecycle UPDATE;
INSERT INTO orders SELECT c, '2026-02-20', 7 FROM generate_series(35, 45) c;
SELECT count(*) FILTER (WHERE customers IS NULL) AS rows_from_0_2_0,
       count(*) FILTER (WHERE customers IS NOT NULL) AS rows_of_orders,
       (SELECT queued FROM lifecycle.worker_status) AS queued
FROM lifecycle.change_queue;
SELECT (lifecycle.refresh()).queued;
SELECT count(*) AS differ
FROM (SELECT customer_id::text AS customer, min(ordered_at) AS first_purchase,
             max(ordered_at) AS last_purchase, count(DISTINCT ordered_at) AS purchases,
             sum(amount)::float8 AS spend,
             lifecycle.lifecycle_stage(min(ordered_at), max(ordered_at),
                                       count(DISTINCT ordered_at), '2026-03-01') AS stage
      FROM orders GROUP BY customer_id) o
FULL JOIN lifecycle.customer_stage c USING (customer)
WHERE (o.first_purchase, o.last_purchase, o.purchases, o.spend, o.stage)
      IS DISTINCT FROM (c.first_purchase, c.last_purchase, c.purchases, c.spend, c.stage);
SELECT count(*) AS left_in_queue FROM lifecycle.change_queue;

\c contrib_regression
DROP DATABASE lifecycle_queued_0_2_0;
DROP DATABASE lifecycle_from_0_1_0;
DROP DATABASE lifecycle_from_0_2_0;
DROP DATABASE lifecycle_fresh;
