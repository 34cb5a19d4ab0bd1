-- The CDNOW sample (2,357 customers, 1997-01-01 .. 1998-06-30): stages, RFM scores and
-- churn from lifecycle equal an independent plain-SQL computation of the brief's
-- definitions, written out here.
SET datestyle = 'ISO';
\getenv abs_srcdir PG_ABS_SRCDIR
\set cdnow_file :abs_srcdir '/data/cdnow_sample.txt'
\set summary_file :abs_srcdir '/data/cdnow_customers_summary_with_transactions.csv'
\set cdnow_sql :abs_srcdir '/data/cdnow.sql'
CREATE TABLE cdnow_raw (line text);
COPY cdnow_raw FROM :'cdnow_file';
\set QUIET on
\i :cdnow_sql
\set QUIET off

SELECT count(*) AS purchases, count(DISTINCT customer_id) AS customers,
       min(order_date), max(order_date), sum(amount) AS dollars
FROM cdnow_orders;

-- The loader agrees with the published per-customer summary (39-week calibration
-- ending 1997-09-30; same-day purchases merge; x = repeat purchase days).
CREATE TABLE cdnow_published (id int, x int, t_x numeric, t numeric, zbar numeric);
COPY cdnow_published FROM :'summary_file' WITH (FORMAT csv, HEADER);
WITH days AS (
    SELECT customer_id, order_date FROM cdnow_orders WHERE order_date <= '1997-09-30'
    GROUP BY customer_id, order_date
), ours AS (
    SELECT customer_id, count(*) - 1 AS x, round((max(order_date) - min(order_date)) / 7.0, 2) AS t_x,
           round((date '1997-09-30' - min(order_date)) / 7.0, 2) AS t
    FROM days GROUP BY customer_id
)
SELECT count(*) AS customers, count(*) FILTER (WHERE o.x = p.x AND o.t_x = p.t_x AND o.t = p.t) AS equal
FROM ours o JOIN cdnow_published p ON p.id = o.customer_id;

-- Purchase histories as of several dates: n counts distinct purchase days.
CREATE TABLE cdnow_history AS
SELECT a.as_of, c.customer_id, min(o.order_date) AS first, max(o.order_date) AS last,
       count(DISTINCT o.order_date) AS n, coalesce(sum(o.amount), 0) AS spend
FROM (VALUES (date '1997-02-15'), (date '1997-06-30'), (date '1997-09-30'), (date '1998-01-01'),
             (date '1998-06-30')) a(as_of)
CROSS JOIN (SELECT DISTINCT customer_id FROM cdnow_orders) c
LEFT JOIN cdnow_orders o ON o.customer_id = c.customer_id AND o.order_date <= a.as_of
GROUP BY a.as_of, c.customer_id;

-- Stages: lifecycle_stage against the rules as a plain CASE, for every policy.
CREATE TABLE cdnow_stage_check AS
SELECT h.as_of, p.name AS policy, h.customer_id,
       lifecycle.lifecycle_stage(h.first, h.last, h.n, h.as_of, p.name)::text AS ours,
       CASE
           WHEN h.first IS NULL THEN 'prospect'
           WHEN h.as_of - h.last > p.lapsed_days THEN 'lapsed'
           WHEN h.as_of - h.last > p.inactive_days THEN 'inactive'
           WHEN h.as_of - h.last > p.at_risk_days THEN 'at_risk'
           WHEN h.as_of - h.first <= p.onboarding_days THEN 'new'
           WHEN h.n >= p.rhythm_min_purchases AND p.rhythm_factor > 0
                AND h.as_of - h.last > p.rhythm_factor * (h.last - h.first) / (h.n - 1) THEN 'at_risk'
           ELSE 'active'
       END AS plain
FROM cdnow_history h CROSS JOIN lifecycle.policies p;
SELECT policy, count(*) AS judged, count(*) FILTER (WHERE ours = plain) AS equal
FROM cdnow_stage_check GROUP BY policy ORDER BY policy;
-- The distribution with the default policy.
SELECT as_of, ours AS stage, count(*) FROM cdnow_stage_check WHERE policy = 'default'
GROUP BY as_of, ours ORDER BY as_of, min(array_position(enum_range(NULL::lifecycle.stage)::text[], ours));

-- RFM at the end of the data, among buyers: recency in days, frequency in purchase days,
-- monetary as total spend; against three rank() windows.
CREATE TABLE cdnow_rfm AS
SELECT customer_id, as_of - last AS recency, n AS frequency, spend AS monetary,
       lifecycle.rfm_score(as_of - last, n, spend) OVER () AS s
FROM cdnow_history WHERE as_of = '1998-06-30' AND n > 0;
WITH plain AS (
    SELECT customer_id,
           1 + 5 * (rank() OVER (ORDER BY recency DESC) - 1) / count(*) OVER () AS r,
           1 + 5 * (rank() OVER (ORDER BY frequency) - 1) / count(*) OVER () AS f,
           1 + 5 * (rank() OVER (ORDER BY monetary) - 1) / count(*) OVER () AS m
    FROM cdnow_rfm
)
SELECT count(*) AS customers, count(*) FILTER (WHERE (c.s).r = p.r AND (c.s).f = p.f AND (c.s).m = p.m) AS equal
FROM cdnow_rfm c JOIN plain p USING (customer_id);
SELECT (s).segment, count(*) AS customers, round(avg(recency)) AS avg_recency,
       round(avg(frequency), 1) AS avg_frequency, round(avg(monetary), 2) AS avg_monetary
FROM cdnow_rfm GROUP BY 1 ORDER BY 2 DESC, 1;
-- Breakpoints captured from the same population score every customer the same way.
SELECT count(*) FILTER (WHERE lifecycle.rfm_score(c.recency, c.frequency, c.monetary, b.bp) = c.s) AS agree,
       count(*) AS customers
FROM cdnow_rfm c, (SELECT lifecycle.rfm_breakpoints(recency, frequency, monetary) AS bp FROM cdnow_rfm) b;

-- Monthly churn, February 1997 .. June 1998, default policy (inactive 60, lapsed 90).
CREATE TABLE cdnow_churn AS
SELECT m.start::date AS month, (lifecycle.churn_counts(s)).*
FROM generate_series(date '1997-02-01', date '1998-06-01', interval '1 month') m(start)
CROSS JOIN LATERAL (
    SELECT lifecycle.churn_status(order_date, m.start::date, (m.start + interval '1 month')::date) AS s
    FROM cdnow_orders GROUP BY customer_id) t
GROUP BY m.start;
-- The same from the definition in plain SQL: the stage at start from purchases before
-- start; churned when lapsed at end (here: no purchase during the month and
-- end - last purchase before start > 90).
CREATE TABLE cdnow_churn_plain AS
SELECT m.start::date AS month,
       count(*) FILTER (WHERE m.start::date - lbs <= 90) AS base,
       count(*) FILTER (WHERE m.start::date - lbs <= 90 AND NOT bought AND e.finish::date - lbs > 90) AS churned,
       count(*) FILTER (WHERE m.start::date - lbs > 60 AND bought) AS reactivated,
       count(*) FILTER (WHERE lbs IS NULL AND bought) AS new
FROM generate_series(date '1997-02-01', date '1998-06-01', interval '1 month') m(start)
CROSS JOIN LATERAL (SELECT m.start + interval '1 month' AS finish) e(finish)
CROSS JOIN LATERAL (
    SELECT customer_id, max(order_date) FILTER (WHERE order_date < m.start) AS lbs,
           bool_or(order_date >= m.start AND order_date < e.finish) AS bought
    FROM cdnow_orders GROUP BY customer_id) c
GROUP BY m.start, e.finish;
SELECT count(*) AS months,
       count(*) FILTER (WHERE (c.base, c.churned, c.reactivated, c.new) = (p.base, p.churned, p.reactivated, p.new)) AS equal
FROM cdnow_churn c JOIN cdnow_churn_plain p USING (month);
SELECT month, base, churned, retained, reactivated, new, round(churn_rate::numeric, 4) AS churn_rate
FROM cdnow_churn ORDER BY month;

DROP TABLE cdnow_published, cdnow_history, cdnow_stage_check, cdnow_rfm, cdnow_churn, cdnow_churn_plain;
