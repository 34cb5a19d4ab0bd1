-- Churn over [start, end): per customer churn_status (GROUP BY customer), then
-- churn_rate / churn_counts over the customers. Windows: inactive 60, lapsed 90.
SET datestyle = 'ISO';
CREATE TABLE churn_orders (customer_id int, order_date date);
INSERT INTO churn_orders VALUES
    -- 1: active before, buys during: base, retained
    (1, '2024-01-10'), (1, '2024-03-05'),
    -- 2: last bought 2024-01-15, nothing since: base at 2024-03-01 (46 days), at end
    --    2024-04-15 idle 91 days > 90: churned
    (2, '2024-01-15'),
    -- 3: last bought 2024-01-16: idle 90 days at end, not > 90: retained
    (3, '2024-01-16'),
    -- 4: last bought 2023-11-01: idle 121 days at start: lapsed, not in the base;
    --    buys during the period: reactivated
    (4, '2023-11-01'), (4, '2024-03-20'),
    -- 5: idle 70 days at start (inactive, in the base), buys: reactivated and retained
    (5, '2023-12-22'), (5, '2024-04-14'),
    -- 6: first purchase during the period: new
    (6, '2024-03-01'),
    -- 7: first purchase on the end day: not in this period at all
    (7, '2024-04-15'),
    -- 8: lapsed at start and did not come back: nothing
    (8, '2023-06-01'),
    -- 9: bought on the day before start, then only after the end: base, retained
    (9, '2024-02-29'), (9, '2024-05-01');

SELECT customer_id, lifecycle.churn_status(order_date, date '2024-03-01', date '2024-04-15', 60, 90) AS flags
FROM churn_orders GROUP BY customer_id ORDER BY customer_id;

SELECT (c).* FROM (
    SELECT lifecycle.churn_counts(s) AS c FROM (
        SELECT lifecycle.churn_status(order_date, date '2024-03-01', date '2024-04-15', 60, 90) AS s
        FROM churn_orders GROUP BY customer_id) t) x;
SELECT lifecycle.churn_rate(s) FROM (
    SELECT lifecycle.churn_status(order_date, date '2024-03-01', date '2024-04-15', 60, 90) AS s
    FROM churn_orders GROUP BY customer_id) t;

-- The policy forms read the windows from lifecycle.policies.
SELECT lifecycle.churn_rate(s) FROM (
    SELECT lifecycle.churn_status(order_date, date '2024-03-01', date '2024-04-15') AS s
    FROM churn_orders GROUP BY customer_id) t;
SELECT lifecycle.churn_rate(s) FROM (
    SELECT lifecycle.churn_status(order_date, date '2024-03-01', date '2024-04-15', 'fashion_retail') AS s
    FROM churn_orders GROUP BY customer_id) t;

-- An empty base: NULL rate.
SELECT lifecycle.churn_rate(s), (lifecycle.churn_counts(s)).base FROM (
    SELECT lifecycle.churn_status(order_date, date '2020-01-01', date '2020-02-01', 60, 90) AS s
    FROM churn_orders GROUP BY customer_id) t;

-- A random workload against the brief's definition written out in plain SQL (stage at
-- start and at end from the purchases before each), for several periods.
SELECT setseed(0.7);
CREATE TABLE churn_random AS
SELECT 1 + (random() * 3000)::int AS customer_id, date '2023-01-01' + (random() * 600)::int AS order_date
FROM generate_series(1, 20000);
ANALYZE churn_random;

CREATE FUNCTION plain_sql_churn(period_start date, period_end date, inactive_days int, lapsed_days int)
RETURNS TABLE (base bigint, churned bigint, reactivated bigint, new bigint) LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH c AS (
        SELECT customer_id,
               max(order_date) FILTER (WHERE order_date < period_start) AS last_before_start,
               max(order_date) FILTER (WHERE order_date < period_end) AS last_before_end,
               bool_or(order_date >= period_start AND order_date < period_end) AS bought_during
        FROM churn_random GROUP BY customer_id
    )
    SELECT count(*) FILTER (WHERE period_start - last_before_start <= lapsed_days),
           count(*) FILTER (WHERE period_start - last_before_start <= lapsed_days
                              AND period_end - last_before_end > lapsed_days),
           count(*) FILTER (WHERE period_start - last_before_start > inactive_days AND bought_during),
           count(*) FILTER (WHERE last_before_start IS NULL AND bought_during)
    FROM c;
END;

SELECT p.period_start, p.period_end, (c).base, (c).churned, (c).reactivated, (c).new,
       ((c).base, (c).churned, (c).reactivated, (c).new) = (x.base, x.churned, x.reactivated, x.new) AS equals_plain_sql
FROM (VALUES (date '2023-03-01', date '2023-04-01'), (date '2023-06-01', date '2023-07-01'),
             (date '2023-12-01', date '2024-03-01'), (date '2024-02-01', date '2024-08-01'),
             (date '2024-06-01', date '2024-07-01')) p(period_start, period_end)
CROSS JOIN LATERAL (
    SELECT lifecycle.churn_counts(s) AS c FROM (
        SELECT lifecycle.churn_status(order_date, p.period_start, p.period_end, 60, 90) AS s
        FROM churn_random GROUP BY customer_id) t) ours
CROSS JOIN LATERAL plain_sql_churn(p.period_start, p.period_end, 60, 90) x
ORDER BY 1;

-- Parallel query splits both steps: a Partial Aggregate under a Gather, and the answer
-- equals the serial one.
SELECT setseed(0.3);
CREATE TABLE churn_big AS
SELECT (random() * 20000)::int AS customer_id, date '2023-01-01' + (random() * 365 * random())::int AS order_date
FROM generate_series(1, 200000) i;
ANALYZE churn_big;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF)
SELECT lifecycle.churn_rate(s) FROM (
    SELECT lifecycle.churn_status(order_date, date '2024-01-01', date '2024-02-01', 60, 90) AS s
    FROM churn_big GROUP BY customer_id) t;
-- Step 2 splits too, e.g. over statuses kept in a table.
CREATE TABLE churn_big_status AS
SELECT customer_id, lifecycle.churn_status(order_date, date '2024-01-01', date '2024-02-01', 60, 90) AS s
FROM churn_big GROUP BY customer_id;
ANALYZE churn_big_status;
EXPLAIN (COSTS OFF) SELECT lifecycle.churn_rate(s), lifecycle.churn_counts(s) FROM churn_big_status;
SELECT lifecycle.churn_counts(s)::text AS parallel_step2 FROM churn_big_status \gset
SELECT lifecycle.churn_counts(s)::text AS parallel_answer FROM (
    SELECT lifecycle.churn_status(order_date, date '2024-01-01', date '2024-02-01', 60, 90) AS s
    FROM churn_big GROUP BY customer_id) t \gset
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET parallel_leader_participation;
SET max_parallel_workers_per_gather = 0;
SELECT (s.c).*, :'parallel_answer' = s.c::text AS parallel_equals_serial,
       :'parallel_step2' = s.c::text AS parallel_step2_equals_serial
FROM (
    SELECT lifecycle.churn_counts(s) AS c FROM (
        SELECT lifecycle.churn_status(order_date, date '2024-01-01', date '2024-02-01', 60, 90) AS s
        FROM churn_big GROUP BY customer_id) t) s;
RESET max_parallel_workers_per_gather;

-- The states are a bigint and a bigint[] whose text forms round-trip (how Citus ships
-- partials): customer 1 above, its two purchases in two partial states.
SELECT lifecycle._churn_status_final(
           lifecycle._churn_status_combine(
               (lifecycle._churn_status_transfn(0, date '2024-01-10', date '2024-03-01', date '2024-04-15', 60, 90)::text)::bigint,
               (lifecycle._churn_status_transfn(0, date '2024-03-05', date '2024-03-01', date '2024-04-15', 60, 90)::text)::bigint)) AS combined_flags,
       lifecycle._churn_rate_final(lifecycle._churn_counts_combine(
           (lifecycle._churn_counts_transfn('{0,0,0,0}', 3)::text)::bigint[],
           (lifecycle._churn_counts_transfn('{0,0,0,0}', 1)::text)::bigint[])) AS combined_rate;

DROP FUNCTION plain_sql_churn(date, date, integer, integer);
DROP TABLE churn_orders, churn_random, churn_big, churn_big_status;
