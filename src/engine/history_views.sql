------------------------------------------------------------------------------------
-- 0.3.0: the stage history for BI, from the transitions log: each customer's stages as
-- intervals, the daily counts per stage, cohort retention by first-purchase month, and
-- the flow of customers between stages from one day to another. Everything is
-- known from the day a source was tracked (its 'initial' transitions) on.
------------------------------------------------------------------------------------

-- Each customer's stages as intervals of days: `stage` from `since` until the day of
-- the next transition (exclusive), or NULL while it lasts. A customer whose orders were
-- all deleted is 'prospect' from then on.
CREATE VIEW lifecycle.stage_history AS
SELECT s.source::text AS source, t.customer, t.to_stage AS stage, t.effective AS since,
       lead(t.effective) OVER (PARTITION BY t.source_id, t.customer ORDER BY t.id) AS until,
       t.cause, t.id AS transition_id
FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id;

-- Customers per stage at the end of every day since tracking began: the log's changes
-- summed day by day (a transition on day D counts on D).
CREATE VIEW lifecycle.stage_counts_daily AS
WITH changes AS (
    SELECT source_id, effective AS day, to_stage AS stage, 1 AS delta
    FROM lifecycle.transitions WHERE to_stage <> 'prospect'
    UNION ALL
    SELECT source_id, effective, from_stage, -1
    FROM lifecycle.transitions WHERE from_stage <> 'prospect'
), per_day AS (
    SELECT source_id, day, stage, sum(delta) AS delta FROM changes GROUP BY 1, 2, 3
), grid AS (
    SELECT s.id AS source_id, s.source, d::date AS day, st.stage
    FROM lifecycle.sources s
    CROSS JOIN generate_series(s.tracked_on, lifecycle.engine_date(), interval '1 day') AS d
    CROSS JOIN unnest(enum_range('new'::lifecycle.stage, NULL)) AS st (stage)
)
SELECT g.source::text AS source, g.day, g.stage,
       sum(coalesce(p.delta, 0)) OVER (PARTITION BY g.source_id, g.stage ORDER BY g.day)::bigint
           AS customers
FROM grid g
LEFT JOIN per_day p ON p.source_id = g.source_id AND p.day = g.day AND p.stage = g.stage;

-- Cohort retention: customers by the month of their first purchase, and at the end of
-- each complete month since tracking began how many of them were retained — in any
-- stage but lapsed (DESIGN.md's churn: lapsed is lost).
CREATE VIEW lifecycle.cohort_retention AS
WITH cohorts AS (
    SELECT c.source_id, c.customer, date_trunc('month', c.first_purchase)::date AS cohort,
           count(*) OVER (PARTITION BY c.source_id, date_trunc('month', c.first_purchase))
               AS size
    FROM lifecycle.customer_stage c WHERE c.first_purchase IS NOT NULL
), month_ends AS (
    SELECT s.id AS source_id, s.source, (m + interval '1 month - 1 day')::date AS month_end
    FROM lifecycle.sources s,
         generate_series(date_trunc('month', s.tracked_on),
                         date_trunc('month', lifecycle.engine_date()) - interval '1 month',
                         interval '1 month') AS m
), stages AS (
    SELECT t.source_id, t.customer, t.to_stage AS stage, t.effective AS since,
           lead(t.effective) OVER (PARTITION BY t.source_id, t.customer ORDER BY t.id) AS until
    FROM lifecycle.transitions t
)
SELECT m.source::text AS source, k.cohort, k.size AS customers,
       date_trunc('month', m.month_end)::date AS month,
       ((extract(year FROM m.month_end) - extract(year FROM k.cohort)) * 12
        + extract(month FROM m.month_end) - extract(month FROM k.cohort))::integer AS months_since,
       count(*) FILTER (WHERE i.stage NOT IN ('lapsed', 'prospect')) AS retained,
       round(count(*) FILTER (WHERE i.stage NOT IN ('lapsed', 'prospect'))::numeric / k.size, 4)
           AS retention
FROM cohorts k
JOIN month_ends m ON m.source_id = k.source_id AND m.month_end >= k.cohort
JOIN stages i ON i.source_id = k.source_id AND i.customer = k.customer
             AND i.since <= m.month_end AND (i.until IS NULL OR i.until > m.month_end)
GROUP BY m.source, k.source_id, k.cohort, k.size, m.month_end;

-- The flow of tracked `source`'s customers between the stage they were in at the end of
-- `from_day` and the one at the end of `to_day` (prospect: not yet a customer then).
CREATE FUNCTION lifecycle.stage_flow(source regclass, from_day date, to_day date)
RETURNS TABLE (from_stage lifecycle.stage, to_stage lifecycle.stage, customers bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s lifecycle.sources := (SELECT x FROM lifecycle.sources x WHERE x.source = stage_flow.source);
BEGIN
    IF s IS NULL THEN
        RAISE EXCEPTION 'argument "source": % is not tracked (see lifecycle.track)', source
            USING ERRCODE = '22023';
    END IF;
    IF from_day IS NULL OR from_day < s.tracked_on THEN
        RAISE EXCEPTION 'argument "from_day" must be on or after %, when tracking began, got %',
            s.tracked_on, coalesce(from_day::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF to_day IS NULL OR to_day < from_day THEN
        RAISE EXCEPTION 'argument "to_day" must be on or after from_day (%), got %',
            from_day, coalesce(to_day::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH at_day AS (
        SELECT DISTINCT ON (t.customer, d.day) t.customer, d.day, t.to_stage AS stage
        FROM lifecycle.transitions t
        JOIN (VALUES (from_day), (to_day)) AS d (day) ON t.effective <= d.day
        WHERE t.source_id = s.id
        ORDER BY t.customer, d.day, t.id DESC
    )
    SELECT coalesce(a.stage, 'prospect'), coalesce(b.stage, 'prospect'), count(*)
    FROM (SELECT * FROM at_day WHERE day = from_day) a
    FULL JOIN (SELECT * FROM at_day WHERE day = to_day) b USING (customer)
    GROUP BY 1, 2
    ORDER BY 1, 2;
END
$$;
