CREATE VIEW lifecycle.worker_status AS
SELECT current_database() AS database, w.pid, a.pid IS NOT NULL AS running, a.state,
       a.backend_start AS started_at, w.ticks, w.errors, w.consecutive_errors, w.last_tick_at,
       w.last_tick_ms, w.last_customers, w.last_transitions, w.last_error, w.last_error_at,
       (SELECT coalesce(sum(coalesce(cardinality(customers), 1)), 0) FROM lifecycle.change_queue)
           AS queued,   -- orders, and customers changed by UPDATE or DELETE
       (SELECT count(*) FROM lifecycle.customer_stage
        WHERE wake_on <= lifecycle.engine_date()
          AND next_change <= lifecycle.engine_date()) AS due
FROM (SELECT true AS singleton) AS one
LEFT JOIN lifecycle.worker_state w USING (singleton)
LEFT JOIN pg_stat_activity a ON a.pid = w.pid AND a.backend_type = 'lifecycle worker';
COMMENT ON VIEW lifecycle.worker_status IS
    'The lifecycle worker of this database: alive or not, its last tick, errors, work waiting';

-- Per tracked source: how its part of the ticks went (refresh() runs each source on its
-- own and keeps its errors in lifecycle.sources) and the changes queued for it.
CREATE VIEW lifecycle.source_status AS
SELECT s.id AS source_id, s.source::text AS source,
       coalesce(s.retry_at > now(), false) AS waiting, s.consecutive_errors, s.errors,
       s.last_error, s.last_error_at, s.retry_at, coalesce(q.queued, 0) AS queued
FROM lifecycle.sources s
LEFT JOIN (SELECT c.source_id, sum(coalesce(cardinality(c.customers), 1)) AS queued
           FROM lifecycle.change_queue c GROUP BY c.source_id) q ON q.source_id = s.id;
COMMENT ON VIEW lifecycle.source_status IS
    'Per tracked source: errors of its part of the ticks, when it is tried again, changes queued';
COMMENT ON COLUMN lifecycle.source_status.source_id IS 'lifecycle.sources.id';
COMMENT ON COLUMN lifecycle.source_status.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.source_status.waiting IS
    'Its last refresh failed and it is skipped until retry_at';
COMMENT ON COLUMN lifecycle.source_status.consecutive_errors IS
    'Failed refreshes of the source in a row, now (0: its last one succeeded)';
COMMENT ON COLUMN lifecycle.source_status.errors IS 'Failed refreshes of the source, in all';
COMMENT ON COLUMN lifecycle.source_status.last_error IS 'Message of its last failure (kept after a success)';
COMMENT ON COLUMN lifecycle.source_status.last_error_at IS 'When it failed';
COMMENT ON COLUMN lifecycle.source_status.retry_at IS
    'Not refreshed before this (1 s doubled per failure in a row, at most an hour)';
COMMENT ON COLUMN lifecycle.source_status.queued IS
    'Changes waiting in the queue for it: orders inserted, customers updated or deleted';

------------------------------------------------------------------------------------
-- Views for BI
------------------------------------------------------------------------------------

CREATE VIEW lifecycle.stage_counts AS
SELECT s.source::text AS source, c.stage, count(*) AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY s.id), 2) AS percent
FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
GROUP BY s.id, s.source, c.stage;

CREATE VIEW lifecycle.transitions_per_day AS
SELECT s.source::text AS source, t.effective AS day, t.from_stage, t.to_stage, t.cause,
       count(*) AS transitions
FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id
WHERE t.cause <> 'initial'
GROUP BY s.source, t.effective, t.from_stage, t.to_stage, t.cause;

CREATE VIEW lifecycle.rfm_segment_counts AS
SELECT s.source::text AS source, c.segment, count(*) AS customers,
       avg(c.spend) AS average_spend, avg(c.purchases) AS average_purchases
FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
WHERE c.segment IS NOT NULL
GROUP BY s.source, c.segment;

-- Churn per complete calendar month since tracking began, from the transitions log, with
-- DESIGN.md's definition: the base is the customers whose stage at the month's start
-- (judged from purchases before it) is new, active, at_risk or inactive; the churned are
-- those of the base that are lapsed at its end. A purchase logged on day D counts from
-- D + 1 on (it is not "before" D); a time step on D counts on D.
CREATE VIEW lifecycle.churn_per_month AS
WITH months AS (
    SELECT s.id AS source_id, s.source, m::date AS month_start,
           (m + interval '1 month')::date AS month_end
    FROM lifecycle.sources s,
         generate_series(date_trunc('month', s.tracked_on) + interval '1 month',
                         date_trunc('month', lifecycle.engine_date()) - interval '1 month',
                         interval '1 month') AS m
), steps AS (
    SELECT source_id, customer, id, to_stage, cause, effective,
           CASE WHEN cause = 'time' THEN effective ELSE effective + 1 END AS counts_from
    FROM lifecycle.transitions
), per_customer AS (
    SELECT m.source_id, m.source, m.month_start, t.customer,
           (array_agg(t.to_stage ORDER BY t.id DESC)
                FILTER (WHERE t.counts_from <= m.month_start))[1] AS at_start,
           (array_agg(t.to_stage ORDER BY t.id DESC)
                FILTER (WHERE t.counts_from <= m.month_end))[1] AS at_end,
           bool_or(t.cause = 'purchase' AND t.effective >= m.month_start
                   AND t.effective < m.month_end) AS bought
    FROM months m JOIN steps t ON t.source_id = m.source_id AND t.counts_from <= m.month_end
    GROUP BY m.source_id, m.source, m.month_start, t.customer
)
SELECT source::text AS source, month_start AS month,
       count(*) FILTER (WHERE at_start IN ('new', 'active', 'at_risk', 'inactive')) AS base,
       count(*) FILTER (WHERE at_start IN ('new', 'active', 'at_risk', 'inactive')
                          AND at_end = 'lapsed') AS churned,
       count(*) FILTER (WHERE at_start IN ('inactive', 'lapsed') AND bought) AS reactivated,
       count(*) FILTER (WHERE coalesce(at_start, 'prospect') = 'prospect' AND bought) AS new,
       round(count(*) FILTER (WHERE at_start IN ('new', 'active', 'at_risk', 'inactive')
                                AND at_end = 'lapsed')::numeric
             / nullif(count(*) FILTER (WHERE at_start IN ('new', 'active', 'at_risk',
                                                           'inactive')), 0), 4) AS churn_rate
FROM per_customer
GROUP BY source_id, source, month_start;
