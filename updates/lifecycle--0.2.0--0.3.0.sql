-- lifecycle 0.2.0 -> 0.3.0, as the change it is (ALTER EXTENSION lifecycle UPDATE).
-- 0.3.0 adds the stage history views and stage_flow() for BI, and a COMMENT on every
-- column of the stage table, the log and the views; report_action() no longer lets a
-- late report move an action's status back. Nothing stored changes: tracked
-- sources, their stage tables, logs, queues, models and playbooks carry on as they
-- are, and the worker may keep running (its tick waits for this script's locks).
\echo Use "ALTER EXTENSION lifecycle UPDATE TO '0.3.0'" to load this file. \quit

------------------------------------------------------------------------------------
-- New: the stage history (as in src/engine/history_views.sql)
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

------------------------------------------------------------------------------------
-- New: COMMENTs (as in src/comments.sql)
------------------------------------------------------------------------------------

COMMENT ON COLUMN lifecycle.customer_stage.source_id IS 'The tracked orders table (lifecycle.sources.id)';
COMMENT ON COLUMN lifecycle.customer_stage.customer IS 'The customer id, as text';
COMMENT ON COLUMN lifecycle.customer_stage.first_purchase IS 'Day of the first purchase (NULL while every order is dated in the future)';
COMMENT ON COLUMN lifecycle.customer_stage.last_purchase IS 'Day of the last purchase up to the engine''s date';
COMMENT ON COLUMN lifecycle.customer_stage.purchases IS 'Distinct purchase days up to the engine''s date';
COMMENT ON COLUMN lifecycle.customer_stage.spend IS 'Total amount of those orders (NULL without an amount column)';
COMMENT ON COLUMN lifecycle.customer_stage.stage IS 'Lifecycle stage as of the engine''s date (DESIGN.md''s definitions, the source''s policy)';
COMMENT ON COLUMN lifecycle.customer_stage.stage_since IS 'Day the customer entered the current stage';
COMMENT ON COLUMN lifecycle.customer_stage.next_change IS 'Day the stage changes if nothing is bought (NULL: never)';
COMMENT ON COLUMN lifecycle.customer_stage.next_order IS 'First order dated after the engine''s date, if any';
COMMENT ON COLUMN lifecycle.customer_stage.r IS 'RFM recency score, 1 (longest ago) to 5';
COMMENT ON COLUMN lifecycle.customer_stage.f IS 'RFM frequency score, 1 to 5 (most purchases)';
COMMENT ON COLUMN lifecycle.customer_stage.m IS 'RFM monetary score, 1 to 5 (highest spend)';
COMMENT ON COLUMN lifecycle.customer_stage.segment IS 'RFM segment (lifecycle.rfm_segment_rules)';
COMMENT ON COLUMN lifecycle.customer_stage.churn_risk IS 'Probability of no purchase within the horizon under the current model';
COMMENT ON COLUMN lifecycle.customer_stage.expected_value IS 'Expected lifetime value under the current model';
COMMENT ON COLUMN lifecycle.customer_stage.updated_at IS 'When the row was last written';

COMMENT ON COLUMN lifecycle.transitions.id IS 'Order of the transitions (commit order: refreshes run one at a time)';
COMMENT ON COLUMN lifecycle.transitions.source_id IS 'The tracked orders table (lifecycle.sources.id)';
COMMENT ON COLUMN lifecycle.transitions.customer IS 'The customer id, as text';
COMMENT ON COLUMN lifecycle.transitions.from_stage IS 'Stage before (prospect: not a customer yet)';
COMMENT ON COLUMN lifecycle.transitions.to_stage IS 'Stage after (prospect: every order deleted)';
COMMENT ON COLUMN lifecycle.transitions.effective IS 'Day the stage changed';
COMMENT ON COLUMN lifecycle.transitions.cause IS 'purchase, time (no purchase), correction (orders changed or resync) or initial (tracking began)';
COMMENT ON COLUMN lifecycle.transitions.logged_at IS 'When the transition was logged';

COMMENT ON VIEW lifecycle.stage_counts IS 'Customers per stage and tracked source, now';
COMMENT ON COLUMN lifecycle.stage_counts.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.stage_counts.stage IS 'Lifecycle stage';
COMMENT ON COLUMN lifecycle.stage_counts.customers IS 'Customers in the stage';
COMMENT ON COLUMN lifecycle.stage_counts.percent IS 'Share of the source''s customers, in percent';

COMMENT ON VIEW lifecycle.transitions_per_day IS 'Stage changes per day, from and to stage, and cause (initial ones left out)';
COMMENT ON COLUMN lifecycle.transitions_per_day.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.transitions_per_day.day IS 'Day the stages changed';
COMMENT ON COLUMN lifecycle.transitions_per_day.from_stage IS 'Stage before';
COMMENT ON COLUMN lifecycle.transitions_per_day.to_stage IS 'Stage after';
COMMENT ON COLUMN lifecycle.transitions_per_day.cause IS 'purchase, time or correction';
COMMENT ON COLUMN lifecycle.transitions_per_day.transitions IS 'Number of such changes that day';

COMMENT ON VIEW lifecycle.rfm_segment_counts IS 'Customers per RFM segment, with their average spend and purchases';
COMMENT ON COLUMN lifecycle.rfm_segment_counts.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.rfm_segment_counts.segment IS 'RFM segment';
COMMENT ON COLUMN lifecycle.rfm_segment_counts.customers IS 'Customers in the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_counts.average_spend IS 'Average total spend';
COMMENT ON COLUMN lifecycle.rfm_segment_counts.average_purchases IS 'Average number of purchase days';

COMMENT ON VIEW lifecycle.churn_per_month IS 'Churn per complete month since tracking began, by DESIGN.md''s definition, from the log';
COMMENT ON COLUMN lifecycle.churn_per_month.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.churn_per_month.month IS 'First day of the month';
COMMENT ON COLUMN lifecycle.churn_per_month.base IS 'Customers new, active, at_risk or inactive at the month''s start';
COMMENT ON COLUMN lifecycle.churn_per_month.churned IS 'Of the base, lapsed at the month''s end';
COMMENT ON COLUMN lifecycle.churn_per_month.reactivated IS 'Inactive or lapsed at the start who bought during the month';
COMMENT ON COLUMN lifecycle.churn_per_month.new IS 'Customers whose first purchase was in the month';
COMMENT ON COLUMN lifecycle.churn_per_month.churn_rate IS 'churned / base';

COMMENT ON VIEW lifecycle.rfm_segment_rules IS 'The RFM segment rules in force';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.segment IS 'Segment name';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.r_low IS 'Lowest recency score of the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.r_high IS 'Highest recency score of the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.f_low IS 'Lowest frequency score of the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.f_high IS 'Highest frequency score of the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.m_low IS 'Lowest monetary score of the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.m_high IS 'Highest monetary score of the segment';

COMMENT ON COLUMN lifecycle.worker_status.database IS 'This database';
COMMENT ON COLUMN lifecycle.worker_status.pid IS 'Process id of the worker''s last tick';
COMMENT ON COLUMN lifecycle.worker_status.running IS 'Whether that process is alive';
COMMENT ON COLUMN lifecycle.worker_status.state IS 'Its state in pg_stat_activity';
COMMENT ON COLUMN lifecycle.worker_status.started_at IS 'When the process started';
COMMENT ON COLUMN lifecycle.worker_status.ticks IS 'Ticks completed';
COMMENT ON COLUMN lifecycle.worker_status.errors IS 'Ticks failed';
COMMENT ON COLUMN lifecycle.worker_status.consecutive_errors IS 'Ticks failed in a row, now';
COMMENT ON COLUMN lifecycle.worker_status.last_tick_at IS 'When the last tick ended';
COMMENT ON COLUMN lifecycle.worker_status.last_tick_ms IS 'How long it took, in milliseconds';
COMMENT ON COLUMN lifecycle.worker_status.last_customers IS 'Customers it recomputed or stepped';
COMMENT ON COLUMN lifecycle.worker_status.last_transitions IS 'Transitions it logged';
COMMENT ON COLUMN lifecycle.worker_status.last_error IS 'Message of the last failed tick';
COMMENT ON COLUMN lifecycle.worker_status.last_error_at IS 'When it failed';
COMMENT ON COLUMN lifecycle.worker_status.queued IS 'Changes waiting in the queue';
COMMENT ON COLUMN lifecycle.worker_status.due IS 'Customers whose stage change is due';

COMMENT ON COLUMN lifecycle.actions_per_day.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.actions_per_day.day IS 'Day the actions were due, in the source''s time zone';
COMMENT ON COLUMN lifecycle.actions_per_day.channel IS 'Channel';
COMMENT ON COLUMN lifecycle.actions_per_day.kind IS 'message or sunset';
COMMENT ON COLUMN lifecycle.actions_per_day.actions IS 'Actions made due';
COMMENT ON COLUMN lifecycle.actions_per_day.pending IS 'Not yet reported (due or claimed)';
COMMENT ON COLUMN lifecycle.actions_per_day.sent IS 'Reported sent or further (delivered, opened, clicked, replied)';
COMMENT ON COLUMN lifecycle.actions_per_day.engaged IS 'Opened, clicked or replied';
COMMENT ON COLUMN lifecycle.actions_per_day.failed IS 'Failed or bounced';
COMMENT ON COLUMN lifecycle.actions_per_day.canceled IS 'Cancelled (a purchase, a click, an opt-out)';

COMMENT ON COLUMN lifecycle.suppressions.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.suppressions.channel IS 'Channel';
COMMENT ON COLUMN lifecycle.suppressions.via IS 'Where the opt-out came from (sunset: the engine)';
COMMENT ON COLUMN lifecycle.suppressions.customers IS 'Customers not to contact on the channel';

COMMENT ON COLUMN lifecycle.playbook_progress.playbook IS 'Playbook';
COMMENT ON COLUMN lifecycle.playbook_progress.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.playbook_progress.status IS 'running, held_out, finished, converted, engaged, opted_out or sunset';
COMMENT ON COLUMN lifecycle.playbook_progress.customers IS 'Enrolments in that state';
COMMENT ON COLUMN lifecycle.playbook_progress.reactivated IS 'Of those, with a purchase in the attribution window';

COMMENT ON COLUMN lifecycle.playbook_uplift.playbook IS 'Playbook';
COMMENT ON COLUMN lifecycle.playbook_uplift.month IS 'Month of enrolment (windows closed)';
COMMENT ON COLUMN lifecycle.playbook_uplift.treated IS 'Customers contacted (not held out)';
COMMENT ON COLUMN lifecycle.playbook_uplift.treated_reactivated IS 'Of those, with a purchase in the window';
COMMENT ON COLUMN lifecycle.playbook_uplift.treated_rate IS 'treated_reactivated / treated';
COMMENT ON COLUMN lifecycle.playbook_uplift.held_out IS 'Customers held out';
COMMENT ON COLUMN lifecycle.playbook_uplift.held_out_reactivated IS 'Of those, with a purchase in the window';
COMMENT ON COLUMN lifecycle.playbook_uplift.held_out_rate IS 'held_out_reactivated / held_out';
COMMENT ON COLUMN lifecycle.playbook_uplift.uplift IS 'treated_rate - held_out_rate';
COMMENT ON COLUMN lifecycle.playbook_uplift.uplift_low IS 'Lower end of the 95 % interval of the uplift';
COMMENT ON COLUMN lifecycle.playbook_uplift.uplift_high IS 'Upper end of the 95 % interval of the uplift';
COMMENT ON COLUMN lifecycle.playbook_uplift.revenue_per_treated IS 'Revenue in the window per treated customer';
COMMENT ON COLUMN lifecycle.playbook_uplift.revenue_per_held_out IS 'Revenue in the window per held-out customer';

COMMENT ON COLUMN lifecycle.lapsed_by_reason.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.lapsed_by_reason.reason IS 'Reason code recorded last for the customer, or unknown';
COMMENT ON COLUMN lifecycle.lapsed_by_reason.value_tier IS 'low, mid or high (RFM monetary score)';
COMMENT ON COLUMN lifecycle.lapsed_by_reason.customers IS 'Lapsed customers';
COMMENT ON COLUMN lifecycle.lapsed_by_reason.spend IS 'Their total spend';
COMMENT ON COLUMN lifecycle.lapsed_by_reason.average_expected_value IS 'Their average expected lifetime value';

COMMENT ON VIEW lifecycle.stage_history IS 'Each customer''s stages as intervals of days, from the log';
COMMENT ON COLUMN lifecycle.stage_history.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.stage_history.customer IS 'The customer id, as text';
COMMENT ON COLUMN lifecycle.stage_history.stage IS 'Lifecycle stage';
COMMENT ON COLUMN lifecycle.stage_history.since IS 'First day in the stage';
COMMENT ON COLUMN lifecycle.stage_history.until IS 'Day the next stage began (NULL: still in it)';
COMMENT ON COLUMN lifecycle.stage_history.cause IS 'Cause of the transition into the stage';
COMMENT ON COLUMN lifecycle.stage_history.transition_id IS 'That transition (lifecycle.transitions.id)';

COMMENT ON VIEW lifecycle.stage_counts_daily IS 'Customers per stage at the end of every day since tracking began';
COMMENT ON COLUMN lifecycle.stage_counts_daily.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.stage_counts_daily.day IS 'Day';
COMMENT ON COLUMN lifecycle.stage_counts_daily.stage IS 'Lifecycle stage';
COMMENT ON COLUMN lifecycle.stage_counts_daily.customers IS 'Customers in the stage at the end of the day';

COMMENT ON VIEW lifecycle.cohort_retention IS 'Customers by month of first purchase, and how many were not lapsed at the end of each later month';
COMMENT ON COLUMN lifecycle.cohort_retention.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.cohort_retention.cohort IS 'Month of the first purchase';
COMMENT ON COLUMN lifecycle.cohort_retention.customers IS 'Customers of the cohort';
COMMENT ON COLUMN lifecycle.cohort_retention.month IS 'A complete month since tracking began';
COMMENT ON COLUMN lifecycle.cohort_retention.months_since IS 'Months from the cohort''s month';
COMMENT ON COLUMN lifecycle.cohort_retention.retained IS 'Customers of the cohort in any stage but lapsed at the month''s end';
COMMENT ON COLUMN lifecycle.cohort_retention.retention IS 'retained / customers';

COMMENT ON FUNCTION lifecycle.stage_flow(regclass, date, date) IS
    'Customers per (stage at the end of from_day, stage at the end of to_day), from the log';

------------------------------------------------------------------------------------
-- Changed: report_action() moves an action's status only forward (as in
-- src/engagement/actions.sql); CREATE OR REPLACE keeps its owner and grants.
------------------------------------------------------------------------------------

-- Records an outcome of action `action_id`: sent, delivered, opened, clicked, replied,
-- bounced, or failed (with retry_after: due again then; without: given up). The same
-- outcome reported twice for the same attempt is ignored, and the status only moves
-- forward (due, failed, sent, delivered or bounced, opened, clicked, replied). A report
-- is taken from whoever makes it, after a lease ran out too: it counts for the current
-- attempt. A click or a reply stops the
-- series when the playbook says so: its other actions not yet reported are cancelled at
-- once, and the scheduler ends the enrolment before its next step (the application's
-- transaction never locks an enrolment, which the worker writes: docs/playbooks.md).
-- Returns the action's status.
CREATE OR REPLACE FUNCTION lifecycle.report_action(action_id bigint, outcome text, detail text DEFAULT NULL,
                                        retry_after interval DEFAULT NULL,
                                        consumer text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a lifecycle.actions;
    -- Outcomes only move an action forward: a late 'sent' does not undo 'bounced', nor a
    -- late 'failed' a 'replied'. Equal ranks keep what came first.
    ranks constant jsonb := '{"due": 0, "claimed": 0, "failed": 1, "sent": 2, "delivered": 3,
                              "bounced": 3, "opened": 4, "clicked": 5, "replied": 6}';
    stops text[];
BEGIN
    IF outcome IS NULL OR outcome NOT IN ('sent', 'delivered', 'opened', 'clicked', 'replied',
                                          'bounced', 'failed') THEN
        RAISE EXCEPTION 'argument "outcome": % is not an outcome (sent, delivered, opened, clicked, replied, bounced or failed)',
            coalesce(quote_literal(outcome), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF retry_after IS NOT NULL AND (outcome <> 'failed' OR retry_after < interval '0') THEN
        RAISE EXCEPTION 'argument "retry_after" goes only with outcome failed, and is not negative'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO a FROM lifecycle.actions x WHERE x.id = action_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'argument "action_id": there is no action %', coalesce(action_id::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO lifecycle.action_outcomes (action_id, attempt, outcome, consumer, detail)
    VALUES (a.id, a.attempts, outcome, consumer, detail)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND OR a.status = 'canceled' THEN
        RETURN a.status;   -- a repeat, or too late: nothing changes
    END IF;
    a.status := CASE
        WHEN (ranks ->> a.status)::int >= (ranks ->> outcome)::int THEN a.status
        WHEN outcome = 'failed' AND retry_after IS NOT NULL THEN 'due'
        ELSE outcome END;
    UPDATE lifecycle.actions x
    SET status = a.status, updated_at = now(),
        due_at = CASE WHEN a.status = 'due' THEN now() + retry_after ELSE x.due_at END,
        claimed_by = CASE WHEN a.status = 'due' THEN NULL ELSE x.claimed_by END,
        claim_expires = CASE WHEN a.status = 'due' THEN NULL ELSE x.claim_expires END
    WHERE x.id = a.id;
    stops := (SELECT p.stop_on FROM lifecycle.playbooks p WHERE p.name = a.playbook);
    IF (outcome = 'clicked' AND 'click' = ANY (stops)) OR (outcome = 'replied' AND 'reply' = ANY (stops)) THEN
        UPDATE lifecycle.actions x SET status = 'canceled', updated_at = now()
        WHERE x.enrollment_id = a.enrollment_id AND x.id <> a.id AND x.kind = 'message'
          AND x.status IN ('due', 'claimed');
    END IF;
    RETURN a.status;
END
$$;

------------------------------------------------------------------------------------
-- Privileges of the new objects (as src/privileges.sql gives them on a fresh install):
-- a new function is executable by PUBLIC unless revoked.
------------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION lifecycle.stage_flow(regclass, date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle.stage_flow(regclass, date, date)
    TO lifecycle_reader, lifecycle_worker;
GRANT SELECT ON lifecycle.stage_history, lifecycle.stage_counts_daily, lifecycle.cohort_retention
    TO lifecycle_reader;
