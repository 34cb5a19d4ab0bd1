-- The stage history views against an independent computation: lifecycle_stage() over
-- the orders themselves. (The table has no amount column: tracking such a table and
-- writing to it is checked on the way.) 400 customers buy at random over 2026; the table is tracked
-- on 2026-03-01 with the orders up to then, and each later day's orders are inserted on
-- their day with a refresh, as the worker would. Then, for days and month ends since
-- tracking, the stage every customer had by its orders up to that day must be what the
-- log says.
SET client_min_messages = warning;
SELECT setseed(0.77);
CREATE TABLE hv_all (customer integer, ordered date);
INSERT INTO hv_all
SELECT c, '2026-01-01'::date + floor(random() * random() * 300)::int
FROM generate_series(1, 400) c, generate_series(1, 1 + floor(random() * 6)::int) k;
CREATE TABLE hv_orders AS SELECT * FROM hv_all WHERE ordered <= '2026-03-01';
SELECT set_config('lifecycle.as_of', '2026-03-01', false) IS NOT NULL AS as_of_set;
SELECT lifecycle.track('hv_orders', 'customer', 'ordered') > 0 AS tracked;
DO $$
BEGIN
    FOR d IN 1 .. '2026-09-30'::date - '2026-03-01'::date LOOP
        PERFORM set_config('lifecycle.as_of', ('2026-03-01'::date + d)::text, false);
        INSERT INTO hv_orders SELECT * FROM hv_all WHERE ordered = '2026-03-01'::date + d;
        PERFORM lifecycle.refresh();
    END LOOP;
END
$$;

-- Each customer's stage by its orders up to `day`, computed from the orders.
CREATE FUNCTION hv_stage_on(day date) RETURNS TABLE (customer text, stage lifecycle.stage)
LANGUAGE sql AS $$
    SELECT customer::text, lifecycle.lifecycle_stage(min(ordered), max(ordered),
                                                     count(DISTINCT ordered), day)
    FROM hv_all WHERE ordered <= day GROUP BY customer
$$;

-- stage_counts_daily: every day from tracking to the engine's date.
SELECT count(*) AS days_that_differ
FROM generate_series('2026-03-01'::date, '2026-09-30', '1 day') AS d (day)
WHERE EXISTS (
    ((SELECT stage, customers FROM lifecycle.stage_counts_daily
      WHERE source = 'hv_orders' AND day = d.day AND customers > 0)
     EXCEPT
     (SELECT stage, count(*) FROM hv_stage_on(d.day::date) GROUP BY stage))
    UNION ALL
    ((SELECT stage, count(*) FROM hv_stage_on(d.day::date) GROUP BY stage)
     EXCEPT
     (SELECT stage, customers FROM lifecycle.stage_counts_daily
      WHERE source = 'hv_orders' AND day = d.day AND customers > 0)));
SELECT stage, customers FROM lifecycle.stage_counts_daily
WHERE source = 'hv_orders' AND day = '2026-06-30' ORDER BY stage;

-- stage_history: on any day, the interval a customer is in holds its stage then.
SELECT count(*) AS customer_days_that_differ
FROM generate_series('2026-03-01'::date, '2026-09-30', '7 days') AS d (day)
CROSS JOIN LATERAL hv_stage_on(d.day::date) x
LEFT JOIN lifecycle.stage_history h
  ON h.source = 'hv_orders' AND h.customer = x.customer AND h.since <= d.day
 AND (h.until IS NULL OR h.until > d.day)
WHERE h.stage IS DISTINCT FROM x.stage;

-- cohort_retention: per cohort (month of first purchase) and complete month, the
-- customers not lapsed at the month's end by their orders up to then.
WITH firsts AS (
    SELECT customer::text AS customer, date_trunc('month', min(ordered))::date AS cohort
    FROM hv_all WHERE ordered <= '2026-09-30' GROUP BY customer
), months AS (
    SELECT m::date AS month, (m + interval '1 month - 1 day')::date AS month_end
    FROM generate_series('2026-03-01'::date, '2026-08-01', '1 month') AS m
), by_hand AS (
    SELECT f.cohort, m.month, count(*) FILTER (WHERE s.stage <> 'lapsed') AS retained
    FROM months m CROSS JOIN LATERAL hv_stage_on(m.month_end) s
    JOIN firsts f ON f.customer = s.customer
    GROUP BY f.cohort, m.month
)
SELECT count(*) AS cells_that_differ
FROM by_hand h FULL JOIN (SELECT * FROM lifecycle.cohort_retention WHERE source = 'hv_orders') v
  ON v.cohort = h.cohort AND v.month = h.month
WHERE v.retained IS DISTINCT FROM h.retained;
SELECT cohort, customers, month, months_since, retained, retention
FROM lifecycle.cohort_retention
WHERE source = 'hv_orders' AND cohort IN ('2026-01-01', '2026-05-01') ORDER BY cohort, month;

-- stage_flow: the cross-tab of each customer's stage on two days.
SELECT count(*) AS flows_that_differ FROM (
    (SELECT * FROM lifecycle.stage_flow('hv_orders', '2026-04-15', '2026-08-15')
     EXCEPT
     SELECT coalesce(a.stage, 'prospect'), coalesce(b.stage, 'prospect'), count(*)
     FROM hv_stage_on('2026-04-15') a FULL JOIN hv_stage_on('2026-08-15') b USING (customer)
     GROUP BY 1, 2)
    UNION ALL
    (SELECT coalesce(a.stage, 'prospect'), coalesce(b.stage, 'prospect'), count(*)
     FROM hv_stage_on('2026-04-15') a FULL JOIN hv_stage_on('2026-08-15') b USING (customer)
     GROUP BY 1, 2
     EXCEPT
     SELECT * FROM lifecycle.stage_flow('hv_orders', '2026-04-15', '2026-08-15'))) x;
SELECT * FROM lifecycle.stage_flow('hv_orders', '2026-04-15', '2026-08-15') WHERE customers >= 20;
SELECT expect_error($$SELECT * FROM lifecycle.stage_flow('hv_orders', '2026-01-01', '2026-08-15')$$);
SELECT expect_error($$SELECT * FROM lifecycle.stage_flow('hv_orders', '2026-08-15', '2026-04-15')$$);
SELECT expect_error($$SELECT * FROM lifecycle.stage_flow('pg_class', '2026-04-15', '2026-08-15')$$);

-- A table tracked empty gets RFM scores as soon as it has customers (not an
-- rfm_interval later: breakpoints taken from no customer are taken again).
CREATE TABLE hv_empty (customer integer, ordered date, amount numeric);
SELECT lifecycle.track('hv_empty', 'customer', 'ordered', 'amount') > 0 AS tracked_empty;
INSERT INTO hv_empty SELECT c, '2026-09-01'::date + c % 20, c FROM generate_series(1, 50) c;
SELECT (lifecycle.refresh()).queued AS queued;
SELECT count(*) AS customers, count(segment) AS with_a_segment
FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
WHERE s.source = 'hv_empty'::regclass;
SELECT lifecycle.untrack('hv_empty');
DROP TABLE hv_empty;

SELECT lifecycle.untrack('hv_orders');
RESET lifecycle.as_of;
DROP FUNCTION hv_stage_on(date);
DROP TABLE hv_orders, hv_all;
