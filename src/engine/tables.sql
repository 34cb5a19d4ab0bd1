
------------------------------------------------------------------------------------
-- 0.2.0: the stage engine, in four files: its tables (here), capturing changes
-- (capture.sql), refresh (refresh.sql) and the views (views.sql); privileges.sql grants.
-- Part of lifecycle--0.2.0.sql and of the 0.1.0 -> 0.2.0 upgrade (see the Makefile).
------------------------------------------------------------------------------------

-- Calling this loads the library, which defines the lifecycle.* settings.
CREATE FUNCTION lifecycle._load() RETURNS void
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'lifecycle_load';

-- When a customer's stage will next change if nothing is bought (the stage engine keeps
-- it in customer_stage.next_change and wakes the customer then).
CREATE FUNCTION lifecycle.next_stage_change(
    first date, last date, n bigint, as_of date DEFAULT lifecycle.engine_date(),
    policy text DEFAULT 'default')
RETURNS date
AS 'MODULE_PATHNAME', 'lifecycle_next_stage_change'
LANGUAGE C STABLE PARALLEL SAFE;

-- (lifecycle.engine_date(), the engine's today, is defined in src/lifecycle.sql.)

------------------------------------------------------------------------------------
-- Tracked sources and the change queue
------------------------------------------------------------------------------------

-- An orders table the engine follows. Column names are stored as names and only ever
-- put into SQL quoted. The columns' types are stored too, and must be built-in types
-- (lifecycle._allowed_type): every read checks them against pg_attribute again, so no
-- cast, operator or domain CHECK of a user's type ever runs inside the engine.
CREATE TABLE lifecycle.sources (
    id              serial PRIMARY KEY,
    source          regclass NOT NULL UNIQUE,
    customer_column name NOT NULL,
    time_column     name NOT NULL,
    amount_column   name,
    customer_type   regtype NOT NULL,
    time_type       regtype NOT NULL,
    amount_type     regtype,
    time_zone       text NOT NULL,   -- the zone in which timestamptz values become days
    policy          text NOT NULL,
    tracked_at      timestamptz NOT NULL DEFAULT now(),
    tracked_on      date NOT NULL,   -- the engine's date then: the log is complete from here
    rfm_breakpoints lifecycle.rfm_breakpoints,
    rfm_scored_at   timestamptz,     -- when the last rescoring pass ended
    rescoring       boolean NOT NULL DEFAULT false,  -- a pass is under way (see _rescore)
    rescore_from    text COLLATE "C", -- the last customer it rescored
    -- Watermark capture (track(..., watermark_column)): new rows are read by their id,
    -- not queued by a trigger; see _capture_watermark in capture.sql and docs/design.md.
    watermark_column   name,         -- NULL: every change is captured by triggers
    watermark_type     regtype,
    watermark_sequence regclass,     -- the sequence that fills the column
    watermark          bigint,       -- every row with an id up to this one is counted
    watermark_seen     bigint,       -- the sequence's position at the last capture
    watermark_holders  text[],       -- transactions that held the sequence then ...
    watermark_floors   bigint[],     -- ... and the id above which each one's rows lie
    -- The source's part of a refresh runs on its own (a subtransaction): when it fails,
    -- its work is rolled back, the error is kept here and the source alone waits until
    -- retry_at (1 s doubled per failure in a row, at most an hour) while the others go on.
    -- A success clears consecutive_errors and retry_at. (0.3.0; last, as ALTER TABLE
    -- ADD COLUMN puts them.) See the view source_status.
    last_error         text,         -- message of the last failure
    last_error_at      timestamptz,
    consecutive_errors integer NOT NULL DEFAULT 0,
    errors             bigint NOT NULL DEFAULT 0,
    retry_at           timestamptz,  -- refresh() skips the source until then
    -- The engine's date at the source's last refresh (NULL: none yet; 0.3.0, last as
    -- ALTER TABLE ADD COLUMN puts it). A refresh at an earlier date is refused for the
    -- source (the engine's date must not go backwards while it is tracked).
    refreshed_on       date
);
COMMENT ON TABLE lifecycle.sources IS 'Orders tables tracked by the stage engine (lifecycle.track)';

-- Changes to the sources, written by statement-level triggers and consumed by refresh().
-- An INSERT queues its orders' customers, purchase days and amounts, so that refresh()
-- can add them to what it knows without reading the source again: in rows of up to 1,000
-- orders each, as three arrays of the same length (customers, days, spends), because a
-- row per order made the queue a second copy of the writer's INSERT (a 10k-row INSERT
-- cost 1.95-2.04x an untracked one; bench/README.md). An UPDATE or DELETE queues each
-- customer with no day (customer, day NULL): it is recomputed from the source. A row
-- with neither customer nor customers: a TRUNCATE, or with `correction` a resync(): every
-- customer is recomputed from the source. (Rows of one order each, customer and day set,
-- are what 0.2.0's trigger wrote; refresh() still reads them.)
-- No foreign keys here or below: they would cost a trigger per row, and untrack()
-- removes a source's rows itself. Nor an index on the customer: refresh() reads the
-- queue in id order, and the few lookups by customer scan what is left of it after a
-- tick took its share.
CREATE TABLE lifecycle.change_queue (
    id        bigserial PRIMARY KEY,
    source_id integer NOT NULL,
    customer  text COLLATE "C",
    day       date,
    spend     double precision,
    queued_at timestamptz NOT NULL DEFAULT now(),
    customers text[] COLLATE "C",   -- (after queued_at: as ALTER TABLE added them in 0.3.0)
    days      date[],
    spends    double precision[],
    -- resync()'s request (customer and customers NULL): the recomputation it asks for is
    -- logged as corrections, by the tick that takes this row (0.3.0, issue 21: resync()
    -- no longer writes the stage table itself, so that only refreshes log announced
    -- transitions and their ids follow commit order)
    correction boolean
);

------------------------------------------------------------------------------------
-- The stage table and the transitions log
------------------------------------------------------------------------------------

CREATE TABLE lifecycle.customer_stage (
    source_id      integer NOT NULL,
    customer       text COLLATE "C" NOT NULL,  -- ids compare as bytes: fast, any locale
    first_purchase date,             -- NULL while all the customer's orders are in the future
    last_purchase  date,
    purchases      bigint NOT NULL,  -- distinct purchase days up to the engine's date
    spend          double precision, -- total amount of those orders
    stage          lifecycle.stage NOT NULL,
    stage_since    date NOT NULL,
    next_change    date,             -- when the stage changes if nothing is bought
    next_order     date,             -- the first order dated after the engine's date
    r              integer,
    f              integer,
    m              integer,
    segment        text,
    churn_risk     double precision, -- P(no purchase within the horizon) under the current model
    expected_value double precision, -- lifetime value from the current model
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- When refresh() next looks at the customer: on or before next_change, and NULL only
    -- when next_change is. A purchase moves next_change later but leaves this day alone
    -- while it lies ahead, so the row's indexed columns do not change and the update is
    -- HOT (in place, no index entry); on that day the time step finds nothing due and
    -- sets it to next_change. (0.3.0; last, as ALTER TABLE ADD COLUMN puts it.)
    wake_on        date,
    -- The stage a purchase written by _write_purchases moved the customer from (NULL: it
    -- stayed): an UPDATE returns only the new row, and this is how that one statement
    -- logs its own transitions. Engine bookkeeping. (0.3.0.)
    moved_from     lifecycle.stage,
    PRIMARY KEY (source_id, customer)
) WITH (fillfactor = 90);  -- room on each page for the new versions of HOT updates
CREATE INDEX customer_stage_due ON lifecycle.customer_stage (source_id, wake_on)
    WHERE wake_on IS NOT NULL;
COMMENT ON TABLE lifecycle.customer_stage IS
    'Per tracked customer: purchases, stage, when it will change, RFM; kept by refresh()';

CREATE TABLE lifecycle.transitions (
    id         bigserial PRIMARY KEY,
    source_id  integer NOT NULL,
    customer   text COLLATE "C" NOT NULL,
    from_stage lifecycle.stage NOT NULL,
    to_stage   lifecycle.stage NOT NULL,
    effective  date NOT NULL,        -- the day the stage changed
    cause      text NOT NULL CHECK (cause IN ('purchase', 'time', 'correction', 'initial')),
    logged_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON lifecycle.transitions (source_id, customer, id);
COMMENT ON TABLE lifecycle.transitions IS
    'Every stage change, in order of id; NOTIFY announces each one when it commits';

-- The worker's figures, one row per database (see the view worker_status).
CREATE TABLE lifecycle.worker_state (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pid                integer,
    ticks              bigint NOT NULL DEFAULT 0,
    errors             bigint NOT NULL DEFAULT 0,
    consecutive_errors integer NOT NULL DEFAULT 0,
    last_tick_at       timestamptz,
    last_tick_ms       double precision,
    last_customers     bigint,
    last_transitions   bigint,
    last_error         text,
    last_error_at      timestamptz
);

-- Refreshes lock this table (EXCLUSIVE) to run one at a time. An advisory lock would do
-- the same, but any role can take any advisory lock and stall the engine; this table can
-- be locked only by roles with UPDATE on it (lifecycle_worker) and superusers. Empty.
CREATE TABLE lifecycle.refresh_lock ();
COMMENT ON TABLE lifecycle.refresh_lock IS
    'Locked by each refresh so that refreshes run one at a time; holds no rows';

-- What users create and change is kept by pg_dump (the worker's figures are not).
SELECT pg_catalog.pg_extension_config_dump('lifecycle.sources', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.sources_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.change_queue', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.change_queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.customer_stage', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.transitions', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.transitions_id_seq', '');


------------------------------------------------------------------------------------
-- 0.3.0: rows the engine leaves out
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
