------------------------------------------------------------------------------------
-- Views of the playbooks for BI and the demo.
------------------------------------------------------------------------------------

CREATE VIEW lifecycle.actions_per_day AS
SELECT s.source::text AS source, (a.due_at AT TIME ZONE s.time_zone)::date AS day, a.channel,
       a.kind, count(*) AS actions,
       count(*) FILTER (WHERE a.status IN ('due', 'claimed')) AS pending,
       count(*) FILTER (WHERE a.status IN ('sent', 'delivered', 'opened', 'clicked', 'replied'))
           AS sent,
       count(*) FILTER (WHERE a.status IN ('opened', 'clicked', 'replied')) AS engaged,
       count(*) FILTER (WHERE a.status IN ('failed', 'bounced')) AS failed,
       count(*) FILTER (WHERE a.status = 'canceled') AS canceled
FROM lifecycle.actions a JOIN lifecycle.sources s ON s.id = a.source_id
GROUP BY s.source, s.time_zone, 2, a.channel, a.kind;
COMMENT ON VIEW lifecycle.actions_per_day IS
    'Actions per day (in the source''s time zone), channel and kind: made, pending, sent, engaged, failed, cancelled';

CREATE VIEW lifecycle.suppressions AS
SELECT s.source::text AS source, c.channel, coalesce(c.via, 'unknown') AS via,
       count(*) AS customers
FROM lifecycle.consent c JOIN lifecycle.sources s ON s.id = c.source_id
WHERE NOT c.granted
GROUP BY s.source, c.channel, c.via;
COMMENT ON VIEW lifecycle.suppressions IS
    'Customers who may not be contacted on a channel, by how it came about (an opt-out, a sunset)';

CREATE VIEW lifecycle.playbook_progress AS
SELECT e.playbook, s.source::text AS source, e.status, count(*) AS customers,
       count(*) FILTER (WHERE e.converted_on IS NOT NULL) AS reactivated
FROM lifecycle.enrollments e JOIN lifecycle.sources s ON s.id = e.source_id
GROUP BY e.playbook, s.source, e.status;
COMMENT ON VIEW lifecycle.playbook_progress IS 'Customers per playbook and state of their run';

-- Per playbook and month of enrolment, for enrolments whose attribution window has
-- closed: the share of customers who bought again within it, treated against held out,
-- the difference with a 95 % confidence interval (normal approximation for two
-- independent proportions), and revenue per customer in the window.
CREATE VIEW lifecycle.playbook_uplift AS
WITH closed AS (
    SELECT e.playbook, date_trunc('month', e.started_on)::date AS month, e.holdout,
           e.converted_on IS NOT NULL AS reactivated, coalesce(e.revenue, 0) AS revenue
    FROM lifecycle.enrollments e
    WHERE e.attribution_until < lifecycle.engine_date()
), rates AS (
    SELECT playbook, month,
           count(*) FILTER (WHERE NOT holdout) AS treated,
           count(*) FILTER (WHERE NOT holdout AND reactivated) AS treated_reactivated,
           count(*) FILTER (WHERE holdout) AS held_out,
           count(*) FILTER (WHERE holdout AND reactivated) AS held_out_reactivated,
           avg(revenue) FILTER (WHERE NOT holdout) AS revenue_per_treated,
           avg(revenue) FILTER (WHERE holdout) AS revenue_per_held_out
    FROM closed GROUP BY playbook, month
), shares AS (
    SELECT r.*, r.treated_reactivated::float8 / nullif(r.treated, 0) AS p1,
           r.held_out_reactivated::float8 / nullif(r.held_out, 0) AS p0
    FROM rates r
)
SELECT playbook, month, treated, treated_reactivated, p1 AS treated_rate, held_out,
       held_out_reactivated, p0 AS held_out_rate, p1 - p0 AS uplift,
       p1 - p0 - 1.959964 * sqrt(p1 * (1 - p1) / treated + p0 * (1 - p0) / held_out) AS uplift_low,
       p1 - p0 + 1.959964 * sqrt(p1 * (1 - p1) / treated + p0 * (1 - p0) / held_out) AS uplift_high,
       revenue_per_treated, revenue_per_held_out
FROM shares;
COMMENT ON VIEW lifecycle.playbook_uplift IS
    'Reactivation treated vs held out per playbook and month, with a 95 % interval, and revenue per customer';

-- Lapsed customers by the last reason recorded for them and value tier.
CREATE VIEW lifecycle.lapsed_by_reason AS
SELECT s.source::text AS source, coalesce(r.code, 'unknown') AS reason,
       lifecycle.value_tier(c.m) AS value_tier, count(*) AS customers,
       sum(c.spend) AS spend, avg(c.expected_value) AS average_expected_value
FROM lifecycle.customer_stage c
JOIN lifecycle.sources s ON s.id = c.source_id
LEFT JOIN LATERAL (SELECT x.code FROM lifecycle.customer_reasons x
                   WHERE x.source_id = c.source_id AND x.customer = c.customer
                   ORDER BY x.id DESC LIMIT 1) r ON true
WHERE c.stage = 'lapsed'
GROUP BY s.source, 2, 3;
COMMENT ON VIEW lifecycle.lapsed_by_reason IS
    'Lapsed customers by the reason recorded last (or unknown) and value tier, with their spend';
