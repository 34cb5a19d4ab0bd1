-- lifecycle 0.2.0 -> 0.3.0, as the change it is (ALTER EXTENSION lifecycle UPDATE).
-- 0.3.0 adds the stage history views and stage_flow() for BI, and a COMMENT on every
-- column of the stage table, the log and the views; report_action() no longer lets a
-- late report move an action's status back; track() takes a watermark column (new
-- columns in lifecycle.sources, NULL for the sources tracked before, which keep their
-- triggers). Tracked sources, their stage tables, logs, queues, models and playbooks
-- carry on as they are, and the worker may keep running (its tick waits for this
-- script's locks).
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
COMMENT ON COLUMN lifecycle.worker_status.queued IS
    'Changes waiting in the queue: orders inserted, customers updated or deleted';
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
-- Changed: the change queue has no index on the customer any more (writers paid for
-- it on every queued row; refresh() reads the queue in id order).
------------------------------------------------------------------------------------

DROP INDEX lifecycle.change_queue_source_id_customer_idx;

------------------------------------------------------------------------------------
-- Changed: an INSERT into a trigger-tracked source queues its orders in rows of up to
-- 1,000 (arrays of customers, days and amounts) instead of a row per customer and day,
-- and worker_status.queued counts the orders (as in src/engine/tables.sql, capture.sql
-- and views.sql; the view is replaced below, with the due index). refresh() reads both
-- kinds: rows queued before this update are taken as they are.
------------------------------------------------------------------------------------

ALTER TABLE lifecycle.change_queue
    ADD COLUMN customers text[] COLLATE "C",
    ADD COLUMN days date[],
    ADD COLUMN spends double precision[];

------------------------------------------------------------------------------------
-- Changed: enrolments keep one index fewer. The unique key leads with the customer, so
-- it also finds a customer's enrolments, and the separate (source_id, customer) index
-- goes (every enrolment and every step wrote both).
------------------------------------------------------------------------------------

ALTER TABLE lifecycle.enrollments
    ADD CONSTRAINT enrollments_source_id_customer_playbook_episode_key
    UNIQUE (source_id, customer, playbook, episode);
ALTER TABLE lifecycle.enrollments
    DROP CONSTRAINT enrollments_playbook_source_id_customer_episode_key;
DROP INDEX lifecycle.enrollments_source_id_customer_idx;

------------------------------------------------------------------------------------
-- New: watermark capture (as in src/engine/capture.sql): track(..., watermark_column)
-- reads new rows by their id instead of an INSERT trigger, and works on Citus.
------------------------------------------------------------------------------------

ALTER TABLE lifecycle.sources
    ADD COLUMN watermark_column name,
    ADD COLUMN watermark_type regtype,
    ADD COLUMN watermark_sequence regclass,
    ADD COLUMN watermark bigint,
    ADD COLUMN watermark_seen bigint,
    ADD COLUMN watermark_holders text[],
    ADD COLUMN watermark_floors bigint[];

------------------------------------------------------------------------------------
-- Watermark capture: new rows read by their id, no trigger on INSERT
------------------------------------------------------------------------------------
-- A source tracked with a watermark column (an identity or serial column, filled by its
-- sequence) has no INSERT trigger: each refresh reads the rows whose id lies between the
-- watermark and a new, safe bound, and gathers them as if the trigger had queued them. The bound
-- must be safe against transactions that commit out of id order: a row with a smaller id
-- may commit after a larger one. nextval() keeps a lock on the sequence until its
-- transaction ends, so every id up to the sequence's position P, read first, belongs to
-- a transaction that has ended or holds that lock now. A holder seen for the first time
-- took its ids after the previous capture's look at the holders, hence above that
-- capture's position; a holder seen before keeps the floor it was given then. The bound
-- is P, or the lowest floor of a holder still running: every id up to it is final (its
-- row committed, and seen by the next statement's snapshot, or never will be). Rows above
-- the watermark are not counted anywhere (the recomputations read up to it), so each
-- row is counted once. Why this design, and what it asks of the table: docs/design.md.

-- Per customer and day, the spend of watermark source `source_id`'s rows with ids in
-- (after, upto], read as the table's owner (src/pg/source_reader.cpp).
CREATE FUNCTION lifecycle._source_new_orders(source_id integer, after bigint, upto bigint)
RETURNS TABLE (customer text, day date, spend double precision)
AS 'MODULE_PATHNAME', 'lifecycle_source_new_orders' LANGUAGE C VOLATILE;

-- The id of the n-th row of watermark source `source_id` above `after` (at most `upto`),
-- read as the table's owner.
CREATE FUNCTION lifecycle._source_id_cap(source_id integer, after bigint, upto bigint, n bigint)
RETURNS TABLE (id bigint)
AS 'MODULE_PATHNAME', 'lifecycle_source_id_cap' LANGUAGE C VOLATILE;

-- The last value the sequence of watermark source `source_id` handed out, read as the
-- table's owner.
CREATE FUNCTION lifecycle._sequence_position(source_id integer)
RETURNS TABLE (last_value bigint)
AS 'MODULE_PATHNAME', 'lifecycle_sequence_position' LANGUAGE C VOLATILE;

-- The transactions (virtual ids) other than this one holding or awaiting a lock on
-- `sequence`, in order.
CREATE FUNCTION lifecycle._sequence_holders(sequence regclass) RETURNS text[]
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
RETURN (SELECT coalesce(array_agg(DISTINCT l.virtualtransaction ORDER BY l.virtualtransaction),
                        '{}')
        FROM pg_locks l
        WHERE l.locktype = 'relation' AND l.relation = sequence
          AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
          AND l.pid IS DISTINCT FROM pg_backend_pid());

-- Whether any of the transactions `holders` (virtual ids) still holds or awaits a lock on
-- `sequence` (a prepared transaction keeps its locks too).
CREATE FUNCTION lifecycle._still_holding(sequence regclass, holders text[]) RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM pg_locks l
               WHERE l.virtualtransaction = ANY (holders)
                 AND l.locktype = 'relation' AND l.relation = sequence);

-- Moves the watermark of source `s` to a safe bound, past at most `budget` rows, and
-- hands the rows it passed to the gather that follows (pg_temp.lifecycle_new, read by
-- _collect_queued in the same refresh). Returns whether the budget held it back (more rows are
-- ready). Only in READ COMMITTED, where the read's snapshot is taken after the holders
-- were looked at; in a snapshot taken earlier a holder that has ended since might not
-- show its rows, so the watermark then stays.
CREATE FUNCTION lifecycle._capture_watermark(s lifecycle.sources, budget bigint) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    position bigint;
    holders text[];
    floors bigint[];
    bound bigint;
    safe bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN false;
    END IF;
    -- the position first, then the holders (see above)
    position := coalesce((SELECT p.last_value
                          FROM lifecycle._sequence_position(s.id) p),
                         s.watermark_seen);
    IF position = s.watermark_seen AND s.watermark = s.watermark_seen THEN
        RETURN false;   -- no id handed out since the last look, none held back: no read
    END IF;
    holders := lifecycle._sequence_holders(s.watermark_sequence);
    SELECT coalesce(array_agg(coalesce(f.floor, s.watermark_seen) ORDER BY h.ord), '{}')
    INTO floors
    FROM unnest(holders) WITH ORDINALITY AS h (holder, ord)
    LEFT JOIN unnest(s.watermark_holders, s.watermark_floors) AS f (holder, floor)
      ON f.holder = h.holder;
    safe := greatest(s.watermark, least(position, (SELECT min(x) FROM unnest(floors) AS x)));
    bound := safe;
    IF safe > s.watermark THEN
        -- (any id up to a safe bound is a safe bound too)
        bound := (SELECT c.id FROM lifecycle._source_id_cap(s.id, s.watermark, safe, budget) c);
        -- for the gather that follows (_collect_queued), as if queued
        PERFORM lifecycle._work_table();
        INSERT INTO pg_temp.lifecycle_new (customer, day, spend)
        SELECT n.customer, n.day, n.spend
        FROM lifecycle._source_new_orders(s.id, s.watermark, bound) AS n;
        -- the rows it left out, recorded as the INSERT trigger records them
        INSERT INTO lifecycle.rejected_rows (source_id, reason, customer, amount, row_count)
        SELECT r.source, r.reason, r.customer, r.amount, r.row_count
        FROM lifecycle._source_rejected(s.id, s.watermark, bound) AS r;
    END IF;
    UPDATE lifecycle.sources t
    SET watermark = bound, watermark_seen = position, watermark_holders = holders,
        watermark_floors = floors
    WHERE t.id = s.id;
    RETURN bound < safe;
END
$$;
-- Whether `tab` is a table distributed by Citus (whose shards live on other nodes: no
-- trigger on it sees their rows).
CREATE FUNCTION lifecycle._is_distributed(tab regclass) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found boolean := false;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)'
            INTO found USING tab;
    END IF;
    RETURN found;
END
$$;

-- Checks that column `col` of `tab` can serve as a watermark, and fills in the source's
-- watermark columns: an integer column filled by its own sequence (identity or serial),
-- cached one value at a time and increasing, so that ids are handed out in time order.
CREATE FUNCTION lifecycle._watermark_of(tab regclass, col name, s lifecycle.sources)
RETURNS lifecycle.sources
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    seq pg_sequence;
BEGIN
    s.watermark_column := col;
    s.watermark_type := lifecycle._column_type(tab, col, 'watermark_column', 'watermark');
    s.watermark_sequence := pg_get_serial_sequence(tab::text, col)::regclass;
    IF s.watermark_sequence IS NULL THEN
        RAISE EXCEPTION 'argument "watermark_column": column % of % is not filled by a sequence of its own',
            quote_ident(col), tab
            USING ERRCODE = '22023',
                  HINT = 'Use an identity column (GENERATED ALWAYS AS IDENTITY) or a serial/bigserial column.';
    END IF;
    SELECT * INTO seq FROM pg_sequence q WHERE q.seqrelid = s.watermark_sequence;
    IF seq.seqcache <> 1 OR seq.seqincrement <= 0 THEN
        RAISE EXCEPTION 'argument "watermark_column": the sequence % of % hands out ids out of time order (CACHE %, INCREMENT %)',
            s.watermark_sequence, tab, seq.seqcache, seq.seqincrement
            USING ERRCODE = '22023',
                  HINT = format('ALTER SEQUENCE %s CACHE 1 INCREMENT 1;', s.watermark_sequence);
    END IF;
    RETURN s;
END
$$;

-- The watermark at which a source tracked now starts: the sequence's position, once every
-- transaction that held the sequence then has ended (waiting for them the way CREATE
-- INDEX CONCURRENTLY does, without blocking new writers). The rows up to it are counted
-- by track()'s initial read, those above by the refreshes.
CREATE FUNCTION lifecycle._watermark_start(s lifecycle.sources) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    position bigint := coalesce((SELECT p.last_value FROM lifecycle._sequence_position(s.id) p), 0);
    holders text[] := lifecycle._sequence_holders(s.watermark_sequence);
    patience interval := current_setting('lock_timeout')::interval;
    deadline timestamptz := clock_timestamp() + patience;
    waited_for text;
BEGIN
    WHILE lifecycle._still_holding(s.watermark_sequence, holders) LOOP
        IF patience > interval '0' AND clock_timestamp() >= deadline THEN
            SELECT string_agg(DISTINCT format('pid %s (virtual transaction %s)', l.pid,
                                              l.virtualtransaction), ', ')
            INTO waited_for
            FROM pg_locks l
            WHERE l.virtualtransaction = ANY (holders)
              AND l.locktype = 'relation' AND l.relation = s.watermark_sequence;
            RAISE EXCEPTION 'argument "watermark_column": gave up after % waiting for the transactions that hold sequence % to end: %',
                current_setting('lock_timeout'), s.watermark_sequence, waited_for
                USING ERRCODE = '55P03',
                      DETAIL = 'track() starts the watermark where every id handed out so far is final.',
                      HINT = 'Retry once those transactions have committed or rolled back.';
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN position;
END
$$;

DROP FUNCTION lifecycle.track(regclass, name, name, name, text);
DROP FUNCTION lifecycle._track(regclass, name, name, name, text);

-- Starts following an orders table: checks the table and its columns, installs the
-- triggers and fills the stage table (each customer's stage is logged as an 'initial'
-- transition, without NOTIFY). Returns the source's id. Only the table's owner may
-- (the gate checks it); the work is done by _track as the extension's owner. With a
-- watermark column, new rows are read by their id instead of queued by an INSERT trigger
-- (see _capture_watermark); on a table distributed by Citus that is the only way, and no
-- trigger is installed at all (resync() then repairs UPDATEs and DELETEs).
CREATE FUNCTION lifecycle.track(source regclass, customer_column name, time_column name,
                                amount_column name DEFAULT NULL, policy text DEFAULT 'default',
                                watermark_column name DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'lifecycle_owner_gate' LANGUAGE C;

CREATE FUNCTION lifecycle._track(tab regclass, customer_col name, time_col name,
                                 amount_col name, policy_name text, watermark_col name)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s lifecycle.sources;
    trig text;
    distributed boolean := lifecycle._is_distributed(tab);
    caller_lock_timeout text;
BEGIN
    -- No refresh lock: nothing a tick reads or writes is touched here until this commits
    -- (the new source's rows are its own), and its 'initial' transitions are never
    -- announced nor enrolled, so their ids need not follow commit order (docs/design.md).
    caller_lock_timeout := lifecycle._bound_waits();
    IF NOT EXISTS (SELECT FROM lifecycle.policies p WHERE p.name = policy_name) THEN
        RAISE EXCEPTION 'argument "policy": no policy named "%"', policy_name
            USING ERRCODE = '22023', HINT = 'The policies are in lifecycle.policies.';
    END IF;
    IF EXISTS (SELECT FROM lifecycle.sources t WHERE t.source = tab) THEN
        RAISE EXCEPTION 'argument "source": % is tracked already', tab
            USING ERRCODE = '42710', HINT = 'Call lifecycle.untrack first to change how.';
    END IF;
    PERFORM lifecycle._check_trackable(tab);
    IF distributed AND watermark_col IS NULL THEN
        RAISE EXCEPTION 'argument "watermark_column": % is distributed by Citus, where no trigger sees the rows',
            tab
            USING ERRCODE = '0A000',
                  HINT = 'Track it by a watermark: an identity or bigserial column, e.g. watermark_column => ''id''.';
    END IF;
    IF watermark_col IS NOT NULL THEN
        s := lifecycle._watermark_of(tab, watermark_col, s);
    END IF;
    s.customer_type := lifecycle._column_type(tab, customer_col, 'customer_column', 'customer');
    s.time_type := lifecycle._column_type(tab, time_col, 'time_column', 'time');
    IF amount_col IS NOT NULL THEN
        s.amount_type := lifecycle._column_type(tab, amount_col, 'amount_column', 'amount');
    END IF;
    INSERT INTO lifecycle.sources (source, customer_column, time_column, amount_column,
                                   customer_type, time_type, amount_type, time_zone, policy,
                                   tracked_on, watermark_column, watermark_type,
                                   watermark_sequence)
    VALUES (tab, customer_col, time_col, amount_col, s.customer_type, s.time_type,
            s.amount_type, current_setting('TimeZone'), policy_name, lifecycle.engine_date(),
            s.watermark_column, s.watermark_type, s.watermark_sequence)
    RETURNING * INTO s;
    IF watermark_col IS NOT NULL THEN
        s.watermark := lifecycle._watermark_start(s);
        UPDATE lifecycle.sources t
        SET watermark = s.watermark, watermark_seen = s.watermark, watermark_holders = '{}',
            watermark_floors = '{}'
        WHERE t.id = s.id;
    END IF;
    -- ENABLE ALWAYS: rows written with session_replication_role = replica are captured too.
    -- A watermark source's inserts are read by id; a distributed table gets no trigger.
    FOREACH trig IN ARRAY CASE WHEN distributed THEN '{}'::text[]
                               WHEN watermark_col IS NOT NULL THEN ARRAY['update', 'delete', 'truncate']
                               ELSE ARRAY['insert', 'update', 'delete', 'truncate'] END LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT
                        EXECUTE FUNCTION lifecycle._capture()',
                       'lifecycle_capture_' || trig, upper(trig), tab,
                       CASE trig WHEN 'insert' THEN 'REFERENCING NEW TABLE AS lifecycle_new'
                                 WHEN 'update' THEN 'REFERENCING OLD TABLE AS lifecycle_old
                                                     NEW TABLE AS lifecycle_new'
                                 WHEN 'delete' THEN 'REFERENCING OLD TABLE AS lifecycle_old'
                                 ELSE '' END);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', tab, 'lifecycle_capture_' || trig);
    END LOOP;
    IF NOT EXISTS (SELECT FROM pg_index i JOIN pg_attribute a
                       ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = tab AND a.attname = customer_col) THEN
        RAISE NOTICE 'no index on %(%): each refresh will scan the table',
            tab, quote_ident(customer_col)
            USING HINT = format('CREATE INDEX ON %s (%I);', tab, customer_col);
    END IF;
    PERFORM lifecycle._collect_all(s, s.tracked_on);
    -- the rows already there that the engine leaves out (those written later are
    -- recorded by the capture)
    INSERT INTO lifecycle.rejected_rows (source_id, reason, customer, amount, row_count)
    SELECT r.source, r.reason, r.customer, r.amount, r.row_count
    FROM lifecycle._source_rejected(s.id, NULL, NULL) AS r;
    PERFORM lifecycle._write_stages(s, s.tracked_on, 'initial');
    PERFORM lifecycle._rescore(s.id, s.tracked_on);
    PERFORM set_config('lock_timeout', caller_lock_timeout, true);
    RETURN s.id;
END
$$;

-- Whether the columns source `s` tracks are still there with the types they had at
-- track(). DDL that would change them is refused (see _on_ddl below); this is the check
-- for when event triggers did not run.
CREATE OR REPLACE FUNCTION lifecycle._columns_intact(s lifecycle.sources) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT count(*) FROM pg_attribute a
        WHERE a.attrelid = s.source AND a.attnum > 0 AND NOT a.attisdropped
          AND (a.attname, a.atttypid) IN ((s.customer_column, s.customer_type),
                                          (s.time_column, s.time_type),
                                          (s.amount_column, s.amount_type),
                                          (s.watermark_column, s.watermark_type)))
       = 2 + (s.amount_column IS NOT NULL)::int + (s.watermark_column IS NOT NULL)::int;

-- The type of column `col` of `tab`, which must be one the engine may track as `kind`,
-- or an ERROR naming the argument.
CREATE OR REPLACE FUNCTION lifecycle._column_type(tab regclass, col name, argument text, kind text)
RETURNS regtype
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t regtype;
    virtual boolean;
BEGIN
    SELECT atttypid, attgenerated = 'v' INTO t, virtual FROM pg_attribute
    WHERE attrelid = tab AND attname = col AND attnum > 0 AND NOT attisdropped;
    IF t IS NULL THEN
        RAISE EXCEPTION 'argument "%": % has no column %', argument, tab, quote_ident(col)
            USING ERRCODE = '42703';
    END IF;
    -- (PostgreSQL 18's virtual generated columns: computed when read, so the capture
    -- triggers' transition tables cannot give them; core says "unexpected virtual
    -- generated column reference" and the application's INSERT would fail.)
    IF virtual THEN
        RAISE EXCEPTION 'argument "%": column % of % is a virtual generated column, which the engine cannot track',
            argument, quote_ident(col), tab
            USING ERRCODE = '0A000',
                  HINT = 'Make it STORED, or track the column it is computed from.';
    END IF;
    IF NOT lifecycle._allowed_type(kind, t) THEN
        RAISE EXCEPTION 'argument "%": column % of % is of type %, which the engine cannot track',
            argument, quote_ident(col), tab, t
            USING ERRCODE = '42804',
                  HINT = CASE kind
                      WHEN 'customer' THEN 'Customer ids must be smallint, integer, bigint, text, varchar or uuid.'
                      WHEN 'time' THEN 'The time must be a date, timestamp or timestamptz.'
                      WHEN 'watermark' THEN 'A watermark must be a smallint, integer or bigint column filled by its own sequence.'
                      ELSE 'Amounts must be numeric, real, double precision, smallint, integer or bigint.' END
                  || ' Domains and user-defined types are refused: their code would run inside the engine.';
    END IF;
    RETURN t;
END
$$;

-- A watermark source's rows with ids above its sequence's position are never counted:
-- given explicit ids, or written through a Citus worker node (whose default draws from
-- that node's own range). resync() says so, once, rather than every tick.
CREATE FUNCTION lifecycle._warn_stray_ids(s lifecycle.sources) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    position bigint := coalesce((SELECT p.last_value FROM lifecycle._sequence_position(s.id) p), 0);
    stray bigint := (SELECT c.id FROM lifecycle._source_id_cap(s.id, position,
                                                               9223372036854775807, 1) c);
BEGIN
    IF stray < 9223372036854775807 THEN
        RAISE WARNING 'lifecycle: % has rows with % above its sequence''s position %, which are never counted (the first: %)',
            s.source, quote_ident(s.watermark_column), position, stray
            USING HINT = 'Rows given explicit ids, or written through a Citus worker node instead of the coordinator; see docs/citus.md.';
    END IF;
END
$$;

REVOKE ALL ON FUNCTION lifecycle._source_new_orders(integer, bigint, bigint),
    lifecycle._source_id_cap(integer, bigint, bigint, bigint),
    lifecycle._sequence_position(integer),
    lifecycle._sequence_holders(regclass),
    lifecycle._still_holding(regclass, text[]),
    lifecycle._capture_watermark(lifecycle.sources, bigint),
    lifecycle._is_distributed(regclass),
    lifecycle._watermark_of(regclass, name, lifecycle.sources),
    lifecycle._watermark_start(lifecycle.sources),
    lifecycle.track(regclass, name, name, name, text, name),
    lifecycle._track(regclass, name, name, name, text, name),
    lifecycle._warn_stray_ids(lifecycle.sources) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._source_new_orders(integer, bigint, bigint),
    lifecycle._source_id_cap(integer, bigint, bigint, bigint),
    lifecycle._sequence_position(integer),
    lifecycle._sequence_holders(regclass),
    lifecycle._still_holding(regclass, text[]),
    lifecycle._capture_watermark(lifecycle.sources, bigint),
    lifecycle._is_distributed(regclass),
    lifecycle._watermark_of(regclass, name, lifecycle.sources),
    lifecycle._watermark_start(lifecycle.sources),
    lifecycle.track(regclass, name, name, name, text, name),
    lifecycle._track(regclass, name, name, name, text, name),
    lifecycle._warn_stray_ids(lifecycle.sources) TO lifecycle_worker;
GRANT EXECUTE ON FUNCTION lifecycle.track(regclass, name, name, name, text, name) TO lifecycle_tracker;

------------------------------------------------------------------------------------
-- Changed: the stage table's due index is on a new column, wake_on (on or before
-- next_change, and left alone by a purchase while it lies ahead), so that the update of
-- a customer who buys changes no indexed column and is HOT; the table leaves 10 % of
-- each new page free for those updates (VACUUM FULL applies it to the pages it has).
------------------------------------------------------------------------------------

ALTER TABLE lifecycle.customer_stage ADD COLUMN wake_on date;
DROP INDEX lifecycle.customer_stage_due;
UPDATE lifecycle.customer_stage SET wake_on = next_change WHERE next_change IS NOT NULL;
CREATE INDEX customer_stage_due ON lifecycle.customer_stage (source_id, wake_on)
    WHERE wake_on IS NOT NULL;
ALTER TABLE lifecycle.customer_stage SET (fillfactor = 90);
-- The stage a purchase written at once moved the customer from (see _write_purchases).
ALTER TABLE lifecycle.customer_stage ADD COLUMN moved_from lifecycle.stage;
COMMENT ON COLUMN lifecycle.customer_stage.moved_from IS 'Engine bookkeeping: the stage the last purchase written at once moved the customer from (NULL: it stayed)';
COMMENT ON COLUMN lifecycle.customer_stage.wake_on IS 'When refresh() next looks at the customer: on or before next_change (a purchase leaves it be)';

CREATE OR REPLACE VIEW lifecycle.worker_status AS
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

------------------------------------------------------------------------------------
-- Changed: a plain purchase (days after the customer's last one, nothing else queued) is
-- written in one statement by the new _write_purchases() (with _wake_on(), the wake-day
-- rule it shares with _write_stages()); _collect_queued() gathers the
-- rest and now returns what that statement wrote (dropped and created again: its result
-- type changed), with the privileges src/privileges.sql gives them.
------------------------------------------------------------------------------------

DROP FUNCTION lifecycle._collect_queued(lifecycle.sources, date, bigint);

-- A customer's wake day (customer_stage.wake_on) when its row is written with next change
-- `next_change`: the day it had, `kept`, while that lies ahead and is not after the new
-- next change, so that the due index's column is unchanged and the update can be HOT;
-- else the next change itself (NULL with it).
CREATE FUNCTION lifecycle._wake_on(kept date, as_of date, next_change date) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN kept > as_of AND kept <= next_change THEN kept ELSE next_change END;

-- Takes the oldest queue rows of source `s` up to `budget` changes (whole rows: a row of
-- orders counts its orders), and the rows its watermark capture just read, one row per
-- customer into lifecycle_incoming. The common case, days on or after
-- the customer's last purchase day and nothing else, is written at once by
-- _write_purchases. The rest go into lifecycle_work for _write_stages: a new customer
-- with its days, a known one to be recomputed from the source (an UPDATE, a DELETE, a day
-- after as_of, a day before its last purchase, an order dated in the future), and the customers
-- whose future order came due. When the queue held a TRUNCATE every customer is
-- gathered. Returns the customers written at once and the transitions they logged.
CREATE FUNCTION lifecycle._collect_queued(s lifecycle.sources, as_of date, budget bigint,
                                          OUT written bigint, OUT logged bigint)
-- Index lookups, whatever the planner guesses of the scratch tables: the cost must follow
-- the number of changed customers, not the size of the stage table.
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    truncated boolean;
    corrected boolean;
BEGIN
    written := 0;
    logged := 0;
    PERFORM lifecycle._fold_rejected(s.id);
    PERFORM lifecycle._work_table();
    -- (empty unless an earlier source of this refresh used them; DELETE, not TRUNCATE,
    -- which would give each a new file and a catalog update every tick)
    DELETE FROM pg_temp.lifecycle_work;
    DELETE FROM pg_temp.lifecycle_incoming;
    DELETE FROM pg_temp.lifecycle_bought;
    -- The oldest queue rows up to `budget` changes (a row of orders counts its orders, any
    -- other row one): everything up to the id where the running count reaches it (a range
    -- of the primary key, read in order until then). No budget, no bound: the count that
    -- finds it is skipped.
    WITH taken AS (
        DELETE FROM lifecycle.change_queue q
        WHERE q.source_id = s.id
          AND (budget = 9223372036854775807
               OR q.id <= coalesce((SELECT k.id
                                    FROM (SELECT id, sum(coalesce(cardinality(customers), 1))
                                                     OVER (ORDER BY id) AS n
                                          FROM lifecycle.change_queue WHERE source_id = s.id) k
                                    WHERE k.n >= budget ORDER BY k.id LIMIT 1),
                                   9223372036854775807))
        RETURNING q.customer, q.day, q.spend, q.customers, q.days, q.spends, q.correction
    ), changes AS (    -- a row per order or changed customer
        SELECT t.customer, t.day, t.spend FROM taken t WHERE t.customers IS NULL
        UNION ALL
        SELECT o.customer, o.day, o.spend
        FROM taken t, unnest(t.customers, t.days, t.spends) AS o (customer, day, spend)
    ), captured AS (   -- what _capture_watermark just read of this source, if anything
        DELETE FROM pg_temp.lifecycle_new RETURNING customer, day, spend
    ), days AS (       -- per customer and day (several orders may be of the same day)
        SELECT customer, day, sum(spend) AS spend
        FROM (TABLE changes UNION ALL TABLE captured) q
        WHERE customer IS NOT NULL
        GROUP BY customer, day
    ), kept AS (
        INSERT INTO pg_temp.lifecycle_incoming (customer, first_day, last_day, days, spend, odd)
        SELECT customer, min(day), max(day), count(day), sum(spend),
               bool_or(day IS NULL OR day > as_of)
        FROM days GROUP BY customer
        ORDER BY customer  -- in the index's order: neighbouring customers share pages
    )
    SELECT coalesce(bool_or(customer IS NULL AND customers IS NULL), false),
           coalesce(bool_or(correction), false)
    INTO truncated, corrected
    FROM taken;
    IF truncated THEN
        PERFORM lifecycle._collect_all(s, as_of);
        IF corrected THEN
            -- resync()'s request: every change logged as a correction and every customer
            -- rescored, as resync() did itself before 0.3.0, but here, under the refresh
            -- lock, so that the corrections' ids follow commit order. Like the rest of a
            -- refresh's work, the purchases it finds count for enrolments (orders queued
            -- since the request are in this recomputation too).
            logged := lifecycle._write_stages(s, as_of, 'correction');
            PERFORM lifecycle._record_purchases(s);
            DELETE FROM pg_temp.lifecycle_work;
            PERFORM lifecycle._rescore(s.id, as_of);
        END IF;
        RETURN;
    END IF;
    SELECT w.written, w.logged INTO written, logged FROM lifecycle._write_purchases(s, as_of) w;
    -- The others: one primary-key probe each, whatever the statistics say (with a source
    -- tracked after the last ANALYZE the planner took its rows for one, kept them in a
    -- Materialize and joined by a filter: 180k queued x 20k known, 6 minutes).
    INSERT INTO pg_temp.lifecycle_work (customer, recompute, known, old_stage, old_last,
                                        old_spend, row_id, first_purchase, last_purchase,
                                        purchases, spend)
    SELECT i.customer, i.odd OR c.customer IS NOT NULL, c.customer IS NOT NULL, c.stage,
           c.last_purchase, c.spend, c.row_id,
           i.first_day, i.last_day, i.days, i.spend  -- (a known customer's: recomputed)
    FROM pg_temp.lifecycle_incoming i
    LEFT JOIN LATERAL (SELECT x.customer, x.stage, x.last_purchase, x.spend, x.ctid AS row_id
                       FROM lifecycle.customer_stage x
                       WHERE x.source_id = s.id AND x.customer = i.customer LIMIT 1) AS c
      ON true;
    -- Customers whose order dated in the future has come due.
    INSERT INTO pg_temp.lifecycle_work (customer, recompute, known, old_stage, old_last,
                                        old_spend, row_id)
    SELECT customer, true, true, stage, last_purchase, spend, ctid FROM lifecycle.customer_stage
    WHERE source_id = s.id AND wake_on <= as_of AND next_change <= as_of AND next_order <= as_of
    ON CONFLICT (customer) DO UPDATE SET recompute = true;
    IF EXISTS (SELECT FROM pg_temp.lifecycle_work WHERE recompute) THEN
        PERFORM lifecycle._recompute_from_source(s, as_of, false);
    END IF;
END
$$;

-- Writes, in one statement, the customers of lifecycle_incoming whose new days all come
-- on or after their last purchase day, with nothing else queued (no UPDATE, DELETE, future
-- day, nor a future order of theirs): the new history is the old one plus those days (the
-- last purchase day counted once), so the row
-- is updated where the primary key finds it, its stage, next change and scores computed
-- as it is written, and a transition logged if the stage changed (moved_from is the
-- stage it left: an UPDATE returns only the new row). It is the one path a plain
-- purchase takes, without a scratch row in lifecycle_work. They leave
-- lifecycle_incoming, for lifecycle_bought when the source has enrolments to count them
-- for (_record_purchases). Returns the customers written and the transitions logged.
CREATE FUNCTION lifecycle._write_purchases(s lifecycle.sources, as_of date,
                                           OUT written bigint, OUT logged bigint)
-- Whatever the planner guesses of the stage table: the rows are read by one index scan of
-- the primary key for the incoming customers (= ANY of their ids: one descent each, as
-- many rows as customers) and hash-joined to lifecycle_incoming; nested loops are off.
-- A plain join let the planner, on statistics that knew nothing of a newly tracked
-- source, run a nested loop over the source's rows with a scan of lifecycle_incoming
-- inside: 10k x 5k rows, 7 s a tick (bench/latency.sh p99 14 s). (Probing each customer's
-- ctid first and writing through a TID scan is as safe, but costs about 20 % of a 10k
-- tick against 6 % for this, in paired runs.)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = on SET enable_mergejoin = off SET enable_nestloop = off AS $$
DECLARE
    model lifecycle.models := lifecycle._scoring_model();
    horizon integer := lifecycle._churn_horizon(model, s.policy);
    -- (lifecycle_bought is read only against enrolments: none, nothing to keep)
    enrolled boolean := EXISTS (SELECT FROM lifecycle.enrollments e WHERE e.source_id = s.id);
BEGIN
    WITH changed AS (
        UPDATE lifecycle.customer_stage c
        SET (last_purchase, purchases, spend, stage, stage_since, next_change, wake_on,
             r, f, m, segment, churn_risk, expected_value, moved_from, updated_at) = (
            SELECT h.last, h.n, h.spend, x.stage,
                   CASE WHEN x.stage = c.stage THEN c.stage_since ELSE as_of END,
                   x.next_change,
                   lifecycle._wake_on(c.wake_on, as_of, x.next_change),
                   (x.rfm).r, (x.rfm).f, (x.rfm).m, (x.rfm).segment,
                   lifecycle._churn_risk(model, c.first_purchase, h.last, h.n, as_of, horizon),
                   lifecycle._expected_value(model, c.first_purchase, h.last, h.n, h.spend, as_of),
                   CASE WHEN x.stage <> c.stage THEN c.stage END, now()
            FROM (SELECT i.last_day AS last,
                         c.purchases + i.days
                             - CASE WHEN i.first_day = c.last_purchase THEN 1 ELSE 0 END AS n,
                         CASE WHEN c.spend IS NULL AND i.spend IS NULL THEN NULL
                              ELSE coalesce(c.spend, 0) + coalesce(i.spend, 0) END AS spend) h
            CROSS JOIN LATERAL (
                SELECT lifecycle.lifecycle_stage(c.first_purchase, h.last, h.n, as_of, s.policy)
                           AS stage,
                       lifecycle.next_stage_change(c.first_purchase, h.last, h.n, as_of, s.policy)
                           AS next_change,
                       lifecycle._rfm_of(c.first_purchase, h.last, h.n, h.spend, as_of,
                                         s.rfm_breakpoints) AS rfm
                OFFSET 0) x)   -- (each function once, not once per column it feeds)
        FROM pg_temp.lifecycle_incoming i
        WHERE c.source_id = s.id
          AND c.customer = ANY (ARRAY(SELECT n.customer FROM pg_temp.lifecycle_incoming n
                                      WHERE NOT n.odd))
          AND c.customer = i.customer AND NOT i.odd
          AND c.next_order IS NULL AND i.first_day >= c.last_purchase
        RETURNING c.customer, c.moved_from, c.stage, c.last_purchase, i.spend, i.ctid AS taken
    ), transitions AS (
        INSERT INTO lifecycle.transitions (source_id, customer, from_stage, to_stage, effective,
                                           cause)
        SELECT s.id, x.customer, x.moved_from, x.stage, as_of, 'purchase'
        FROM changed x WHERE x.moved_from IS NOT NULL
        ORDER BY x.customer
        RETURNING 1
    ), bought AS (
        INSERT INTO pg_temp.lifecycle_bought (customer, last_purchase, spend_added)
        SELECT customer, last_purchase, spend FROM changed WHERE enrolled
    ), done AS (
        DELETE FROM pg_temp.lifecycle_incoming
        WHERE ctid = ANY (ARRAY(SELECT taken FROM changed))
    )
    SELECT (SELECT count(*) FROM changed), (SELECT count(*) FROM transitions)
    INTO written, logged;
END
$$;

REVOKE ALL ON FUNCTION lifecycle._collect_queued(lifecycle.sources, date, bigint),
                       lifecycle._write_purchases(lifecycle.sources, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._collect_queued(lifecycle.sources, date, bigint),
                          lifecycle._write_purchases(lifecycle.sources, date),
                          lifecycle._wake_on(date, date, date) TO lifecycle_worker;

------------------------------------------------------------------------------------
-- Changed functions (as in src/; CREATE OR REPLACE keeps their owners and grants):
-- report_action() moves an action's status only forward; the playbook scheduler
-- decides due steps in one statement and looks up each playbook's first step once;
-- refresh() plans for the values at hand (no generic plan scanning the stage table);
-- _collect_queued(), _enroll(), _schedule_pass() and _record_purchases() probe the stage
-- table, consent, contacts and enrolments by key per row, whatever the statistics say;
-- refresh()'s scratch table has built-in types only (DROP EXTENSION while the worker runs);
-- _announce_full() builds the 'full' payloads with less work per transition, and
-- _record_purchases() returns at once for a source without enrolments; _enroll() and
-- _schedule() return at once when there is nothing to enrol or schedule; _announce(),
-- _announce_full() and _enroll() read the log between two ids, _actions_payload() and
-- _schedule() the actions (by the key, whatever the statistics); _capture() queues an
-- INSERT's orders in rows of 1,000, and _recompute_from_source() takes a recomputed
-- customer's orders out of such rows.
------------------------------------------------------------------------------------

-- The scratch tables of one refresh (per session, emptied at commit): the rows a
-- watermark capture passed; the changed customers taken from the queue, one row each;
-- those whose purchases were written at once, for the playbooks; and per customer left
-- for the general path, its old row (known, old_*), whether it is recomputed from the
-- source and its new history. (Each checked on its own: a session that began under an
-- older version may have some of them.)
CREATE OR REPLACE FUNCTION lifecycle._work_table() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- The rows a watermark capture read, per customer and day, for the gather that
    -- follows it (rather than through the change queue: no WAL, no index).
    IF NOT lifecycle._scratch_ready('lifecycle_new') THEN
        CREATE TEMP TABLE lifecycle_new (customer text COLLATE "C", day date,
                                         spend double precision)
            ON COMMIT DELETE ROWS;
        GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON pg_temp.lifecycle_new TO lifecycle_worker;
    END IF;
    IF NOT lifecycle._scratch_ready('lifecycle_incoming') THEN
        -- odd: a day missing (an UPDATE, DELETE) or after the engine's date
        CREATE TEMP TABLE lifecycle_incoming (customer text COLLATE "C", first_day date,
                                              last_day date, days bigint,
                                              spend double precision, odd boolean)
            ON COMMIT DELETE ROWS;
        GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON pg_temp.lifecycle_incoming
            TO lifecycle_worker;
    END IF;
    IF NOT lifecycle._scratch_ready('lifecycle_bought') THEN
        CREATE TEMP TABLE lifecycle_bought (customer text COLLATE "C", last_purchase date,
                                            spend_added double precision)
            ON COMMIT DELETE ROWS;
        GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON pg_temp.lifecycle_bought
            TO lifecycle_worker;
    END IF;
    IF lifecycle._scratch_ready('lifecycle_work') THEN
        RETURN;
    END IF;
    -- (Built-in types only: a column of the extension's type would make DROP EXTENSION
    -- fail while the worker's session keeps this table.)
    CREATE TEMP TABLE lifecycle_work (
        customer text COLLATE "C" PRIMARY KEY, recompute boolean NOT NULL, known boolean NOT NULL,
        old_stage text, old_last date, old_spend double precision,
        gone boolean NOT NULL DEFAULT false,
        row_id tid,  -- where the customer's row is: written back without a second index probe
        first_purchase date, last_purchase date, purchases bigint, spend double precision,
        next_order date)
        ON COMMIT DELETE ROWS;
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON pg_temp.lifecycle_work TO lifecycle_worker;
END
$$;

-- Moves customers whose next_change has come through their stages, one step at a time,
-- each logged with the day it took effect (cause 'time'). At most `budget` customers per
-- step. Customers with an order coming due are left to _collect_queued. A customer woken
-- before its next_change (a purchase moved it later: wake_on in tables.sql) is only
-- given its wake_on again. Returns (customers stepped, transitions logged).
CREATE OR REPLACE FUNCTION lifecycle._step_time(s lifecycle.sources, as_of date, budget bigint,
                                     OUT stepped bigint, OUT logged bigint)
-- Each due row written back where it was read (by ctid, as in _write_stages), whatever
-- the planner guesses: with statistics from before a source was tracked it took the stage
-- table for one row and joined the due rows to it by a filter, quadratic in the customers
-- stepped.
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = on SET enable_mergejoin = off SET enable_nestloop = off AS $$
DECLARE
    n bigint;
    t bigint;
    l bigint;
    woken bigint := 0;
BEGIN
    stepped := 0;
    logged := 0;
    FOR i IN 1 .. 8 LOOP   -- a customer passes at most 4 boundaries without buying
        WITH due AS (
            SELECT c.ctid AS row_id, c.customer, c.stage AS from_stage, c.next_change AS on_day,
                   c.next_change <= as_of AS due,
                   CASE WHEN c.next_change <= as_of
                        THEN lifecycle.lifecycle_stage(c.first_purchase, c.last_purchase,
                                                       c.purchases, c.next_change, s.policy)
                        ELSE c.stage END AS to_stage,
                   CASE WHEN c.next_change <= as_of
                        THEN least(lifecycle.next_stage_change(c.first_purchase, c.last_purchase,
                                                               c.purchases, c.next_change, s.policy),
                                   c.next_order)
                        ELSE c.next_change END AS next
            FROM lifecycle.customer_stage c
            WHERE c.source_id = s.id AND c.wake_on <= as_of
              -- (an order come due, or a prospect's first: _collect_queued's)
              AND NOT coalesce(c.next_change <= as_of
                               AND (c.purchases = 0 OR c.next_order <= c.next_change), false)
            ORDER BY c.wake_on
            LIMIT budget - woken
        ), moved AS (
            UPDATE lifecycle.customer_stage c
            SET stage = d.to_stage, next_change = d.next, wake_on = d.next,
                stage_since = CASE WHEN d.to_stage = c.stage THEN c.stage_since ELSE d.on_day END,
                updated_at = CASE WHEN d.due THEN now() ELSE c.updated_at END
            FROM due d
            WHERE c.ctid = d.row_id AND c.ctid = ANY (ARRAY(SELECT e.row_id FROM due e))
            RETURNING d.due
        ), logged_rows AS (
            INSERT INTO lifecycle.transitions (source_id, customer, from_stage, to_stage,
                                               effective, cause)
            SELECT s.id, d.customer, d.from_stage, d.to_stage, d.on_day, 'time'
            FROM due d WHERE d.to_stage <> d.from_stage
            ORDER BY d.on_day, d.customer
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM moved WHERE due),
               (SELECT count(*) FROM logged_rows)
        INTO n, t, l;
        woken := woken + n;
        stepped := stepped + t;
        logged := logged + l;
        EXIT WHEN n = 0 OR woken >= budget;
    END LOOP;
END
$$;

-- The scores that drift with time for everyone: RFM breakpoints and scores, churn risk
-- and expected value, recomputed over all the customers of source `src_id` every
-- lifecycle.rfm_interval (and after a new current model). A pass computes the breakpoints
-- when it starts (or when `restart`), then rescores customers in key order, at most
-- `budget` per call (NULL: all), so that a worker tick stays bounded; the pass's position
-- is kept in sources.rescore_from. Returns the rows changed and whether the pass ended.
CREATE OR REPLACE FUNCTION lifecycle._rescore(src_id integer, as_of date, budget bigint DEFAULT NULL,
                                   restart boolean DEFAULT true,
                                   OUT changed bigint, OUT finished boolean)
-- Rows written back by ctid, as in _write_stages: never a join by a filter.
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = on SET enable_mergejoin = off SET enable_nestloop = off AS $$
DECLARE
    s lifecycle.sources := (SELECT t FROM lifecycle.sources t WHERE t.id = src_id);
    model lifecycle.models := (SELECT k FROM lifecycle.models k WHERE is_current);
    horizon integer := lifecycle._churn_horizon(model, s.policy);
    taken bigint;
    upto text;
BEGIN
    IF restart OR NOT s.rescoring THEN
        -- (recency never below 0: a purchase after as_of only if lifecycle.as_of went back)
        s.rfm_breakpoints := (
            SELECT lifecycle.rfm_breakpoints(greatest(as_of - c.last_purchase, 0)::float8,
                                             c.purchases::float8, coalesce(c.spend, 0))
            FROM lifecycle.customer_stage c WHERE c.source_id = src_id AND c.purchases > 0);
        s.rescore_from := NULL;
        UPDATE lifecycle.sources t
        SET rfm_breakpoints = s.rfm_breakpoints, rescoring = true, rescore_from = NULL
        WHERE t.id = src_id;
    END IF;
    WITH batch AS (
        SELECT c.ctid AS row_id, c.customer,
               lifecycle._rfm_of(c.first_purchase, c.last_purchase, c.purchases, c.spend, as_of,
                                 s.rfm_breakpoints) AS rfm,
               lifecycle._churn_risk(model, c.first_purchase, c.last_purchase, c.purchases,
                                     as_of, horizon) AS churn_risk,
               lifecycle._expected_value(model, c.first_purchase, c.last_purchase, c.purchases,
                                         c.spend, as_of) AS expected_value
        FROM lifecycle.customer_stage c
        WHERE c.source_id = src_id AND (s.rescore_from IS NULL OR c.customer > s.rescore_from)
        ORDER BY c.customer
        LIMIT budget
    ), updated AS (
        UPDATE lifecycle.customer_stage c
        SET r = (x.rfm).r, f = (x.rfm).f, m = (x.rfm).m, segment = (x.rfm).segment,
            churn_risk = x.churn_risk, expected_value = x.expected_value
        FROM batch x
        WHERE c.ctid = x.row_id AND c.ctid = ANY (ARRAY(SELECT y.row_id FROM batch y))
          AND (c.r, c.f, c.m, c.segment, c.churn_risk, c.expected_value)
              IS DISTINCT FROM ((x.rfm).r, (x.rfm).f, (x.rfm).m, (x.rfm).segment, x.churn_risk,
                                x.expected_value)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM updated), (SELECT count(*) FROM batch),
           (SELECT max(customer) FROM batch)
    INTO changed, taken, upto;
    finished := budget IS NULL OR taken < budget;
    UPDATE lifecycle.sources t
    SET rescoring = NOT finished, rescore_from = CASE WHEN NOT finished THEN upto END,
        rfm_scored_at = CASE WHEN finished THEN now() ELSE t.rfm_scored_at END
    WHERE t.id = src_id;
END
$$;

-- Announces the transitions with id > after_id on the channel lifecycle.notify_channel.
-- With lifecycle.notify_payload = 'summary' (the default) one NOTIFY per source says
-- which transitions were logged: the source, the range of ids and the count per new
-- stage, and no customer id: LISTEN is open to every role, so listeners read the rows
-- from lifecycle.transitions under its privileges. With 'full', the transitions
-- themselves, in chunks under PostgreSQL's 8000-byte limit. Returns the number of
-- NOTIFYs.
-- The log is read by its key between after_id and its last id: a range with both ends,
-- which the planner reads by the primary key even with no statistics on the log (a
-- one-sided "id > after_id" it then takes for a third of the log, and scans all of it).
CREATE OR REPLACE FUNCTION lifecycle._announce(after_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    channel text := current_setting('lifecycle.notify_channel');
    upto bigint;
    payload text;
    sent integer := 0;
BEGIN
    IF current_setting('lifecycle.notify_payload') = 'full' THEN
        RETURN lifecycle._announce_full(channel, after_id);
    END IF;
    upto := (SELECT max(t.id) FROM lifecycle.transitions t);
    FOR payload IN
        WITH per_stage AS (
            SELECT t.source_id, t.to_stage, count(*) AS n, min(t.id) AS first_id,
                   max(t.id) AS last_id
            FROM lifecycle.transitions t
            WHERE t.id > after_id AND t.id <= upto AND t.cause <> 'initial'
            GROUP BY t.source_id, t.to_stage
        )
        SELECT json_build_object('source', s.source::text, 'first_id', min(p.first_id),
                                 'last_id', max(p.last_id), 'transitions', sum(p.n),
                                 'to', json_object_agg(p.to_stage, p.n ORDER BY p.to_stage))::text
        FROM per_stage p JOIN lifecycle.sources s ON s.id = p.source_id
        GROUP BY p.source_id, s.source
        ORDER BY p.source_id
    LOOP
        PERFORM pg_notify(channel, payload);
        sent := sent + 1;
    END LOOP;
    RETURN sent;
END
$$;

-- What a NOTIFY says of the actions with id > after_id: the range of ids and the count
-- per channel, never a customer id (any role can LISTEN). NULL when there are none. (The
-- actions read between two ids, by the key whatever the statistics: see _announce.)
CREATE OR REPLACE FUNCTION lifecycle._actions_payload(after_id bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT json_build_object('first_id', min(first_id), 'last_id', max(last_id),
                                 'actions', sum(n),
                                 'channels', json_object_agg(channel, n ORDER BY channel))::text
        FROM (SELECT a.channel, count(*) AS n, min(a.id) AS first_id, max(a.id) AS last_id
              FROM lifecycle.actions a
              WHERE a.id > after_id AND a.id <= (SELECT max(x.id) FROM lifecycle.actions x)
              GROUP BY a.channel) AS per_channel
        HAVING count(*) > 0);

-- The 'full' payloads: every transition with its customer, per source and chunk. (Cheap
-- per row, as it runs for every transition: concatenation rather than format(), the
-- day's ISO text rather than to_char(), and the source's name joined per chunk.)
CREATE OR REPLACE FUNCTION lifecycle._announce_full(channel text, after_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO' AS $$
DECLARE
    upto bigint := (SELECT max(t.id) FROM lifecycle.transitions t);  -- (as in _announce)
    chunk record;
    sent integer := 0;
BEGIN
    FOR chunk IN
        WITH items AS (
            SELECT t.id, t.source_id,
                   '{"id":' || t.id || ',"customer":'
                   -- a very long id would not fit: the listener reads it from the log
                   || CASE WHEN octet_length(t.customer) <= 200 THEN to_json(t.customer)::text
                           ELSE 'null' END
                   || ',"from":"' || t.from_stage || '","to":"' || t.to_stage
                   || '","cause":"' || t.cause || '","on":"' || t.effective || '"}' AS item
            FROM lifecycle.transitions t
            WHERE t.id > after_id AND t.id <= upto AND t.cause <> 'initial'
        ), sized AS (
            SELECT *, sum(octet_length(item) + 1) OVER (PARTITION BY source_id ORDER BY id) / 7000
                      AS part
            FROM items
        ), chunks AS (
            SELECT source_id, part, string_agg(item, ',' ORDER BY id) AS list
            FROM sized GROUP BY source_id, part
        )
        SELECT s.source::text AS source, c.list
        FROM chunks c JOIN lifecycle.sources s ON s.id = c.source_id
        ORDER BY c.source_id, c.part
    LOOP
        PERFORM pg_notify(channel, '{"source":' || to_json(chunk.source) || ',"transitions":['
                                   || chunk.list || ']}');
        sent := sent + 1;
    END LOOP;
    RETURN sent;
END
$$;

-- Purchases the last refresh of source `s` saw against the enrolments they count for:
-- the customers written at once (lifecycle_bought: orders on or after their last
-- purchase day, the day of the last counted) and those of the general path whose last
-- purchase moved forward (lifecycle_work). The first
-- sets converted_on, each adds its amount to revenue, and a running series that stops on
-- a purchase ends 'converted'.
CREATE OR REPLACE FUNCTION lifecycle._record_purchases(s lifecycle.sources) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    stopped bigint[];
BEGIN
    -- (no enrolment of this source's customers, none to count for: skip the probes)
    IF NOT EXISTS (SELECT FROM lifecycle.enrollments WHERE source_id = s.id) THEN
        RETURN;
    END IF;
    WITH bought AS (
        UPDATE lifecycle.enrollments e
        SET converted_on = coalesce(e.converted_on, w.last_purchase),
            revenue = coalesce(e.revenue, 0) + greatest(coalesce(w.spend_added, 0), 0)
        FROM (SELECT w.*, x.id AS enrollment_id
              FROM (SELECT b.customer, b.last_purchase, b.spend_added
                    FROM pg_temp.lifecycle_bought b
                    UNION ALL
                    SELECT w.customer, w.last_purchase,
                           coalesce(w.spend, 0) - coalesce(w.old_spend, 0)
                    FROM pg_temp.lifecycle_work w
                    WHERE NOT w.gone AND w.last_purchase > coalesce(w.old_last, '-infinity')) w
              -- index probes per customer who bought, whatever the statistics say (OFFSET
              -- 0 keeps the subquery from being flattened into a join by a filter)
              CROSS JOIN LATERAL (SELECT y.id FROM lifecycle.enrollments y
                                  WHERE y.source_id = s.id AND y.customer = w.customer
                                  OFFSET 0) x) w
        WHERE e.id = w.enrollment_id
          AND w.last_purchase > e.counts_after AND w.last_purchase <= e.attribution_until
        RETURNING e.id, e.status, e.playbook
    )
    SELECT array_agg(b.id) INTO stopped
    FROM bought b JOIN lifecycle.playbooks p ON p.name = b.playbook
    WHERE b.status = 'running' AND 'purchase' = ANY (p.stop_on);
    IF stopped IS NOT NULL THEN
        PERFORM lifecycle._end_enrollments(stopped, 'converted', 'stopped', 'purchase');
    END IF;
END
$$;

-- The scratch table of one scheduling pass: per due enrolment, its step and what the
-- pass decided.
CREATE OR REPLACE FUNCTION lifecycle._due_table() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF lifecycle._scratch_ready('lifecycle_due') THEN
        RETURN;
    END IF;
    CREATE TEMP TABLE lifecycle_due (
        enrollment_id bigint PRIMARY KEY, source_id integer, customer text COLLATE "C",
        playbook text, step integer, step_time timestamptz, look_at timestamptz,
        channel text, kind text, message_key text, when_capped text,
        next_no integer, next_delay interval, zone text, quiet_from time, quiet_until time,
        granted boolean, stage text, tier text, waited text,
        at timestamptz, reason text, capped boolean, verdict text)
        ON COMMIT DELETE ROWS;
    -- (No index on (source_id, customer): "no other step of the customer's is due in this
    -- pass" is a window count in _schedule_pass's INSERT, not an anti-join, which with
    -- hash and merge joins off was quadratic: 9 s for 9k steps, bench/playbooks.sh.)
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON pg_temp.lifecycle_due TO lifecycle_worker;
END
$$;

-- Every step due by the engine's time, in passes of at most `budget` enrolments (a step
-- made now can make the next one due at once, when its delay is 0). Returns the number
-- of actions made.
CREATE OR REPLACE FUNCTION lifecycle._schedule(budget bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    now_ timestamptz := lifecycle.engine_time();
    before bigint;
    looked bigint;
    total bigint := 0;
BEGIN
    -- No step due: said by the due index, without planning _schedule_pass's statement
    -- (refresh() plans every statement anew: about 1.5 ms a tick for it and the max below).
    IF NOT EXISTS (SELECT FROM lifecycle.enrollments e
                   WHERE e.status = 'running' AND e.next_due_at <= now_) THEN
        RETURN 0;
    END IF;
    before := (SELECT coalesce(max(id), 0) FROM lifecycle.actions);
    FOR pass IN 1 .. 10 LOOP
        looked := lifecycle._schedule_pass(now_, budget - total);
        total := total + looked;
        EXIT WHEN looked = 0 OR total >= budget;
    END LOOP;
    -- (between two ids, read by the key whatever the statistics: see _announce)
    RETURN (SELECT count(*) FROM lifecycle.actions
            WHERE id > before AND id <= (SELECT max(x.id) FROM lifecycle.actions x));
END
$$;

-- Makes the actions of lifecycle_due's 'send' and 'sunset' rows: of one enrolment
-- (the one-at-a-time path, which then marks it 'made_send' so the bulk call skips it),
-- or when `enrollment` is NULL of all of them at once.
CREATE OR REPLACE FUNCTION lifecycle._make_actions(enrollment bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO lifecycle.actions (enrollment_id, playbook, step, source_id, customer, channel,
                                   message_key, kind, scheduled_for, due_at, reason)
    SELECT m.enrollment_id, m.playbook, m.step, m.source_id, m.customer, m.channel,
           m.message_key, m.kind, m.step_time, coalesce(m.at, m.look_at),
           -- why it waited before (a cap), and why now (quiet hours)
           nullif(concat_ws('; ', m.waited, CASE WHEN m.reason IS DISTINCT FROM m.waited
                                                 THEN m.reason END), '')
    FROM pg_temp.lifecycle_due m
    WHERE m.verdict IN ('send', 'sunset') AND (enrollment IS NULL OR m.enrollment_id = enrollment)
    ORDER BY m.look_at, m.enrollment_id;
    IF enrollment IS NOT NULL THEN
        UPDATE pg_temp.lifecycle_due u SET verdict = 'made_send'
        WHERE u.enrollment_id = enrollment AND u.verdict = 'send';
    END IF;
END
$$;

-- What a scheduling pass decided, written to the enrolments: the next step (its own time
-- is this step's time plus its delay), a wait, a skip logged, a sunset, an end.
CREATE OR REPLACE FUNCTION lifecycle._apply_verdicts() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    sunsets bigint[];
BEGIN
    INSERT INTO lifecycle.playbook_log (enrollment_id, step, event, detail)
    SELECT u.enrollment_id, u.step,
           CASE u.verdict WHEN 'wait' THEN 'postponed' ELSE 'skipped' END,
           CASE u.verdict WHEN 'no_consent' THEN 'no consent on ' || u.channel
                          WHEN 'capped' THEN u.reason || ' (allowed from ' || u.at || ')'
                          ELSE u.reason || ' (until ' || u.at || ')' END
    FROM pg_temp.lifecycle_due u JOIN lifecycle.enrollments e ON e.id = u.enrollment_id
    WHERE u.verdict IN ('no_consent', 'capped')
       OR (u.verdict = 'wait' AND e.waiting IS DISTINCT FROM u.reason);
    -- Sunsets: the channel suppressed (an opt-out logged with via 'sunset').
    PERFORM lifecycle._set_consent(u.source_id, u.customer, ARRAY[u.channel], false, 'sunset')
    FROM pg_temp.lifecycle_due u WHERE u.verdict = 'sunset';
    SELECT array_agg(u.enrollment_id) INTO sunsets FROM pg_temp.lifecycle_due u
    WHERE u.verdict = 'sunset';
    IF sunsets IS NOT NULL THEN
        PERFORM lifecycle._end_enrollments(sunsets, 'sunset', 'sunset', 'silent after the last step');
    END IF;
    PERFORM lifecycle._end_enrollments(array_agg(u.enrollment_id), u.verdict, 'stopped',
                                       CASE u.verdict WHEN 'engaged' THEN 'clicked or replied'
                                                      ELSE 'opted out' END)
    FROM pg_temp.lifecycle_due u WHERE u.verdict IN ('engaged', 'opted_out')
    GROUP BY u.verdict;
    UPDATE lifecycle.enrollments e
    SET next_due_at = u.at, waiting = CASE WHEN u.verdict = 'wait' THEN u.reason ELSE e.waiting END
    FROM pg_temp.lifecycle_due u
    WHERE e.id = u.enrollment_id AND u.verdict IN ('wait', 'busy');
    -- On to the next step, or the end of the series.
    UPDATE lifecycle.enrollments e
    SET next_step = u.next_no,
        step_time = CASE WHEN u.next_no IS NOT NULL
                         THEN coalesce(CASE WHEN u.verdict IN ('send', 'made_send') THEN u.at END,
                                       u.step_time) + u.next_delay END,
        next_due_at = CASE WHEN u.next_no IS NOT NULL
                           THEN coalesce(CASE WHEN u.verdict IN ('send', 'made_send') THEN u.at END,
                                         u.step_time) + u.next_delay END,
        waiting = NULL,
        status = CASE WHEN u.next_no IS NULL THEN 'finished' ELSE 'running' END,
        ended_at = CASE WHEN u.next_no IS NULL THEN now() END
    FROM pg_temp.lifecycle_due u
    WHERE e.id = u.enrollment_id
      AND u.verdict IN ('send', 'made_send', 'no_consent', 'capped', 'finished');
END
$$;

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

-- Recomputes from source `s`, as of `as_of`, the purchase histories of the customers in
-- lifecycle_work marked recompute, or of every customer when `all_customers` (adding
-- them). In the same statement (one snapshot: the source is read in the statement's
-- snapshot) it deletes those customers' changes from the queue (a queue row of several
-- customers' orders keeps the others'): an order this read sees leaves the queue with
-- it, and an order it does not see stays queued for the next refresh. Nothing is
-- counted twice or missed. Customers with no order left are marked gone.
CREATE OR REPLACE FUNCTION lifecycle._recompute_from_source(s lifecycle.sources, as_of date,
                                                 all_customers boolean)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE pg_temp.lifecycle_work
    SET first_purchase = NULL, last_purchase = NULL, purchases = NULL, spend = NULL
    WHERE recompute;
    WITH hit AS (      -- rows of orders that hold one of them, and their other orders
        SELECT q.id, bool_and(o.recomputed) AS all_hit,
               array_agg(o.customer) FILTER (WHERE NOT o.recomputed) AS customers,
               array_agg(o.day) FILTER (WHERE NOT o.recomputed) AS days,
               array_agg(o.spend) FILTER (WHERE NOT o.recomputed) AS spends
        FROM lifecycle.change_queue q
        CROSS JOIN LATERAL (
            SELECT u.customer, u.day, u.spend,
                   u.customer IN (SELECT w.customer FROM pg_temp.lifecycle_work w
                                  WHERE w.recompute) AS recomputed
            FROM unnest(q.customers, q.days, q.spends) AS u (customer, day, spend)) o
        WHERE NOT all_customers AND q.source_id = s.id AND q.customers IS NOT NULL
        GROUP BY q.id
        HAVING bool_or(o.recomputed)
    ), seen AS (
        DELETE FROM lifecycle.change_queue q
        WHERE q.source_id = s.id
          AND (all_customers
               OR q.customer IN (SELECT w.customer FROM pg_temp.lifecycle_work w
                                 WHERE w.recompute)
               OR q.id IN (SELECT h.id FROM hit h WHERE h.all_hit))
    ), trimmed AS (    -- the others' orders stay queued
        UPDATE lifecycle.change_queue q
        SET customers = h.customers, days = h.days, spends = h.spends
        FROM hit h WHERE q.id = h.id AND NOT h.all_hit
    ), fresh AS (
        SELECT * FROM lifecycle._source_histories(
            s.id,
            CASE WHEN NOT all_customers
                 THEN ARRAY(SELECT w.customer FROM pg_temp.lifecycle_work w WHERE w.recompute) END,
            as_of)
    )
    INSERT INTO pg_temp.lifecycle_work AS w (customer, recompute, known, first_purchase,
                                             last_purchase, purchases, spend, next_order)
    SELECT f.customer, true, false, f.first_purchase, f.last_purchase, f.purchases, f.spend,
           f.next_order
    FROM fresh f
    ON CONFLICT (customer) DO UPDATE SET
        first_purchase = excluded.first_purchase, last_purchase = excluded.last_purchase,
        purchases = excluded.purchases, spend = excluded.spend, next_order = excluded.next_order;
    UPDATE pg_temp.lifecycle_work SET gone = true WHERE recompute AND purchases IS NULL;
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

------------------------------------------------------------------------------------
-- New: the worker's check for queued work between ticks (as in src/engine/wake.sql),
-- with the privileges src/privileges.sql gives it on a fresh install. A worker of 0.3.0
-- polls only once this function exists, so it keeps ticking every refresh_interval on
-- 0.2.0 until the update.
------------------------------------------------------------------------------------

-- Whether a tick would find work that came in since the last one: changed orders queued;
-- or a watermark source whose sequence handed out ids since its last capture, or whose
-- last capture was held back by transactions that have all ended since (not while they
-- run: the worker would tick every poll for nothing). PL/pgSQL keeps its plans between
-- calls (a SQL function is planned again on every call); not parallel safe, as the
-- owner's read of the sequence is not.
CREATE FUNCTION lifecycle._work_waiting() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- (not for a source waiting after a failure until its retry_at: the worker would
    -- tick every poll for nothing; the changes of the first 1,000 queue rows only, so that
    -- the check stays bounded while such a source has many queued)
    RETURN EXISTS (SELECT FROM (SELECT q.source_id FROM lifecycle.change_queue q LIMIT 1000) q
                   WHERE NOT EXISTS (SELECT FROM lifecycle.sources s
                                     WHERE s.id = q.source_id AND s.retry_at > now()))
        OR EXISTS (SELECT FROM lifecycle.sources s
                   WHERE s.watermark_column IS NOT NULL
                     AND NOT coalesce(s.retry_at > now(), false)
                     AND ((SELECT p.last_value FROM lifecycle._sequence_position(s.id) p)
                              > s.watermark_seen
                          OR (s.watermark < s.watermark_seen
                              AND NOT lifecycle._still_holding(s.watermark_sequence,
                                                               s.watermark_holders))));
END
$$;

REVOKE ALL ON FUNCTION lifecycle._work_waiting() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._work_waiting() TO lifecycle_worker;

------------------------------------------------------------------------------------
-- Issue 21 (owner switches): the engine's scratch tables are its own. A gate's caller
-- could plant a table of that name in the session's temporary schema; they are used only
-- when the engine's role owns them, and open to the worker's role only (was: ALL to
-- PUBLIC, TRIGGER included). As in src/engine/refresh.sql.
------------------------------------------------------------------------------------
-- Whether pg_temp.<name>, one of the engine's scratch tables, is there and may be used
-- by the role running the engine (current_user: the extension's owner in a gate, the
-- worker's role in the worker). The caller of a gate shares the session, so it can
-- create a table of that name in the temporary schema first, with a trigger, a rule, a
-- DEFAULT or a policy that would run its code as the engine's role. So the table is used
-- only if it is owned by this role (or by a superuser, who may use what a superuser
-- made: a DBA's refresh() before a gate) and has none of those; otherwise it is dropped
-- when this role may drop it, and the engine refuses to go on when it may not. (The
-- engine grants no TRIGGER, REFERENCES or any right to PUBLIC on its tables, so nobody
-- else can hang anything on them.)
CREATE FUNCTION lifecycle._scratch_ready(name text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c pg_class;
BEGIN
    SELECT * INTO c FROM pg_class WHERE oid = to_regclass('pg_temp.' || quote_ident(name));
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF c.relkind = 'r' AND c.relpersistence = 't'
       AND NOT c.relhastriggers AND NOT c.relhasrules AND NOT c.relrowsecurity
       AND (SELECT r.rolname = current_user OR r.rolsuper FROM pg_roles r
            WHERE r.oid = c.relowner)
       -- (made before 0.3.0, which granted ALL, TRIGGER included, to PUBLIC: made again)
       AND NOT EXISTS (SELECT FROM aclexplode(c.relacl) a WHERE a.grantee = 0) THEN
        RETURN true;
    END IF;
    IF NOT pg_has_role(current_user, c.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'lifecycle: pg_temp.% is in the way: the engine did not create it', name
            USING ERRCODE = '42P07',
                  HINT = 'DROP it, or call the function in a new session.';
    END IF;
    EXECUTE format(CASE c.relkind WHEN 'v' THEN 'DROP VIEW pg_temp.%I'
                                  WHEN 'm' THEN 'DROP MATERIALIZED VIEW pg_temp.%I'
                                  WHEN 'S' THEN 'DROP SEQUENCE pg_temp.%I'
                                  WHEN 'f' THEN 'DROP FOREIGN TABLE pg_temp.%I'
                                  WHEN 'i' THEN 'DROP INDEX pg_temp.%I'
                                  WHEN 'I' THEN 'DROP INDEX pg_temp.%I'
                                  WHEN 'c' THEN 'DROP TYPE pg_temp.%I'
                                  ELSE 'DROP TABLE pg_temp.%I' END, name);
    RETURN false;
END
$$;

REVOKE ALL ON FUNCTION lifecycle._scratch_ready(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._scratch_ready(text) TO lifecycle_worker;

-- Issue 21 (DDL guard): temporary tables refused by track(); one check of a tracked
-- table's shape (_untrackable, in C, reading pg_inherits) for track(), the DDL guard and
-- the source reader; the guard decides on the objects a command touched (no tag filter),
-- checks only the sources they reach, and refuses dropping or altering a capture
-- trigger of a table that stays tracked; untrack() forgets the source before it drops
-- the triggers. As in src/engine/capture.sql.
------------------------------------------------------------------------------------

CREATE FUNCTION lifecycle._untrackable(tab regclass) RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_untrackable' LANGUAGE C STABLE STRICT;
REVOKE ALL ON FUNCTION lifecycle._untrackable(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._untrackable(regclass) TO lifecycle_worker;

CREATE OR REPLACE FUNCTION lifecycle._check_trackable(tab regclass) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    CASE lifecycle._untrackable(tab)
    WHEN 'partitioned' THEN
        RAISE EXCEPTION 'argument "source": % is a partitioned table', tab
            USING ERRCODE = '0A000', HINT = 'Track its partitions one by one.';
    WHEN 'not a table', 'missing' THEN
        RAISE EXCEPTION 'argument "source": % is not a table', tab USING ERRCODE = '42809';
    WHEN 'temporary' THEN
        RAISE EXCEPTION 'argument "source": % is a temporary table', tab
            USING ERRCODE = '0A000',
                  HINT = 'Its drop at the end of its session fires no event trigger: the engine would never learn that it is gone. Track a permanent table.';
    WHEN 'partition' THEN
        RAISE EXCEPTION 'argument "source": % is a partition', tab
            USING ERRCODE = '0A000',
                  HINT = 'Rows written through its parent would not be captured; detach it first.';
    WHEN 'parent' THEN
        RAISE EXCEPTION 'argument "source": % has inheritance children', tab
            USING ERRCODE = '0A000', HINT = 'Rows written into the children would not be captured.';
    WHEN 'child' THEN
        RAISE EXCEPTION 'argument "source": % inherits from another table', tab
            USING ERRCODE = '0A000',
                  HINT = 'Rows updated or deleted through its parent would not be captured.';
    ELSE
        NULL;
    END CASE;
END
$$;

CREATE OR REPLACE FUNCTION lifecycle._on_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tab regclass;
    trig text;
BEGIN
    PERFORM lifecycle._forget_source(s.id)
    FROM pg_event_trigger_dropped_objects() o JOIN lifecycle.sources s ON s.source = o.objid
    WHERE o.classid = 'pg_class'::regclass AND o.objsubid = 0;
    -- (a trigger's address is its table's schema and name, then its own name; the table
    -- is gone when the command dropped it too)
    SELECT s.source, o.address_names[3] INTO tab, trig
    FROM pg_event_trigger_dropped_objects() o
    JOIN lifecycle.sources s
      ON s.source = to_regclass(quote_ident(o.address_names[1]) || '.'
                                || quote_ident(o.address_names[2]))
    WHERE o.classid = 'pg_trigger'::regclass
      AND o.address_names[3] IN ('lifecycle_capture_insert', 'lifecycle_capture_update',
                                 'lifecycle_capture_delete', 'lifecycle_capture_truncate')
    LIMIT 1;
    IF tab IS NOT NULL THEN
        RAISE EXCEPTION 'trigger % of % captures the changes of a table that lifecycle tracks',
            quote_ident(trig), tab
            USING ERRCODE = '0A000',
                  HINT = format('Call lifecycle.untrack(%L) first: it drops the triggers.', tab::text);
    END IF;
END
$$;

-- (ALTER EVENT TRIGGER cannot change the tags: 0.2.0's had a filter)
DROP EVENT TRIGGER lifecycle_on_ddl;
CREATE EVENT TRIGGER lifecycle_on_ddl ON ddl_command_end EXECUTE FUNCTION lifecycle._on_ddl();

------------------------------------------------------------------------------------
-- Issue 21 (gate locks): track(), untrack() and resync() no longer take the refresh lock,
-- which a caller's open transaction held until it ended (every tick then failed on its
-- lock timeout, for every source); every wait in them is bounded by lifecycle.lock_timeout
-- (55P03), the watermark wait of track() included. untrack() locks its source's row
-- instead, which ticks skip (with its playbooks); resync() queues its recomputation (a
-- change_queue row marked `correction`), which the next refresh logs as corrections
-- under the refresh lock, so that announced transitions keep their ids in commit order.
-- As in src/ (engine/tables.sql, engine/capture.sql, engine/refresh.sql,
-- engagement/schedule.sql); grants as src/privileges.sql gives them.
------------------------------------------------------------------------------------

ALTER TABLE lifecycle.change_queue ADD COLUMN correction boolean;

CREATE FUNCTION lifecycle._bound_waits() RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller text := current_setting('lock_timeout');
    ours text := current_setting('lifecycle.lock_timeout');
BEGIN
    IF ours::interval > interval '0'
       AND (caller::interval = interval '0' OR ours::interval < caller::interval) THEN
        PERFORM set_config('lock_timeout', ours, true);
    END IF;
    RETURN caller;
END
$$;
REVOKE ALL ON FUNCTION lifecycle._bound_waits() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._bound_waits() TO lifecycle_worker;

CREATE FUNCTION lifecycle._lock_source(tab regclass, caller text, for_update boolean)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    sid integer;
BEGIN
    IF for_update THEN
        SELECT t.id INTO sid FROM lifecycle.sources t WHERE t.source = tab FOR UPDATE;
    ELSE
        SELECT t.id INTO sid FROM lifecycle.sources t WHERE t.source = tab FOR KEY SHARE;
    END IF;
    RETURN sid;
EXCEPTION WHEN lock_not_available THEN
    RAISE EXCEPTION 'lifecycle.%: gave up after % waiting for another transaction working on source % (a refresh, or an untrack() or resync() of it)',
        caller, current_setting('lock_timeout'), tab
        USING ERRCODE = '55P03',
              HINT = 'Retry: a refresh holds a source for one tick; another untrack() or resync() until its transaction ends.';
END
$$;
REVOKE ALL ON FUNCTION lifecycle._lock_source(regclass, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._lock_source(regclass, text, boolean) TO lifecycle_worker;

CREATE OR REPLACE FUNCTION lifecycle._resync(tab regclass) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s lifecycle.sources;
    as_of date := lifecycle.engine_date();
    corrections bigint;
    caller_lock_timeout text := lifecycle._bound_waits();
    sid integer := lifecycle._lock_source(tab, 'resync', false);
BEGIN
    SELECT * INTO s FROM lifecycle.sources t WHERE t.id = sid;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'argument "source": % is not tracked', tab USING ERRCODE = '22023';
    END IF;
    -- What a recomputation would change now: every customer whose stage differs between
    -- the stage table and the orders (a customer gone from the orders is a prospect), as
    -- _write_stages would log it.
    WITH fresh AS (
        SELECT h.customer COLLATE "C" AS customer,
               CASE WHEN h.purchases > 0
                    THEN lifecycle.lifecycle_stage(h.first_purchase, h.last_purchase,
                                                   h.purchases, as_of, s.policy)::text
                    ELSE 'prospect' END AS stage
        FROM lifecycle._source_histories(s.id, NULL, as_of) h
    )
    SELECT count(*) INTO corrections
    FROM fresh f
    FULL JOIN (SELECT c.customer, c.stage::text AS stage FROM lifecycle.customer_stage c
               WHERE c.source_id = s.id) c ON c.customer = f.customer
    WHERE coalesce(c.stage, 'prospect') <> coalesce(f.stage, 'prospect');
    -- The request: a queue row with neither customer nor orders, as a TRUNCATE queues,
    -- marked as a correction (refresh() recomputes every customer, logs each change as a
    -- 'correction' and starts a rescoring pass; see _collect_queued).
    INSERT INTO lifecycle.change_queue (source_id, customer, correction) VALUES (s.id, NULL, true);
    IF s.watermark_column IS NOT NULL THEN
        PERFORM lifecycle._warn_stray_ids(s);
    END IF;
    PERFORM set_config('lock_timeout', caller_lock_timeout, true);
    RETURN corrections;
END
$$;

DROP FUNCTION lifecycle._schedule_pass(timestamptz, bigint);
DROP FUNCTION lifecycle._schedule(bigint);

CREATE FUNCTION lifecycle._schedule_pass(now_ timestamptz, budget bigint,
                                         skipped integer[] DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    d record;
    taken bigint;
BEGIN
    PERFORM lifecycle._due_table();
    TRUNCATE pg_temp.lifecycle_due;
    -- Every due step with what decides it, and the decision where it can be made in
    -- bulk, in one statement (each rewrite of the scratch table costs as much again).
    INSERT INTO pg_temp.lifecycle_due
    -- (MATERIALIZED: `fixed` and `verdict` are used several times below, and their
    -- subqueries would run once per use)
    WITH due AS MATERIALIZED (
        SELECT e.id, e.source_id, e.customer, e.playbook, e.next_step, e.step_time,
               e.next_due_at, st.channel, st.kind, st.message_key, st.when_capped,
               nx.step AS next_no, nx.delay AS next_delay,
               -- (an unusable stored zone counts as none, as in _enroll)
               coalesce(lifecycle._usable_zone(k.time_zone), lifecycle._usable_zone(s.time_zone),
                        'UTC') AS zone, ch.quiet_from, ch.quiet_until,
               coalesce(cs.granted, false) AS granted, c.stage::text AS stage,
               lifecycle.value_tier(c.m) AS tier, e.waiting AS waited,
               -- stops reported since the last step (applications record them without
               -- touching enrolments): a click or reply on one of its actions, an
               -- opt-out of one of its channels since it began
               CASE WHEN EXISTS (
                        SELECT FROM lifecycle.actions a
                        JOIN lifecycle.action_outcomes o ON o.action_id = a.id
                        WHERE a.enrollment_id = e.id
                          AND ((o.outcome = 'clicked' AND 'click' = ANY (p.stop_on))
                               OR (o.outcome = 'replied' AND 'reply' = ANY (p.stop_on))))
                    THEN 'engaged'
                    WHEN 'opt_out' = ANY (p.stop_on) AND EXISTS (
                        SELECT FROM lifecycle.consent x
                        WHERE x.source_id = e.source_id AND x.customer = e.customer
                          AND NOT x.granted AND x.changed_at >= e.enrolled_at
                          AND x.channel IN (SELECT y.channel FROM lifecycle.playbook_steps y
                                            WHERE y.playbook = e.playbook))
                    THEN 'opted_out'
                    WHEN st.channel IS NULL THEN 'finished'  -- the step was deleted
                    WHEN NOT coalesce(cs.granted, false) THEN 'no_consent'
                    WHEN st.kind = 'sunset' THEN 'sunset' END AS fixed
        FROM (SELECT * FROM lifecycle.enrollments
              WHERE status = 'running' AND next_due_at <= now_ AND source_id <> ALL (skipped)
              ORDER BY next_due_at, id LIMIT budget) AS e
        JOIN lifecycle.playbooks p ON p.name = e.playbook AND p.enabled
        JOIN lifecycle.sources s ON s.id = e.source_id
        LEFT JOIN lifecycle.playbook_steps st ON st.playbook = e.playbook AND st.step = e.next_step
        LEFT JOIN lifecycle.channels ch ON ch.channel = st.channel
        -- primary-key probes per due step, whatever the statistics say (as in _enroll)
        LEFT JOIN LATERAL (SELECT x.time_zone FROM lifecycle.contacts x
                           WHERE x.source_id = e.source_id AND x.customer = e.customer LIMIT 1) k
          ON true
        LEFT JOIN LATERAL (SELECT x.granted FROM lifecycle.consent x
                           WHERE x.source_id = e.source_id AND x.customer = e.customer
                             AND x.channel = st.channel LIMIT 1) cs ON true
        LEFT JOIN LATERAL (SELECT x.stage, x.m FROM lifecycle.customer_stage x
                           WHERE x.source_id = e.source_id AND x.customer = e.customer LIMIT 1) c
          ON true
        LEFT JOIN LATERAL (SELECT x.step, x.delay FROM lifecycle.playbook_steps x
                           WHERE x.playbook = e.playbook AND x.step > e.next_step
                           ORDER BY x.step LIMIT 1) AS nx ON true
    ), timed AS MATERIALIZED (
        -- a message's time after quiet hours, and whether another message of the
        -- customer's is due in this pass
        SELECT w.*,
               CASE WHEN w.fixed IS NULL AND w.quiet_from IS NOT NULL
                    THEN lifecycle._after_quiet(w.next_due_at, w.zone, w.quiet_from, w.quiet_until)
                    ELSE w.next_due_at END AS at,
               count(*) FILTER (WHERE w.fixed IS NULL)
                   OVER (PARTITION BY w.source_id, w.customer) > 1 AS crowded
        FROM due w
    ), decided AS MATERIALIZED (
        -- In bulk: a message alone in the pass that breaks no policy that applies at its
        -- time after quiet hours (a later time only shortens every policy's window, so
        -- nothing else can move it). The others are left (NULL) to _allowed_at.
        SELECT t.*,
               CASE WHEN t.fixed IS NOT NULL THEN t.fixed
                    WHEN t.crowded OR EXISTS (
                        SELECT FROM lifecycle.contact_policy p
                        WHERE lifecycle._rule_applies(p, t.channel, t.stage, t.tier)
                          AND (SELECT count(*) FROM lifecycle.actions a
                               WHERE a.source_id = t.source_id AND a.customer = t.customer
                                 AND a.kind = 'message' AND a.status <> 'canceled'
                                 AND (p.channel IS NULL OR a.channel = p.channel)
                                 AND a.due_at > t.at - greatest(p.per, p.min_gap))
                              >= CASE WHEN p.min_gap IS NOT NULL THEN 1 ELSE p.max_messages END)
                    THEN NULL
                    WHEN t.at <= now_ THEN 'send'
                    ELSE 'wait' END AS verdict
        FROM timed t
    )
    SELECT id, source_id, customer, playbook, next_step, step_time, next_due_at, channel, kind,
           message_key, when_capped, next_no, next_delay, zone, quiet_from, quiet_until, granted,
           stage, tier, waited, at,
           CASE WHEN verdict IN ('send', 'wait') AND at > next_due_at THEN 'quiet hours' END,
           CASE WHEN verdict IN ('send', 'wait') THEN false END, verdict
    FROM decided;
    GET DIAGNOSTICS taken = ROW_COUNT;
    IF taken = 0 THEN
        RETURN 0;
    END IF;
    -- A sunset changes consent: if an application holds the customer's consent row
    -- locked (an open transaction after opt_in or opt_out), try again a minute later
    -- rather than wait.
    UPDATE pg_temp.lifecycle_due u SET verdict = 'busy', at = now_ + interval '1 minute'
    WHERE u.verdict = 'sunset'
      AND NOT EXISTS (SELECT FROM (SELECT 1 FROM lifecycle.consent c
                                   WHERE c.source_id = u.source_id AND c.customer = u.customer
                                     AND c.channel = u.channel
                                   FOR UPDATE SKIP LOCKED) AS locked);
    -- One at a time, each action made at once so the next sees it.
    FOR d IN SELECT * FROM pg_temp.lifecycle_due WHERE verdict IS NULL
             ORDER BY look_at, enrollment_id LOOP
        SELECT x.at, x.reason, x.capped INTO d.at, d.reason, d.capped
        FROM lifecycle._allowed_at(d.source_id, d.customer, d.channel, d.stage, d.tier,
                                   d.look_at, d.zone, d.quiet_from, d.quiet_until) AS x;
        UPDATE pg_temp.lifecycle_due u
        SET at = d.at, reason = d.reason, capped = d.capped,
            verdict = CASE WHEN d.capped AND d.when_capped = 'skip' THEN 'capped'
                           WHEN d.at <= now_ THEN 'send' ELSE 'wait' END
        WHERE u.enrollment_id = d.enrollment_id;
        IF d.at <= now_ AND NOT (d.capped AND d.when_capped = 'skip') THEN
            PERFORM lifecycle._make_actions(d.enrollment_id);
        END IF;
    END LOOP;
    PERFORM lifecycle._make_actions(NULL);
    PERFORM lifecycle._apply_verdicts();
    RETURN taken;
END
$$;

CREATE FUNCTION lifecycle._schedule(budget bigint, skipped integer[] DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    now_ timestamptz := lifecycle.engine_time();
    before bigint;
    looked bigint;
    total bigint := 0;
BEGIN
    -- No step due: said by the due index, without planning _schedule_pass's statement
    -- (refresh() plans every statement anew: about 1.5 ms a tick for it and the max below).
    IF NOT EXISTS (SELECT FROM lifecycle.enrollments e
                   WHERE e.status = 'running' AND e.next_due_at <= now_) THEN
        RETURN 0;
    END IF;
    before := (SELECT coalesce(max(id), 0) FROM lifecycle.actions);
    FOR pass IN 1 .. 10 LOOP
        looked := lifecycle._schedule_pass(now_, budget - total, skipped);
        total := total + looked;
        EXIT WHEN looked = 0 OR total >= budget;
    END LOOP;
    -- (between two ids, read by the key whatever the statistics: see _announce)
    RETURN (SELECT count(*) FROM lifecycle.actions
            WHERE id > before AND id <= (SELECT max(x.id) FROM lifecycle.actions x));
END
$$;
REVOKE ALL ON FUNCTION lifecycle._schedule_pass(timestamptz, bigint, integer[]),
                       lifecycle._schedule(bigint, integer[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._schedule_pass(timestamptz, bigint, integer[]),
                          lifecycle._schedule(bigint, integer[]) TO lifecycle_worker;

------------------------------------------------------------------------------------
-- Issue 21 (merged): _untrack as both the DDL guard (forget the source before dropping
-- its triggers) and the gate locks (the source's row, bounded waits) left it.
------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION lifecycle._untrack(tab regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    trig text;
    sid integer;
    caller_lock_timeout text := lifecycle._bound_waits();
BEGIN
    -- The source's row locked FOR UPDATE instead of the refresh lock: a tick working on
    -- this source is waited for (lock_timeout at most), and the ticks that come while
    -- this transaction is open skip this source only (refresh()).
    sid := lifecycle._lock_source(tab, 'untrack', true);
    IF sid IS NULL THEN
        RAISE EXCEPTION 'argument "source": % is not tracked', tab USING ERRCODE = '22023';
    END IF;
    -- forgotten first: the DDL guard (_on_drop) refuses to drop the capture triggers of
    -- a table that stays tracked
    PERFORM lifecycle._forget_source(sid);
    -- only the triggers it has: a watermark source has fewer, a table distributed by
    -- Citus none (where Citus refuses even DROP TRIGGER IF EXISTS)
    FOR trig IN SELECT t.tgname FROM pg_trigger t
                WHERE t.tgrelid = tab AND t.tgname LIKE 'lifecycle\_capture\_%' LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', trig, tab);
    END LOOP;
    PERFORM set_config('lock_timeout', caller_lock_timeout, true);
END
$$;

------------------------------------------------------------------------------------
-- Issue 21 (sources isolated from each other; a gone source forgotten; models checked):
-- as in src/engine/tables.sql, src/models/kept.sql, src/engine/refresh.sql,
-- src/engine/wake.sql, src/engine/views.sql, with the privileges src/privileges.sql gives.
-- A model already stored with parameters the new check refuses is not refused here:
-- refresh() sets it aside at its first tick (lifecycle.models.scoring_error).
------------------------------------------------------------------------------------

-- (The defaults are set after the columns are added: ADD COLUMN with a DEFAULT is refused
-- while a SQL-body function such as _day_sql takes the table's row type.)
ALTER TABLE lifecycle.sources
    ADD COLUMN last_error text,
    ADD COLUMN last_error_at timestamptz,
    ADD COLUMN consecutive_errors integer,
    ADD COLUMN errors bigint,
    ADD COLUMN retry_at timestamptz;
ALTER TABLE lifecycle.sources
    ALTER COLUMN consecutive_errors SET DEFAULT 0, ALTER COLUMN errors SET DEFAULT 0;
UPDATE lifecycle.sources SET consecutive_errors = 0, errors = 0;
ALTER TABLE lifecycle.sources
    ALTER COLUMN consecutive_errors SET NOT NULL, ALTER COLUMN errors SET NOT NULL;
ALTER TABLE lifecycle.models
    ADD COLUMN scoring_error text,
    ADD COLUMN scoring_error_at timestamptz;

-- What is wrong with model `m`'s parameters for the engine's scoring, or NULL: every
-- parameter of its purchase models and of Gamma-Gamma a finite number > 0 (their shapes
-- and scales), the calibrated risk's coefficients finite, one per feature of
-- _risk_features and the intercept, its horizon a positive number of days. The table's
-- trigger refuses such a row; refresh() sets aside a current one stored before the check.
CREATE FUNCTION lifecycle._model_problem(m lifecycle.models) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    n integer;
BEGIN
    FOR p IN
        SELECT x.col, x.param, x.v
        FROM (VALUES (1, 'bgnbd', 'r', (m.bgnbd).r, true), (2, 'bgnbd', 'alpha', (m.bgnbd).alpha, true),
                     (3, 'bgnbd', 'a', (m.bgnbd).a, true), (4, 'bgnbd', 'b', (m.bgnbd).b, true),
                     (5, 'mbgnbd', 'r', (m.mbgnbd).r, NOT m.mbgnbd IS NULL),
                     (6, 'mbgnbd', 'alpha', (m.mbgnbd).alpha, NOT m.mbgnbd IS NULL),
                     (7, 'mbgnbd', 'a', (m.mbgnbd).a, NOT m.mbgnbd IS NULL),
                     (8, 'mbgnbd', 'b', (m.mbgnbd).b, NOT m.mbgnbd IS NULL),
                     (9, 'pareto_nbd', 'r', (m.pareto_nbd).r, NOT m.pareto_nbd IS NULL),
                     (10, 'pareto_nbd', 'alpha', (m.pareto_nbd).alpha, NOT m.pareto_nbd IS NULL),
                     (11, 'pareto_nbd', 's', (m.pareto_nbd).s, NOT m.pareto_nbd IS NULL),
                     (12, 'pareto_nbd', 'beta', (m.pareto_nbd).beta, NOT m.pareto_nbd IS NULL),
                     (13, 'gamma_gamma', 'p', (m.gamma_gamma).p, NOT m.gamma_gamma IS NULL),
                     (14, 'gamma_gamma', 'q', (m.gamma_gamma).q, NOT m.gamma_gamma IS NULL),
                     (15, 'gamma_gamma', 'gamma', (m.gamma_gamma).gamma, NOT m.gamma_gamma IS NULL))
             AS x (i, col, param, v, present)
        WHERE x.present
          AND NOT coalesce(x.v > 0 AND x.v < 'Infinity'::float8 AND x.v <> 'NaN'::float8, false)
        ORDER BY x.i LIMIT 1
    LOOP
        RETURN format('column "%s" of lifecycle.models: parameter "%s" must be a finite number > 0, got %s',
                      p.col, p.param, coalesce(p.v::text, 'NULL'));
    END LOOP;
    IF NOT m.calibrated IS NULL THEN
        n := cardinality((m.calibrated).coefficients);
        IF array_ndims((m.calibrated).coefficients) IS DISTINCT FROM 1 OR n <> 7 THEN
            RETURN format('column "calibrated" of lifecycle.models: "coefficients" must be 7 numbers (the intercept and one per risk feature), got %s',
                          coalesce((m.calibrated).coefficients::text, 'NULL'));
        END IF;
        IF EXISTS (SELECT FROM unnest((m.calibrated).coefficients) c
                   WHERE NOT coalesce(c > '-Infinity'::float8 AND c < 'Infinity'::float8
                                      AND c <> 'NaN'::float8, false)) THEN
            RETURN format('column "calibrated" of lifecycle.models: "coefficients" must be finite numbers, got %s',
                          (m.calibrated).coefficients);
        END IF;
        IF NOT coalesce(m.calibrated_horizon_days > 0, false) THEN
            RETURN format('column "calibrated_horizon_days" of lifecycle.models must be > 0 with a calibrated risk, got %s',
                          coalesce(m.calibrated_horizon_days::text, 'NULL'));
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- Refuses a model whose parameters the engine could not score with (_model_problem), as
-- it is stored; a model changed in what it scores with is scored again (its
-- scoring_error cleared). Rows whose scoring columns did not change pass as they are:
-- the engine records a scoring error on the row it set aside.
CREATE FUNCTION lifecycle._check_model() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    problem text;
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.unit, NEW.kind, NEW.bgnbd, NEW.mbgnbd, NEW.pareto_nbd, NEW.gamma_gamma,
            NEW.horizon_days, NEW.value_horizon_days, NEW.value_steps, NEW.discount_rate,
            NEW.calibrated, NEW.calibrated_horizon_days, NEW.risk)
           IS NOT DISTINCT FROM
           (OLD.unit, OLD.kind, OLD.bgnbd, OLD.mbgnbd, OLD.pareto_nbd, OLD.gamma_gamma,
            OLD.horizon_days, OLD.value_horizon_days, OLD.value_steps, OLD.discount_rate,
            OLD.calibrated, OLD.calibrated_horizon_days, OLD.risk) THEN
        RETURN NEW;
    END IF;
    problem := lifecycle._model_problem(NEW);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '%', problem USING ERRCODE = '22023';
    END IF;
    NEW.scoring_error := NULL;
    NEW.scoring_error_at := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER check_model BEFORE INSERT OR UPDATE ON lifecycle.models
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_model();

-- The current model the engine scores with: none while the current one is set aside.
-- (Read once per statement by the functions that score.)
CREATE FUNCTION lifecycle._scoring_model() RETURNS lifecycle.models
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT k FROM lifecycle.models k WHERE k.is_current AND k.scoring_error IS NULL);

-- Sets the current model aside if its parameters are ones the checks refuse (a row stored
-- before them, or with the table's triggers off). refresh() calls it first, once a tick.
CREATE FUNCTION lifecycle._check_current_model() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k lifecycle.models := lifecycle._scoring_model();
    problem text;
BEGIN
    IF k.name IS NOT NULL THEN
        problem := lifecycle._model_problem(k);
        IF problem IS NOT NULL THEN
            PERFORM lifecycle._set_model_aside(k.name, problem);
            RAISE WARNING 'lifecycle: the current model "%" is set aside: %', k.name, problem
                USING DETAIL = 'Customers are scored without it (churn_risk and expected_value NULL) until the model changes; see lifecycle.models.scoring_error.',
                      HINT = 'Fit it again (lifecycle.fit_model) or correct its parameters.';
        END IF;
    END IF;
END
$$;

-- Sets the current model aside (named `model_name`, with what went wrong): the engine
-- scores without it until it changes (the table's trigger then clears scoring_error).
-- Its trigger current_model_changed starts a rescoring pass of every source, which
-- takes away the scores it gave. Called by refresh(), which says so.
CREATE FUNCTION lifecycle._set_model_aside(model_name text, message text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE lifecycle.models SET scoring_error = message, scoring_error_at = now()
    WHERE name = model_name;
END
$$;

-- Forgets source `sid` if its table no longer exists: dropped while event triggers were
-- off, or a temporary table whose session ended, which fires no event trigger. Runs as
-- the extension's owner (SECURITY DEFINER), because forgetting deletes the playbooks'
-- records of the source's customers (outcomes, contacts, reasons...), which the worker's
-- role may not delete; it does nothing else, and nothing to a source whose table is there.
-- Only lifecycle_worker may execute it (src/privileges.sql). Returns whether it forgot.
CREATE FUNCTION lifecycle._forget_gone_source(sid integer) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- (refresh() holds it already: no other refresh is forgetting it at the same time)
    LOCK TABLE lifecycle.refresh_lock IN EXCLUSIVE MODE;
    IF NOT EXISTS (SELECT FROM lifecycle.sources t
                   WHERE t.id = sid AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t.source))
    THEN
        RETURN false;
    END IF;
    PERFORM lifecycle._forget_source(sid);
    RETURN true;
END
$$;

-- Writes the histories in lifecycle_work in one statement: each customer's stage as of
-- `as_of` and next change, computed as its row is written; customers with no order left
-- removed; and a transition for each stage that changed (cause `forced_cause`, or when NULL
-- 'purchase' if the last purchase moved forward and 'correction' otherwise), from the old
-- stage kept in lifecycle_work. Returns the number of transitions.
CREATE OR REPLACE FUNCTION lifecycle._write_stages(s lifecycle.sources, as_of date, forced_cause text) RETURNS bigint
-- The rows are written back where _collect_queued found them: one TID scan of all their
-- ctids (in page order), hash-joined to the new values. Whatever the planner guesses of
-- the scratch tables, never a scan of the stage table; and not a nested loop of one TID
-- scan per customer either, which asks the kernel for the table's size at every rescan
-- (an lseek per row: 7 % of a 10k-customer tick in perf).
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = on SET enable_mergejoin = off SET enable_nestloop = off AS $$
DECLARE
    logged bigint;
    model lifecycle.models := lifecycle._scoring_model();
    horizon integer := lifecycle._churn_horizon(model, s.policy);
BEGIN
    WITH fresh AS (
        SELECT w.*, x.stage AS new_stage, x.next_change AS new_next_change,
               lifecycle._rfm_of(w.first_purchase, w.last_purchase, w.purchases, w.spend, as_of,
                                 s.rfm_breakpoints) AS rfm,
               lifecycle._churn_risk(model, w.first_purchase, w.last_purchase, w.purchases, as_of,
                                     horizon) AS churn_risk,
               lifecycle._expected_value(model, w.first_purchase, w.last_purchase, w.purchases,
                                         w.spend, as_of) AS expected_value
        FROM pg_temp.lifecycle_work w
        CROSS JOIN LATERAL (
            SELECT CASE WHEN w.purchases > 0
                        THEN lifecycle.lifecycle_stage(w.first_purchase, w.last_purchase,
                                                       w.purchases, as_of, s.policy)
                        ELSE 'prospect' END AS stage,
                   CASE WHEN w.purchases > 0
                        THEN least(w.next_order,
                                   lifecycle.next_stage_change(w.first_purchase, w.last_purchase,
                                                               w.purchases, as_of, s.policy))
                        ELSE w.next_order END AS next_change) AS x
        WHERE NOT w.gone
    ), changed AS (
        UPDATE lifecycle.customer_stage c
        SET first_purchase = f.first_purchase, last_purchase = f.last_purchase,
            purchases = f.purchases, spend = f.spend, stage = f.new_stage,
            stage_since = CASE WHEN c.stage = f.new_stage THEN c.stage_since ELSE as_of END,
            next_change = f.new_next_change, next_order = f.next_order,
            r = (f.rfm).r, f = (f.rfm).f, m = (f.rfm).m, segment = (f.rfm).segment,
            churn_risk = f.churn_risk, expected_value = f.expected_value, updated_at = now(),
            wake_on = lifecycle._wake_on(c.wake_on, as_of, f.new_next_change)
        FROM fresh f
        WHERE f.known AND c.ctid = f.row_id
          AND c.ctid = ANY (ARRAY(SELECT w.row_id FROM pg_temp.lifecycle_work w
                                  WHERE w.known AND NOT w.gone))
        RETURNING f.customer, f.old_stage::lifecycle.stage, f.new_stage, f.old_last,
                  f.last_purchase, f.purchases
    ), added AS (
        INSERT INTO lifecycle.customer_stage
            (source_id, customer, first_purchase, last_purchase, purchases, spend, stage,
             stage_since, next_change, next_order, r, f, m, segment, churn_risk, expected_value,
             wake_on)
        SELECT s.id, f.customer, f.first_purchase, f.last_purchase, f.purchases, f.spend,
               f.new_stage, as_of, f.new_next_change, f.next_order, (f.rfm).r, (f.rfm).f,
               (f.rfm).m, (f.rfm).segment, f.churn_risk, f.expected_value, f.new_next_change
        FROM fresh f WHERE NOT f.known
        RETURNING customer, NULL::lifecycle.stage, stage, NULL::date, last_purchase, purchases
    ), removed AS (
        DELETE FROM lifecycle.customer_stage c
        USING pg_temp.lifecycle_work w
        WHERE w.gone AND w.known AND c.ctid = w.row_id
          AND c.ctid = ANY (ARRAY(SELECT g.row_id FROM pg_temp.lifecycle_work g
                                  WHERE g.known AND g.gone))
        RETURNING c.customer, c.stage, 'prospect'::lifecycle.stage, c.last_purchase, NULL::date,
                  0::bigint
    ), written (customer, old_stage, new_stage, old_last, new_last, purchases) AS (
        TABLE changed UNION ALL TABLE added UNION ALL TABLE removed
    )
    INSERT INTO lifecycle.transitions (source_id, customer, from_stage, to_stage, effective, cause)
    SELECT s.id, customer, coalesce(old_stage, 'prospect'), new_stage, as_of,
           coalesce(forced_cause,
                    CASE WHEN new_last > old_last OR (old_last IS NULL AND purchases > 0)
                         THEN 'purchase' ELSE 'correction' END)
    FROM written
    WHERE coalesce(old_stage, 'prospect') <> new_stage
    ORDER BY customer;
    GET DIAGNOSTICS logged = ROW_COUNT;
    RETURN logged;
END
$$;

-- The scores that drift with time for everyone: RFM breakpoints and scores, churn risk
-- and expected value, recomputed over all the customers of source `src_id` every
-- lifecycle.rfm_interval (and after a new current model). A pass computes the breakpoints
-- when it starts (or when `restart`), then rescores customers in key order, at most
-- `budget` per call (NULL: all), so that a worker tick stays bounded; the pass's position
-- is kept in sources.rescore_from. Returns the rows changed and whether the pass ended.
CREATE OR REPLACE FUNCTION lifecycle._rescore(src_id integer, as_of date, budget bigint DEFAULT NULL,
                                   restart boolean DEFAULT true,
                                   OUT changed bigint, OUT finished boolean)
-- Rows written back by ctid, as in _write_stages: never a join by a filter.
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = on SET enable_mergejoin = off SET enable_nestloop = off AS $$
DECLARE
    s lifecycle.sources := (SELECT t FROM lifecycle.sources t WHERE t.id = src_id);
    model lifecycle.models := lifecycle._scoring_model();
    horizon integer := lifecycle._churn_horizon(model, s.policy);
    taken bigint;
    upto text;
BEGIN
    IF restart OR NOT s.rescoring THEN
        -- (recency never below 0: a purchase after as_of only if lifecycle.as_of went back)
        s.rfm_breakpoints := (
            SELECT lifecycle.rfm_breakpoints(greatest(as_of - c.last_purchase, 0)::float8,
                                             c.purchases::float8, coalesce(c.spend, 0))
            FROM lifecycle.customer_stage c WHERE c.source_id = src_id AND c.purchases > 0);
        s.rescore_from := NULL;
        UPDATE lifecycle.sources t
        SET rfm_breakpoints = s.rfm_breakpoints, rescoring = true, rescore_from = NULL
        WHERE t.id = src_id;
    END IF;
    WITH batch AS (
        SELECT c.ctid AS row_id, c.customer,
               lifecycle._rfm_of(c.first_purchase, c.last_purchase, c.purchases, c.spend, as_of,
                                 s.rfm_breakpoints) AS rfm,
               lifecycle._churn_risk(model, c.first_purchase, c.last_purchase, c.purchases,
                                     as_of, horizon) AS churn_risk,
               lifecycle._expected_value(model, c.first_purchase, c.last_purchase, c.purchases,
                                         c.spend, as_of) AS expected_value
        FROM lifecycle.customer_stage c
        WHERE c.source_id = src_id AND (s.rescore_from IS NULL OR c.customer > s.rescore_from)
        ORDER BY c.customer
        LIMIT budget
    ), updated AS (
        UPDATE lifecycle.customer_stage c
        SET r = (x.rfm).r, f = (x.rfm).f, m = (x.rfm).m, segment = (x.rfm).segment,
            churn_risk = x.churn_risk, expected_value = x.expected_value
        FROM batch x
        WHERE c.ctid = x.row_id AND c.ctid = ANY (ARRAY(SELECT y.row_id FROM batch y))
          AND (c.r, c.f, c.m, c.segment, c.churn_risk, c.expected_value)
              IS DISTINCT FROM ((x.rfm).r, (x.rfm).f, (x.rfm).m, (x.rfm).segment, x.churn_risk,
                                x.expected_value)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM updated), (SELECT count(*) FROM batch),
           (SELECT max(customer) FROM batch)
    INTO changed, taken, upto;
    finished := budget IS NULL OR taken < budget;
    UPDATE lifecycle.sources t
    SET rescoring = NOT finished, rescore_from = CASE WHEN NOT finished THEN upto END,
        rfm_scored_at = CASE WHEN finished THEN now() ELSE t.rfm_scored_at END
    WHERE t.id = src_id;
END
$$;

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

REVOKE ALL ON FUNCTION lifecycle._model_problem(lifecycle.models), lifecycle._check_model(),
                       lifecycle._scoring_model(), lifecycle._check_current_model(),
                       lifecycle._set_model_aside(text, text), lifecycle._forget_gone_source(integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._model_problem(lifecycle.models) TO PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._model_problem(lifecycle.models), lifecycle._check_model(),
                          lifecycle._scoring_model(), lifecycle._check_current_model(),
                          lifecycle._set_model_aside(text, text),
                          lifecycle._forget_gone_source(integer)
    TO lifecycle_worker;
GRANT SELECT ON lifecycle.source_status TO lifecycle_reader;
-- (end of Issue 21: sources isolated)

------------------------------------------------------------------------------------
-- Issue 21 (merged): refresh() with both the per-source subtransactions and the skipped sources of an untrack() in progress; _forget_gone_source's comment.
------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION lifecycle.refresh(max_customers integer DEFAULT NULL)
RETURNS lifecycle.refresh_result
-- Plans for the values at hand: after five calls PL/pgSQL may switch to a generic plan,
-- which for "next_change <= as_of" expects a third of the stage table and scans all of
-- it (350 ms a tick at 1M customers with nothing due, bench/playbooks.sh).
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    r lifecycle.refresh_result;
    started timestamptz := clock_timestamp();
    as_of date := lifecycle.engine_date();
    budget bigint := coalesce(max_customers, 9223372036854775807);
    last_id bigint;
    last_action bigint;
    s lifecycle.sources;
    queued bigint;
    recomputed bigint;
    purchases record;
    stepped record;
    rescored record;
    skipped integer[] := '{}';
    kept lifecycle.refresh_result;
    message text;
    sqlstate_of text;
    retry timestamptz;
    without_model text;   -- the model set aside for a second try of the source's part
    first_error text;
    first_state text;
BEGIN
    IF max_customers < 1 THEN
        RAISE EXCEPTION 'argument "max_customers" must be at least 1, got %', max_customers
            USING ERRCODE = '22023';
    END IF;
    PERFORM lifecycle._lock_refresh();
    r := ROW(0, 0, 0, 0, 0, 0, 0, 0, 0, false, 0);
    SELECT coalesce(max(id), 0) INTO last_id FROM lifecycle.transitions;
    SELECT coalesce(max(id), 0) INTO last_action FROM lifecycle.actions;
    -- A current model stored before its parameters were checked is set aside here, once,
    -- rather than failing every source's scoring.
    PERFORM lifecycle._check_current_model();
    -- Each source on its own: its part runs in a subtransaction, so that an error in it
    -- (a value, a lock timeout, its table gone or changed) rolls back that source's work
    -- only; the error is kept against the source, which waits until its retry_at, and the
    -- others' changes commit and are announced below. (A cancel, as from tick_timeout,
    -- is not caught: it ends the tick.) When the part failed as a model's functions can
    -- fail and a current model scores with, it is tried once more without the model: if
    -- that succeeds, the model was what failed (a result that is not a finite number, say),
    -- and it stays set aside for every source, rather than failing each source that scores
    -- with it every tick.
    FOR s IN SELECT * FROM lifecycle.sources t
             WHERE t.retry_at IS NULL OR t.retry_at <= now() ORDER BY t.id LOOP
        -- A source whose row another transaction holds FOR UPDATE (an untrack() or a DROP
        -- TABLE of it not yet committed) is skipped, not waited for: that transaction
        -- keeps the worker out of this source only, and of its playbooks (below), until
        -- it ends. The row stays locked FOR KEY SHARE until this commits (taken out of the
        -- source's subtransaction, which may roll back), so an untrack() waits for the
        -- tick instead (docs/worker.md).
        IF NOT EXISTS (SELECT FROM lifecycle.sources t WHERE t.id = s.id
                       FOR KEY SHARE SKIP LOCKED) THEN
            skipped := skipped || s.id;
            CONTINUE;
        END IF;
        kept := r;
        without_model := NULL;
        <<part>>
        LOOP
            BEGIN
                IF without_model IS NOT NULL THEN
                    PERFORM lifecycle._set_model_aside(without_model, first_error);
                END IF;
                IF NOT EXISTS (SELECT FROM pg_class WHERE oid = s.source) THEN
                    -- dropped while event triggers were off, or a temporary table whose
                    -- session ended (lifecycle_on_drop forgets it otherwise): forgotten by
                    -- a function with the rights to (the worker's role may not delete
                    -- everything the engine keeps of it)
                    PERFORM lifecycle._forget_gone_source(s.id);
                    EXIT part;
                END IF;
                -- The engine's date must not go backwards while the source is tracked:
                -- its stages, log and history views are as of a later day. Refused as
                -- the source's failure (kept in source_status, a WARNING, retried with
                -- backoff), so nothing of it is rewritten at the earlier date.
                IF as_of < greatest(s.tracked_on, s.refreshed_on) THEN
                    RAISE EXCEPTION 'the engine''s date (%) is before the day % was last refreshed or tracked at (%): it must not go backwards',
                        as_of, s.source, greatest(s.tracked_on, s.refreshed_on)
                        USING ERRCODE = '55000',
                              HINT = format('Set lifecycle.as_of to %s or later (or empty), or untrack %s and track it again.',
                                            greatest(s.tracked_on, s.refreshed_on), s.source);
                END IF;
                r.sources := r.sources + 1;
                IF s.watermark_column IS NOT NULL THEN
                    -- its new rows into the queue (a batch at a time)
                    r.more := lifecycle._capture_watermark(s, budget) OR r.more;
                END IF;
                stepped := lifecycle._step_time(s, as_of, budget);
                r.due := r.due + stepped.stepped;
                r.transitions := r.transitions + stepped.logged;
                purchases := lifecycle._collect_queued(s, as_of, budget);
                r.queued := r.queued + purchases.written;
                r.transitions := r.transitions + purchases.logged;
                SELECT count(*), count(*) FILTER (WHERE recompute) INTO queued, recomputed
                FROM pg_temp.lifecycle_work;
                IF queued > 0 THEN
                    r.queued := r.queued + queued;
                    r.recomputed := r.recomputed + recomputed;
                    r.transitions := r.transitions + lifecycle._write_stages(s, as_of, NULL);
                END IF;
                IF queued > 0 OR purchases.written > 0 THEN
                    PERFORM lifecycle._record_purchases(s);
                END IF;
                -- (and at once when the breakpoints were taken from no customer at all, as for a
                -- table tracked empty: else everyone would go unscored for an rfm_interval)
                IF s.rescoring OR s.rfm_scored_at IS NULL OR s.rfm_scored_at
                       < now() - current_setting('lifecycle.rfm_interval')::interval
                   OR (coalesce((s.rfm_breakpoints).n, 0) = 0
                       AND EXISTS (SELECT FROM lifecycle.customer_stage c
                                   WHERE c.source_id = s.id AND c.purchases > 0)) THEN
                    rescored := lifecycle._rescore(s.id, as_of, max_customers, false);
                    r.rfm_rescored := r.rfm_rescored + rescored.changed;
                    r.more := r.more OR NOT rescored.finished;
                END IF;
                r.more := r.more
                    OR EXISTS (SELECT FROM lifecycle.change_queue WHERE source_id = s.id)
                    OR EXISTS (SELECT FROM lifecycle.customer_stage
                               WHERE source_id = s.id AND wake_on <= as_of);
                IF s.consecutive_errors > 0 OR s.retry_at IS NOT NULL
                   OR s.refreshed_on IS DISTINCT FROM as_of THEN
                    UPDATE lifecycle.sources t SET consecutive_errors = 0, retry_at = NULL,
                                                   refreshed_on = as_of
                    WHERE t.id = s.id;
                END IF;
                IF without_model IS NOT NULL THEN
                    RAISE WARNING 'lifecycle: the current model "%" failed to score the customers of %, it is set aside: %',
                        without_model, s.source, first_error
                        USING DETAIL = 'Customers are scored without it (churn_risk and expected_value NULL) until the model changes; see lifecycle.models.scoring_error.',
                              HINT = 'Fit it again (lifecycle.fit_model) or correct its parameters.';
                END IF;
                EXIT part;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, sqlstate_of = RETURNED_SQLSTATE;
                r := kept;
                -- (what the model's functions raise: data exceptions, and internal errors
                -- of the numerical code)
                IF without_model IS NULL AND (sqlstate_of LIKE '22%' OR sqlstate_of = 'XX000') THEN
                    without_model := (lifecycle._scoring_model()).name;
                    IF without_model IS NOT NULL THEN
                        first_error := message;
                        first_state := sqlstate_of;
                        CONTINUE part;
                    END IF;
                ELSIF without_model IS NOT NULL THEN
                    message := first_error;   -- (not the model's doing)
                    sqlstate_of := first_state;
                END IF;
                -- 1 s, 2 s, 4 s ... doubled per failure in a row, at most an hour
                UPDATE lifecycle.sources t
                SET last_error = message, last_error_at = now(), errors = t.errors + 1,
                    consecutive_errors = t.consecutive_errors + 1,
                    retry_at = now() + least(interval '1 second'
                                             * power(2, least(t.consecutive_errors, 12)),
                                             interval '1 hour')
                WHERE t.id = s.id
                RETURNING t.retry_at INTO retry;
                RAISE WARNING 'lifecycle: refreshing % failed, it is tried again in % s: %',
                    s.source, extract(epoch FROM retry - now())::bigint, message
                    USING DETAIL = 'SQLSTATE ' || sqlstate_of
                                   || '. The other sources are refreshed; see lifecycle.source_status.';
                EXIT part;
            END;
        END LOOP;
    END LOOP;
    -- (The new transitions are the sources' this refresh did. The dates' enrolments, for
    -- every source at once, wait for a refresh that skipped none: they catch up three days.)
    r.enrolled := lifecycle._enroll(last_id)
                  + CASE WHEN skipped = '{}' THEN lifecycle._enroll_dates(as_of) ELSE 0 END;
    r.actions := lifecycle._schedule(budget, skipped);
    r.more := r.more OR EXISTS (SELECT FROM lifecycle.enrollments e
                                JOIN lifecycle.playbooks p ON p.name = e.playbook AND p.enabled
                                WHERE e.status = 'running'
                                  AND e.next_due_at <= lifecycle.engine_time()
                                  AND e.source_id <> ALL (skipped));
    r.notifications := lifecycle._announce(last_id) + lifecycle._announce_actions(last_action);
    r.elapsed_ms := extract(epoch FROM clock_timestamp() - started) * 1000;
    RETURN r;
END
$$;

------------------------------------------------------------------------------------
-- Issue 21 (values the engine cannot use): rows with a NaN or infinite amount, an
-- amount beyond +/-1e15, an infinite time or a customer id over 1,000 bytes are left out
-- of the computation by the capture trigger, the watermark capture and every read of
-- the source, and recorded in lifecycle.rejected_rows (as in src/engine/tables.sql,
-- capture.sql and refresh.sql; the grants as in src/privileges.sql).
------------------------------------------------------------------------------------

-- Rows of the sources that the engine cannot use and leaves out of the computation
-- (lifecycle._reject_sql: an id too long to index, a time outside the engine's calendar, an amount not
-- finite or beyond +/-1e15), so that they never fail a writer's INSERT nor a tick. Each
-- statement that had such rows inserts one entry per reason (the capture trigger, the
-- watermark capture, track() for the rows already there), with one of its rows as a
-- sample and how many; insert-only, so writers never wait for each other here. The
-- refresh keeps at most five entries per source and reason, folding the later ones into
-- the fifth (_fold_rejected). The count is that of rows rejected as they were captured:
-- a row updated or deleted since is still counted. Not dumped: it describes the
-- database's past writes, as worker_state does the worker's.
CREATE TABLE lifecycle.rejected_rows (
    id          bigserial PRIMARY KEY,
    source_id   integer NOT NULL,
    reason      text NOT NULL CHECK (reason IN ('customer_too_long', 'time_out_of_range',
                                                'amount_not_finite', 'amount_out_of_range')),
    customer    text,            -- the sample's customer id, its first 100 characters
    amount      text,            -- the sample's amount, as text
    rejected_at timestamptz NOT NULL DEFAULT now(),  -- when the entry was recorded
    last_at     timestamptz NOT NULL DEFAULT now(),  -- ... or the last entry folded into it
    row_count   bigint NOT NULL  -- the rows it stands for, folded ones included
);
CREATE INDEX ON lifecycle.rejected_rows (source_id, reason, id);
COMMENT ON TABLE lifecycle.rejected_rows IS
    'Rows of the sources left out of the computation, why, a sample and how many (per source and reason: the first five entries, later ones folded into the fifth)';
COMMENT ON COLUMN lifecycle.rejected_rows.source_id IS 'The tracked orders table (lifecycle.sources.id)';
COMMENT ON COLUMN lifecycle.rejected_rows.reason IS 'Why the rows were left out: customer_too_long (over 1,000 bytes), time_out_of_range (outside 1400-01-01 to 9999-12-31, infinity included), amount_not_finite (NaN, Infinity) or amount_out_of_range (beyond +/-1e15)';
COMMENT ON COLUMN lifecycle.rejected_rows.customer IS 'A sample row''s customer id, its first 100 characters';
COMMENT ON COLUMN lifecycle.rejected_rows.amount IS 'A sample row''s amount, as text';
COMMENT ON COLUMN lifecycle.rejected_rows.rejected_at IS 'When the entry was recorded';
COMMENT ON COLUMN lifecycle.rejected_rows.last_at IS 'When the last rows counted in it were recorded';
COMMENT ON COLUMN lifecycle.rejected_rows.row_count IS 'How many rows it counts: the sample''s statement''s rows of this reason, plus those of later entries folded into it';

DROP FUNCTION lifecycle._amount_sql(lifecycle.sources);

CREATE OR REPLACE FUNCTION lifecycle._reject_sql(s lifecycle.sources) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'CASE'
    || CASE WHEN s.customer_type IN ('text'::regtype, 'character varying'::regtype)
            THEN format(' WHEN octet_length(%I::text) > 1000 THEN ''customer_too_long''',
                        s.customer_column)
            ELSE '' END
    || CASE s.time_type
           WHEN 'timestamp with time zone'::regtype
           THEN format(' WHEN NOT (%I BETWEEN ''1400-01-02 00:00:00+00''::timestamptz'
                       ' AND ''9999-12-30 00:00:00+00''::timestamptz) THEN ''time_out_of_range''',
                       s.time_column)
           ELSE format(' WHEN NOT (%s BETWEEN ''1400-01-01''::date AND ''9999-12-31''::date)'
                       ' THEN ''time_out_of_range''', lifecycle._day_sql(s)) END
    || CASE WHEN s.amount_type = 'bigint'::regtype
            THEN format(' WHEN NOT (%I BETWEEN -1000000000000000 AND 1000000000000000)'
                        ' THEN ''amount_out_of_range''', s.amount_column)
            WHEN s.amount_type IN ('numeric'::regtype, 'real'::regtype,
                                   'double precision'::regtype)
            THEN format(' WHEN NOT (%1$I BETWEEN ''-1e15''::%2$s AND ''1e15''::%2$s)'
                        ' THEN CASE WHEN %1$I::text IN (''NaN'', ''Infinity'', ''-Infinity'')'
                        ' THEN ''amount_not_finite'' ELSE ''amount_out_of_range'' END',
                        s.amount_column,
                        CASE WHEN s.amount_type = 'numeric'::regtype THEN 'numeric'
                             ELSE 'double precision' END)
            ELSE '' END
    || ' END';

CREATE OR REPLACE FUNCTION lifecycle._rejected_sql(s lifecycle.sources, relation text, filter text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format('SELECT %1$s, r, left(c, 100), %2$s, n'
              ' FROM (SELECT c, a, r, row_number() OVER w AS i, count(*) OVER w AS n'
              ' FROM (SELECT %3$I::text AS c, %4$s AS a, %5$s AS r FROM %6$s'
              ' WHERE %3$I IS NOT NULL AND %7$I IS NOT NULL%8$s) AS o'
              ' WHERE r IS NOT NULL WINDOW w AS (PARTITION BY r)) AS x'
              ' WHERE i = 1',
              s.id,
              CASE WHEN s.amount_column IS NULL THEN 'NULL::text'
                   -- (1e400 in scientific notation, not as 401 digits)
                   WHEN s.amount_type = 'numeric'::regtype
                   THEN 'CASE WHEN length(a::text) <= 40 THEN a::text'
                        ' ELSE btrim(to_char(a, ''9.999999EEEE'')) END'
                   ELSE 'a::text' END,
              s.customer_column,
              coalesce(quote_ident(s.amount_column), 'NULL::text'),
              lifecycle._reject_sql(s), relation, s.time_column, filter);

-- The rows of source `source_id` that the engine leaves out (_reject_sql), one row per
-- reason with one of them and how many: of a watermark source, those with ids in
-- (after, upto]; with both NULL, every row the stage table would count. Read as the
-- table's owner (src/pg/source_reader.cpp).
CREATE FUNCTION lifecycle._source_rejected(source_id integer, after bigint, upto bigint)
RETURNS TABLE (source integer, reason text, customer text, amount text, row_count bigint)
AS 'MODULE_PATHNAME', 'lifecycle_source_rejected' LANGUAGE C VOLATILE;

CREATE OR REPLACE FUNCTION lifecycle._forget_source(sid integer) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    DELETE FROM lifecycle.change_queue q WHERE q.source_id = sid;
    DELETE FROM lifecycle.customer_stage c WHERE c.source_id = sid;
    DELETE FROM lifecycle.transitions t WHERE t.source_id = sid;
    -- the playbooks' records of its customers (consent included: nothing is due without it)
    DELETE FROM lifecycle.action_outcomes o
    WHERE o.action_id IN (SELECT a.id FROM lifecycle.actions a WHERE a.source_id = sid);
    DELETE FROM lifecycle.actions a WHERE a.source_id = sid;
    DELETE FROM lifecycle.playbook_log l
    WHERE l.enrollment_id IN (SELECT e.id FROM lifecycle.enrollments e WHERE e.source_id = sid);
    DELETE FROM lifecycle.enrollments e WHERE e.source_id = sid;
    DELETE FROM lifecycle.consent c WHERE c.source_id = sid;
    DELETE FROM lifecycle.consent_log c WHERE c.source_id = sid;
    DELETE FROM lifecycle.contacts c WHERE c.source_id = sid;
    DELETE FROM lifecycle.customer_reasons r WHERE r.source_id = sid;
    DELETE FROM lifecycle.rejected_rows r WHERE r.source_id = sid;
    DELETE FROM lifecycle.sources t WHERE t.id = sid;
END;

CREATE OR REPLACE FUNCTION lifecycle._fold_rejected(sid integer) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH ranked AS (
        SELECT r.id, r.reason, row_number() OVER (PARTITION BY r.reason ORDER BY r.id) AS n
        FROM lifecycle.rejected_rows r WHERE r.source_id = sid
    ), folded AS (
        DELETE FROM lifecycle.rejected_rows r
        USING ranked k WHERE r.id = k.id AND k.n > 5
        RETURNING r.reason, r.row_count, r.last_at
    )
    UPDATE lifecycle.rejected_rows r
    SET row_count = r.row_count + f.row_count, last_at = greatest(r.last_at, f.last_at)
    FROM (SELECT g.reason, sum(g.row_count) AS row_count, max(g.last_at) AS last_at
          FROM folded g GROUP BY g.reason) AS f,
         ranked k
    WHERE r.id = k.id AND k.n = 5 AND k.reason = f.reason;
END;

REVOKE ALL ON FUNCTION lifecycle._reject_sql(lifecycle.sources),
    lifecycle._rejected_sql(lifecycle.sources, text, text),
    lifecycle._source_rejected(integer, bigint, bigint),
    lifecycle._fold_rejected(integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._reject_sql(lifecycle.sources),
    lifecycle._rejected_sql(lifecycle.sources, text, text),
    lifecycle._source_rejected(integer, bigint, bigint),
    lifecycle._fold_rejected(integer)
    TO lifecycle_worker;
GRANT SELECT ON lifecycle.rejected_rows TO lifecycle_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON lifecycle.rejected_rows TO lifecycle_worker;
GRANT USAGE ON SEQUENCE lifecycle.rejected_rows_id_seq TO lifecycle_worker;

------------------------------------------------------------------------------------
-- Issue 21 (merged): _track and _collect_queued with the rejected rows (values the engine cannot use) and the gate locks both.
------------------------------------------------------------------------------------
------------------------------------------------------------------------------------
-- Issue 21 (stored values valid for everyone): time zones are checked as full zone
-- names, whatever the caller's session settings (src/pg/time_zones.cpp), and a stored
-- zone that cannot be loaded at tick time costs only its customer (as in
-- src/engagement/checks.sql, actions.sql and schedule.sql), with the privileges
-- src/privileges.sql gives on a fresh install.
------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION lifecycle._zone_name(zone text) RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_zone_name' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION lifecycle._usable_zone(zone text) RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_usable_zone' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION lifecycle._valid_time_zone(zone text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN lifecycle._zone_name(zone) IS NOT NULL;

CREATE OR REPLACE FUNCTION lifecycle._check_contact() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.time_zone IS NOT NULL THEN
        IF NOT lifecycle._valid_time_zone(NEW.time_zone) THEN
            PERFORM lifecycle._bad_argument('time_zone', format(
                'unknown time zone %L (a name of pg_timezone_names such as Europe/Berlin, '
                'not an abbreviation or offset)', NEW.time_zone));
        END IF;
        NEW.time_zone := lifecycle._zone_name(NEW.time_zone);
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE FUNCTION lifecycle.set_contact(source regclass, customer text, time_zone text DEFAULT NULL,
                                      birthday date DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src integer := lifecycle._tracked_source_id(source);
BEGIN
    PERFORM lifecycle._check_customer(customer);
    IF time_zone IS NOT NULL AND NOT lifecycle._valid_time_zone(time_zone) THEN
        RAISE EXCEPTION 'argument "time_zone": unknown time zone % (a name of '
                        'pg_timezone_names such as Europe/Berlin, not an abbreviation or offset)',
                        quote_literal(time_zone)
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO lifecycle.contacts AS k (source_id, customer, time_zone, birthday)
    VALUES (src, set_contact.customer, set_contact.time_zone, set_contact.birthday)
    ON CONFLICT ON CONSTRAINT contacts_pkey DO UPDATE
        SET time_zone = excluded.time_zone, birthday = excluded.birthday;
END
$$;
CREATE OR REPLACE FUNCTION lifecycle._enroll(after_id bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    upto bigint;
BEGIN
    -- Nothing to enrol without an enabled stage playbook or a new transition: said at
    -- once, without planning the statement below (refresh() plans every statement anew:
    -- about 1 ms a tick for this one).
    IF NOT EXISTS (SELECT FROM lifecycle.playbooks p WHERE p.enabled AND p.trigger = 'stage') THEN
        RETURN 0;
    END IF;
    -- the log read between two ids, by its key whatever its statistics (see _announce)
    upto := (SELECT max(t.id) FROM lifecycle.transitions t);
    IF NOT coalesce(upto > after_id, false) THEN
        RETURN 0;
    END IF;
    WITH plans AS MATERIALIZED (
        -- per playbook, once: its first step and the series' length
        SELECT p.name, f.step AS first_step, f.delay AS first_delay,
               coalesce((SELECT sum(st.delay) FROM lifecycle.playbook_steps st
                         WHERE st.playbook = p.name), interval '0') AS length
        FROM lifecycle.playbooks p
        LEFT JOIN LATERAL (SELECT st.step, st.delay FROM lifecycle.playbook_steps st
                           WHERE st.playbook = p.name ORDER BY st.step LIMIT 1) f ON true
        WHERE p.enabled AND p.trigger = 'stage'
    ), entered AS (
        SELECT DISTINCT ON (p.name, t.source_id, t.customer)
               p.name AS playbook, p.holdout_share, p.attribution_days, t.id AS transition_id,
               t.source_id, t.customer, t.effective,
               coalesce(c.last_purchase, '-infinity') AS episode,
               -- a stored zone PostgreSQL cannot load (any more) counts as none: its
               -- customer is timed in the source's zone, the others are unaffected
               coalesce(lifecycle._usable_zone(k.time_zone), lifecycle._usable_zone(s.time_zone),
                        'UTC') AS zone,
               pl.first_step, pl.first_delay, pl.length
        FROM lifecycle.transitions t
        JOIN lifecycle.playbooks p
          ON p.enabled AND p.trigger = 'stage' AND t.to_stage::text = ANY (p.to_stages)
        JOIN plans pl ON pl.name = p.name
        -- primary-key probes per transition, whatever the statistics say (LIMIT 1 keeps
        -- the planner from scanning a source it takes for small and joining by a filter)
        JOIN LATERAL (SELECT x.* FROM lifecycle.customer_stage x
                      WHERE x.source_id = t.source_id AND x.customer = t.customer LIMIT 1) c ON true
        JOIN lifecycle.sources s ON s.id = t.source_id
        LEFT JOIN LATERAL (SELECT x.time_zone FROM lifecycle.contacts x
                           WHERE x.source_id = t.source_id AND x.customer = t.customer LIMIT 1) k
          ON true
        WHERE t.id > after_id AND t.id <= upto AND t.cause <> 'initial'
          AND c.stage::text = ANY (p.to_stages)
          AND lifecycle._playbook_admits(p, c.segment, c.m, c.churn_risk)
        ORDER BY p.name, t.source_id, t.customer, t.id DESC
    )
    INSERT INTO lifecycle.enrollments AS e
        (playbook, source_id, customer, episode, started_on, transition_id, holdout, status,
         next_step, step_time, next_due_at, counts_after, attribution_until)
    SELECT x.playbook, x.source_id, x.customer, x.episode, x.effective, x.transition_id, x.holdout,
           CASE WHEN x.holdout THEN 'held_out' ELSE 'running' END,
           x.first_step, x.first_time, x.first_time, x.episode, x.attribution_until
    FROM (SELECT en.*, lifecycle._held_out(en.playbook, en.customer, en.holdout_share) AS holdout,
                 (en.effective::timestamp AT TIME ZONE en.zone) + en.first_delay AS first_time,
                 -- as _attribution_until(): the series' length plus the window
                 (en.effective + en.length)::date + en.attribution_days AS attribution_until
          FROM entered en) x
    ON CONFLICT (source_id, customer, playbook, episode) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
CREATE OR REPLACE FUNCTION lifecycle._enroll_dates(as_of date) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p lifecycle.playbooks;
    day date;
    days integer[];
    n bigint;
    total bigint := 0;
BEGIN
    FOR p IN SELECT * FROM lifecycle.playbooks
             WHERE enabled AND trigger IN ('birthday', 'anniversary') ORDER BY name LOOP
        day := greatest(coalesce((SELECT d.done_upto FROM lifecycle.playbook_dates d
                                  WHERE d.playbook = p.name), as_of - 1), as_of - 3) + 1;
        CONTINUE WHEN day > as_of;   -- this day is done
        WHILE day <= as_of LOOP
            days := ARRAY[extract(month FROM day) * 100 + extract(day FROM day)];
            IF extract(month FROM day) = 2 AND extract(day FROM day) = 28
               AND extract(day FROM day + 1) = 1 THEN
                days := days || 229;
            END IF;
            WITH due AS (
                SELECT k.source_id, k.customer, k.time_zone
                FROM lifecycle.contacts k
                WHERE p.trigger = 'birthday' AND k.birthday IS NOT NULL
                  AND k.source_id IN (SELECT id FROM lifecycle.sources)
                  AND extract(month FROM k.birthday) * 100 + extract(day FROM k.birthday) = ANY (days)
                UNION ALL
                SELECT c.source_id, c.customer, NULL
                FROM lifecycle.customer_stage c
                WHERE p.trigger = 'anniversary' AND c.first_purchase < day
                  AND extract(month FROM c.first_purchase) * 100
                      + extract(day FROM c.first_purchase) = ANY (days)
            ), matching AS (
                -- (an unusable stored zone counts as none, as in _enroll)
                SELECT d.*, coalesce(lifecycle._usable_zone(coalesce(
                                         d.time_zone, (SELECT k.time_zone FROM lifecycle.contacts k
                                                       WHERE k.source_id = d.source_id
                                                         AND k.customer = d.customer))),
                                     lifecycle._usable_zone(s.time_zone), 'UTC') AS zone,
                       lifecycle._held_out(p.name, d.customer, p.holdout_share) AS holdout
                FROM due d
                JOIN lifecycle.sources s ON s.id = d.source_id
                LEFT JOIN lifecycle.customer_stage c
                  ON c.source_id = d.source_id AND c.customer = d.customer
                WHERE lifecycle._playbook_admits(p, c.segment, c.m, c.churn_risk)
            )
            INSERT INTO lifecycle.enrollments
                (playbook, source_id, customer, episode, started_on, holdout, status, next_step,
                 step_time, next_due_at, counts_after, attribution_until)
            SELECT p.name, m.source_id, m.customer, day, day, m.holdout,
                   CASE WHEN m.holdout THEN 'held_out' ELSE 'running' END, f.step,
                   (day::timestamp AT TIME ZONE m.zone) + f.delay,
                   (day::timestamp AT TIME ZONE m.zone) + f.delay, day - 1,
                   lifecycle._attribution_until(p.name, day, p.attribution_days)
            FROM matching m
            LEFT JOIN LATERAL (SELECT st.step, st.delay FROM lifecycle.playbook_steps st
                               WHERE st.playbook = p.name ORDER BY st.step LIMIT 1) f ON true
            ON CONFLICT (source_id, customer, playbook, episode) DO NOTHING;
            GET DIAGNOSTICS n = ROW_COUNT;
            total := total + n;
            day := day + 1;
        END LOOP;
        INSERT INTO lifecycle.playbook_dates VALUES (p.name, as_of)
        ON CONFLICT (playbook) DO UPDATE SET done_upto = greatest(playbook_dates.done_upto, as_of);
    END LOOP;
    RETURN total;
END
$$;
REVOKE ALL ON FUNCTION lifecycle._zone_name(text), lifecycle._usable_zone(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._zone_name(text), lifecycle._usable_zone(text) TO PUBLIC;
GRANT EXECUTE ON FUNCTION lifecycle._zone_name(text), lifecycle._usable_zone(text) TO lifecycle_worker;

------------------------------------------------------------------------------------
-- Issue 21 (merged): _capture reads the source's zone with the default abbreviations, as the reader does.
------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION lifecycle._capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET timezone_abbreviations = 'Default' AS $$
DECLARE
    s lifecycle.sources;
    rejected bigint;
BEGIN
    SELECT * INTO s FROM lifecycle.sources WHERE source = TG_RELID;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'TRUNCATE' OR NOT lifecycle._columns_intact(s) THEN
        INSERT INTO lifecycle.change_queue (source_id, customer) VALUES (s.id, NULL);
    ELSIF TG_OP = 'INSERT' THEN
        -- (in rows of up to 1,000 orders: a tick takes whole rows, lifecycle.batch_size
        -- orders and at most 999 more)
        EXECUTE format('WITH rows AS (
                            SELECT array_agg(c) FILTER (WHERE r IS NULL) AS customers,
                                   array_agg(d) FILTER (WHERE r IS NULL) AS days,
                                   array_agg(a::double precision) FILTER (WHERE r IS NULL) AS spends,
                                   count(r) AS rejected
                            FROM (SELECT c, d, a, r, (row_number() OVER () - 1) / 1000 AS k
                                  FROM (SELECT %I::text AS c, %s AS d, %s AS a, %s AS r
                                        FROM lifecycle_new) AS n
                                  WHERE c IS NOT NULL AND d IS NOT NULL) AS o
                            GROUP BY k
                        ), queued AS (
                            INSERT INTO lifecycle.change_queue (source_id, customers, days, spends)
                            SELECT %s, customers, days, spends FROM rows WHERE customers IS NOT NULL
                        )
                        SELECT coalesce(sum(rejected), 0) FROM rows',
                       s.customer_column, lifecycle._day_sql(s),
                       coalesce(quote_ident(s.amount_column), 'NULL::double precision'),
                       lifecycle._reject_sql(s), s.id)
            INTO rejected;
        IF rejected > 0 THEN
            EXECUTE 'INSERT INTO lifecycle.rejected_rows (source_id, reason, customer, amount, row_count) '
                    || lifecycle._rejected_sql(s, 'lifecycle_new', '');
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        -- (an id too long for the stage table's index is never in it: nothing to recompute)
        EXECUTE format('INSERT INTO lifecycle.change_queue (source_id, customer)
                        SELECT DISTINCT %s, c FROM (SELECT %I::text FROM lifecycle_old) AS o (c)
                        WHERE octet_length(c) <= 1000',
                       s.id, s.customer_column);
    ELSE
        -- (and whether new rows are left out, in the same statement: a second one
        -- records them only when there are some; a row without a customer or a time,
        -- which is no order, may bring it about but is not recorded)
        EXECUTE format('WITH n AS (SELECT %2$I::text AS c, %3$s AS r FROM lifecycle_new),
                        queued AS (
                            INSERT INTO lifecycle.change_queue (source_id, customer)
                            SELECT %1$s, c FROM (SELECT c FROM n
                                                 UNION SELECT %2$I::text FROM lifecycle_old) AS u
                            WHERE octet_length(c) <= 1000
                        )
                        SELECT count(r) FROM n',
                       s.id, s.customer_column, lifecycle._reject_sql(s))
            INTO rejected;
        IF rejected > 0 THEN
            EXECUTE 'INSERT INTO lifecycle.rejected_rows (source_id, reason, customer, amount, row_count) '
                    || lifecycle._rejected_sql(s, 'lifecycle_new', '');
        END IF;
    END IF;
    RETURN NULL;
END
$$;

------------------------------------------------------------------------------------
-- Issue 21 (merged): _on_ddl warns of disabled capture triggers.
------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION lifecycle._on_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s lifecycle.sources;
    trig name;
    disabled text;
BEGIN
    FOR s IN
        WITH command AS (
            SELECT c.command_tag, c.classid, c.objid FROM pg_event_trigger_ddl_commands() c
            WHERE c.classid IN ('pg_class'::regclass, 'pg_trigger'::regclass,
                                'pg_rewrite'::regclass)
        ), touched (rel) AS (
            SELECT c.objid FROM command c WHERE c.classid = 'pg_class'::regclass
            UNION
            SELECT g.tgrelid FROM command c JOIN pg_trigger g ON g.oid = c.objid
            WHERE c.classid = 'pg_trigger'::regclass
            UNION  -- (a rule: CREATE RULE "_RETURN" makes an empty table a view)
            SELECT r.ev_class FROM command c JOIN pg_rewrite r ON r.oid = c.objid
            WHERE c.classid = 'pg_rewrite'::regclass
        ), linked (rel) AS (
            SELECT t.rel FROM touched t
            UNION SELECT i.inhparent FROM touched t JOIN pg_inherits i ON i.inhrelid = t.rel
            UNION SELECT i.inhrelid FROM touched t JOIN pg_inherits i ON i.inhparent = t.rel
        )
        SELECT t.* FROM lifecycle.sources t
        WHERE t.source IN (SELECT l.rel FROM linked l)
        ORDER BY t.id
    LOOP
        IF NOT lifecycle._columns_intact(s) THEN
            RAISE EXCEPTION 'a column that lifecycle tracks in % was renamed, dropped or retyped',
                s.source
                USING ERRCODE = '0A000',
                      HINT = format('Call lifecycle.untrack(%L) first, then track the table again.',
                                    s.source::text);
        END IF;
        IF lifecycle._untrackable(s.source) IS NOT NULL THEN
            RAISE EXCEPTION 'lifecycle tracks %, which this would make a partition, an inheritance child or parent, or not a table',
                s.source
                USING ERRCODE = '0A000',
                      HINT = format('Call lifecycle.untrack(%L) first.', s.source::text);
        END IF;
        -- (ALTER TRIGGER ... RENAME: untrack() would not find it again; _track creates them)
        SELECT g.tgname INTO trig
        FROM pg_event_trigger_ddl_commands() c JOIN pg_trigger g ON g.oid = c.objid
        WHERE c.classid = 'pg_trigger'::regclass AND c.command_tag <> 'CREATE TRIGGER'
          AND g.tgrelid = s.source AND g.tgfoid = 'lifecycle._capture()'::regprocedure
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'trigger % of % captures the changes of a table that lifecycle tracks',
                quote_ident(trig), s.source
                USING ERRCODE = '0A000',
                      HINT = format('Call lifecycle.untrack(%L) first: it drops the triggers.',
                                    s.source::text);
        END IF;
        FOR trig IN SELECT g.tgname FROM pg_trigger g
                    WHERE g.tgrelid = s.source AND g.tgname LIKE 'lifecycle\_capture\_%'
                      AND g.tgenabled IN ('O', 'R') LOOP
            EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', s.source, trig);
        END LOOP;
        -- Disabled: the DBA's choice (a bulk load, say), said out loud, with the remedy.
        SELECT string_agg(g.tgname, ', ' ORDER BY g.tgname) INTO disabled FROM pg_trigger g
        WHERE g.tgrelid = s.source AND g.tgname LIKE 'lifecycle\_capture\_%' AND g.tgenabled = 'D';
        IF disabled IS NOT NULL THEN
            RAISE WARNING 'lifecycle: capture triggers of % are disabled (%): its changes are not captured until they are enabled',
                s.source, disabled
                USING HINT = format('Enable them (ALTER TABLE %s ENABLE ALWAYS TRIGGER ...), then call lifecycle.resync(%L) to repair the gap.',
                                    s.source, s.source::text);
        END IF;
    END LOOP;
END
$$;

------------------------------------------------------------------------------------
-- Issue 21 (merged): the scheduler's scratch table is the engine's own too; a scratch table made before 0.3.0 (ALL granted to PUBLIC) is made again.
------------------------------------------------------------------------------------

------------------------------------------------------------------------------------
-- Changed (issue 23): one engine date. The forms that take no as_of judge by the
-- engine's date, lifecycle.engine_date() (lifecycle.as_of when set, else the current
-- date), as the stage engine does: their defaults were CURRENT_DATE / now(). The
-- defaults change, so the functions are made again (CREATE OR REPLACE keeps owners and
-- grants); engine_date() itself is SQL now (inlined where it is a default).
-- And the date must not go backwards while a source is tracked: sources.refreshed_on
-- keeps the engine's date at each source's last refresh, and refresh() (above) refuses
-- a source whose date went back (NULL for the sources of before: their track day is the
-- floor until their next refresh).
------------------------------------------------------------------------------------

ALTER TABLE lifecycle.sources ADD COLUMN refreshed_on date;

CREATE OR REPLACE FUNCTION lifecycle.engine_date() RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(nullif(current_setting('lifecycle.as_of', true), '')::date, CURRENT_DATE);

CREATE OR REPLACE FUNCTION lifecycle.lifecycle_stage(
    first date, last date, n bigint, as_of date DEFAULT lifecycle.engine_date(),
    policy text DEFAULT 'default')
RETURNS lifecycle.stage
AS 'MODULE_PATHNAME', 'lifecycle_stage_policy'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION lifecycle.lifecycle_stage(
    first timestamptz, last timestamptz, n bigint,
    as_of timestamptz DEFAULT lifecycle.engine_date(), policy text DEFAULT 'default')
RETURNS lifecycle.stage
LANGUAGE sql STABLE PARALLEL SAFE
RETURN lifecycle.lifecycle_stage(first::date, last::date, n, as_of::date, policy);

CREATE OR REPLACE FUNCTION lifecycle.next_stage_change(
    first date, last date, n bigint, as_of date DEFAULT lifecycle.engine_date(),
    policy text DEFAULT 'default')
RETURNS date
AS 'MODULE_PATHNAME', 'lifecycle_next_stage_change'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION lifecycle.fit_model(name text, source regclass, customer_column name,
                                    time_column name, amount_column name,
                                    calibration_end date DEFAULT lifecycle.engine_date(),
                                    unit text DEFAULT 'week', make_current boolean DEFAULT true,
                                    model text DEFAULT 'auto', holdout_end date DEFAULT NULL,
                                    horizon_days integer DEFAULT NULL, risk text DEFAULT 'model')
RETURNS lifecycle.models
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m lifecycle.models;
BEGIN
    PERFORM lifecycle._unit_days(unit);
    IF model NOT IN ('auto', 'bgnbd', 'mbgnbd', 'pareto_nbd') THEN
        RAISE EXCEPTION 'argument "model" must be ''auto'', ''bgnbd'', ''mbgnbd'' or ''pareto_nbd'', got %',
            quote_literal(model) USING ERRCODE = '22023';
    END IF;
    IF holdout_end <= calibration_end THEN
        RAISE EXCEPTION 'argument "holdout_end" (%) must be after "calibration_end" (%)',
            holdout_end, calibration_end USING ERRCODE = '22023';
    END IF;
    IF risk NOT IN ('model', 'calibrated') THEN
        RAISE EXCEPTION 'argument "risk" must be ''model'' or ''calibrated'', got %',
            quote_literal(risk) USING ERRCODE = '22023';
    END IF;
    IF risk = 'calibrated' AND holdout_end IS NULL THEN
        RAISE EXCEPTION 'argument "risk": a calibrated risk needs "holdout_end"'
            USING ERRCODE = '22023';
    END IF;
    IF holdout_end IS NOT NULL THEN
        SELECT c.model, c.calibrated_auc, c.recency_auc, holdout_end - calibration_end
        INTO m.calibrated, m.calibrated_auc, m.recency_auc, m.calibrated_horizon_days
        FROM lifecycle.fit_calibrated_risk(source, customer_column, time_column, amount_column,
                                           calibration_end, holdout_end, unit) AS c;
        IF NOT m.calibrated_auc > m.recency_auc THEN
            m.calibrated := NULL;   -- kept only when it beats the recency rule
        END IF;
    END IF;
    m.risk := risk;
    IF risk = 'calibrated' AND m.calibrated IS NULL THEN
        RAISE EXCEPTION 'argument "risk": the calibrated risk did not beat the recency rule on held-out customers (AUC % against %)',
            round(m.calibrated_auc::numeric, 4), round(m.recency_auc::numeric, 4)
            USING ERRCODE = '22023', HINT = 'Use risk => ''model''.';
    END IF;
    SELECT lifecycle.bgnbd_fit(s.frequency, s.recency, s.t),
           lifecycle.mbgnbd_fit(s.frequency, s.recency, s.t),
           lifecycle.pareto_nbd_fit(s.frequency, s.recency, s.t), count(*),
           CASE WHEN count(*) FILTER (WHERE s.frequency > 0) >= 2
                THEN lifecycle.gamma_gamma_fit(s.frequency, s.monetary_value) END
    INTO m.bgnbd, m.mbgnbd, m.pareto_nbd, m.customers, m.gamma_gamma
    FROM lifecycle.model_summary(source, customer_column, time_column, amount_column,
                                 calibration_end, unit) AS s;
    IF model <> 'auto' THEN
        m.kind := model;
        m.chosen_by := 'user';
    ELSIF holdout_end IS NOT NULL THEN
        SELECT c.model, format('holdout AUC %s (%s to %s)', round(c.churn_auc::numeric, 4),
                               calibration_end, holdout_end)
        INTO m.kind, m.chosen_by
        FROM lifecycle.compare_models(source, customer_column, time_column, amount_column,
                                      calibration_end, holdout_end, unit) AS c
        WHERE c.model <> 'recency' ORDER BY c.churn_auc DESC, c.model LIMIT 1;
    ELSE
        SELECT k.kind, format('log-likelihood %s (lowest BIC)', round(k.ll::numeric, 2))
        INTO m.kind, m.chosen_by
        FROM (VALUES ('bgnbd', (m.bgnbd).log_likelihood), ('mbgnbd', (m.mbgnbd).log_likelihood),
                     ('pareto_nbd', (m.pareto_nbd).log_likelihood)) AS k (kind, ll)
        WHERE k.ll IS NOT NULL ORDER BY k.ll DESC, k.kind LIMIT 1;
    END IF;
    IF make_current THEN
        UPDATE lifecycle.models SET is_current = false WHERE is_current;
    END IF;
    INSERT INTO lifecycle.models AS k (name, source, customer_column, time_column, amount_column,
                                       calibration_end, unit, customers, kind, chosen_by, bgnbd,
                                       mbgnbd, pareto_nbd, gamma_gamma, horizon_days, calibrated,
                                       calibrated_horizon_days, calibrated_auc, recency_auc,
                                       risk, is_current)
    VALUES (fit_model.name, source::text, customer_column, time_column, amount_column,
            calibration_end, unit, m.customers, m.kind, m.chosen_by, m.bgnbd, m.mbgnbd,
            m.pareto_nbd, m.gamma_gamma, horizon_days, m.calibrated, m.calibrated_horizon_days,
            m.calibrated_auc, m.recency_auc, m.risk, make_current)
    ON CONFLICT ON CONSTRAINT models_pkey DO UPDATE SET
        fitted_at = now(), source = excluded.source, customer_column = excluded.customer_column,
        time_column = excluded.time_column, amount_column = excluded.amount_column,
        calibration_end = excluded.calibration_end, unit = excluded.unit,
        customers = excluded.customers, kind = excluded.kind, chosen_by = excluded.chosen_by,
        bgnbd = excluded.bgnbd, mbgnbd = excluded.mbgnbd, pareto_nbd = excluded.pareto_nbd,
        gamma_gamma = excluded.gamma_gamma, horizon_days = excluded.horizon_days,
        calibrated = excluded.calibrated, calibrated_horizon_days = excluded.calibrated_horizon_days,
        calibrated_auc = excluded.calibrated_auc, recency_auc = excluded.recency_auc,
        risk = excluded.risk, is_current = excluded.is_current
    RETURNING * INTO m;
    RETURN m;
END
$$;
