
------------------------------------------------------------------------------------
-- 0.2.0: the stage engine: tracked sources, the change queue, the stage table, the
-- transitions log, refresh() and the views the background worker and BI read.
-- Part of lifecycle--0.2.0.sql and of the 0.1.0 -> 0.2.0 upgrade (see the Makefile).
------------------------------------------------------------------------------------

-- Calling this loads the library, which defines the lifecycle.* settings.
CREATE FUNCTION lifecycle._load() RETURNS void
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'lifecycle_load';

-- When a customer's stage will next change if nothing is bought (the stage engine keeps
-- it in customer_stage.next_change and wakes the customer then).
CREATE FUNCTION lifecycle.next_stage_change(
    first date, last date, n bigint, as_of date DEFAULT CURRENT_DATE, policy text DEFAULT 'default')
RETURNS date
AS 'MODULE_PATHNAME', 'lifecycle_next_stage_change'
LANGUAGE C STABLE PARALLEL SAFE;

-- The engine's today: the setting lifecycle.as_of, or the current date.
CREATE FUNCTION lifecycle.engine_date() RETURNS date
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    PERFORM lifecycle._load();
    RETURN coalesce(nullif(current_setting('lifecycle.as_of'), '')::date, CURRENT_DATE);
END
$$;

------------------------------------------------------------------------------------
-- Tracked sources and the change queue
------------------------------------------------------------------------------------

-- An orders table the engine follows. Column names are stored as names and only ever
-- put into SQL with format('%I'); the customer column's type, from format_type(), is
-- how the engine casts the stored text ids back to use the source's index.
CREATE TABLE lifecycle.sources (
    id              serial PRIMARY KEY,
    source          regclass NOT NULL UNIQUE,
    customer_column name NOT NULL,
    time_column     name NOT NULL,
    amount_column   name,
    customer_type   text NOT NULL,
    time_type       text NOT NULL,
    time_zone       text NOT NULL,   -- the zone in which timestamptz values become days
    policy          text NOT NULL,
    tracked_at      timestamptz NOT NULL DEFAULT now(),
    tracked_on      date NOT NULL,   -- the engine's date then: the log is complete from here
    rfm_breakpoints lifecycle.rfm_breakpoints,
    rfm_scored_at   timestamptz
);
COMMENT ON TABLE lifecycle.sources IS 'Orders tables tracked by the stage engine (lifecycle.track)';

-- Changes to the sources, written by statement-level triggers and consumed by refresh().
-- An INSERT queues a row per customer and purchase day with the day's amount, so that
-- refresh() can add it to what it knows without reading the source again; an UPDATE or
-- DELETE queues the customer with no day (NULL): it is recomputed from the source. A NULL
-- customer: a TRUNCATE.
-- No foreign keys here or below: they would cost a trigger per row, and untrack()
-- removes a source's rows itself.
CREATE TABLE lifecycle.change_queue (
    id        bigserial PRIMARY KEY,
    source_id integer NOT NULL,
    customer  text COLLATE "C",
    day       date,
    spend     double precision,
    queued_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON lifecycle.change_queue (source_id, customer);

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
    churn_risk     double precision, -- 1 - P(alive) from the current model, when there is one
    expected_value double precision, -- lifetime value from the current model
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, customer)
);
CREATE INDEX customer_stage_due ON lifecycle.customer_stage (source_id, next_change)
    WHERE next_change IS NOT NULL;
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

-- What users create and change is kept by pg_dump (the worker's figures are not).
SELECT pg_catalog.pg_extension_config_dump('lifecycle.sources', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.sources_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.change_queue', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.change_queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.customer_stage', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.transitions', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.transitions_id_seq', '');

------------------------------------------------------------------------------------
-- Capturing changes
------------------------------------------------------------------------------------

-- Statement-level trigger on a tracked source: queues the customers of the changed rows,
-- read from the transition tables. Runs as the extension's owner so writers need no
-- rights on lifecycle's tables; so it trusts nothing but lifecycle.sources: the source is
-- found by the trigger's table, and a table that is not tracked queues nothing (anyone
-- may attach this function to a table of their own).
CREATE FUNCTION lifecycle._capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s lifecycle.sources;
BEGIN
    SELECT * INTO s FROM lifecycle.sources WHERE source = TG_RELID;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO lifecycle.change_queue (source_id, customer) VALUES (s.id, NULL);
    ELSIF TG_OP = 'INSERT' THEN
        EXECUTE format('INSERT INTO lifecycle.change_queue (source_id, customer, day, spend)
                        SELECT %s, c::text, d, sum(a)
                        FROM (SELECT %I AS c, %s AS d, %s AS a FROM lifecycle_new) AS n
                        WHERE c IS NOT NULL AND d IS NOT NULL GROUP BY c, d',
                       s.id, s.customer_column, lifecycle._day_sql(s), lifecycle._amount_sql(s));
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('INSERT INTO lifecycle.change_queue (source_id, customer)
                        SELECT DISTINCT %s, %I::text FROM lifecycle_old WHERE %I IS NOT NULL',
                       s.id, s.customer_column, s.customer_column);
    ELSE
        EXECUTE format('INSERT INTO lifecycle.change_queue (source_id, customer)
                        SELECT %s, c FROM (SELECT %I::text FROM lifecycle_new
                                           UNION SELECT %I::text FROM lifecycle_old) AS u (c)
                        WHERE c IS NOT NULL',
                       s.id, s.customer_column, s.customer_column);
    END IF;
    RETURN NULL;
END
$$;

-- How a source's time column becomes a day, as SQL over the column.
CREATE FUNCTION lifecycle._day_sql(s lifecycle.sources) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE s.time_type
    WHEN 'date' THEN format('%I', s.time_column)
    WHEN 'timestamp with time zone' THEN
        format('(%I AT TIME ZONE %L)::date', s.time_column, s.time_zone)
    ELSE format('%I::date', s.time_column)
END;

-- A source's amount as SQL (NULL when it has none).
CREATE FUNCTION lifecycle._amount_sql(s lifecycle.sources) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(format('%I::double precision', s.amount_column), 'NULL::double precision');

-- Starts following an orders table: checks the columns, installs the triggers and fills
-- the stage table (each customer's stage is logged as an 'initial' transition, without
-- NOTIFY). Returns the source's id.
CREATE FUNCTION lifecycle.track(source regclass, customer_column name, time_column name,
                                amount_column name DEFAULT NULL, policy text DEFAULT 'default')
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s lifecycle.sources;
    coltype text;
BEGIN
    PERFORM pg_advisory_xact_lock(lifecycle._refresh_lock());
    IF NOT EXISTS (SELECT FROM lifecycle.policies p WHERE p.name = track.policy) THEN
        RAISE EXCEPTION 'argument "policy": no policy named "%"', policy
            USING ERRCODE = '22023', HINT = 'The policies are in lifecycle.policies.';
    END IF;
    IF EXISTS (SELECT FROM lifecycle.sources t WHERE t.source = track.source) THEN
        RAISE EXCEPTION 'argument "source": % is tracked already', source
            USING ERRCODE = '42710', HINT = 'Call lifecycle.untrack first to change how.';
    END IF;
    IF (SELECT relkind FROM pg_class WHERE oid = source) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'argument "source": % is not a table', source USING ERRCODE = '42809';
    END IF;
    s.customer_type := lifecycle._column_type(source, customer_column, 'customer_column');
    s.time_type := lifecycle._column_type(source, time_column, 'time_column');
    IF s.time_type NOT IN ('date', 'timestamp without time zone', 'timestamp with time zone') THEN
        RAISE EXCEPTION 'argument "time_column": column % of % is %, not a date or timestamp',
            quote_ident(time_column), source, s.time_type USING ERRCODE = '42804';
    END IF;
    IF amount_column IS NOT NULL THEN
        coltype := lifecycle._column_type(source, amount_column, 'amount_column');
        IF (SELECT typcategory FROM pg_type WHERE oid = to_regtype(coltype)) <> 'N' THEN
            RAISE EXCEPTION 'argument "amount_column": column % of % is %, not a number',
                quote_ident(amount_column), source, coltype USING ERRCODE = '42804';
        END IF;
    END IF;
    INSERT INTO lifecycle.sources (source, customer_column, time_column, amount_column,
                                   customer_type, time_type, time_zone, policy, tracked_on)
    VALUES (source, customer_column, time_column, amount_column, s.customer_type, s.time_type,
            current_setting('TimeZone'), policy, lifecycle.engine_date())
    RETURNING * INTO s;
    EXECUTE format('CREATE TRIGGER lifecycle_capture_insert AFTER INSERT ON %s
                    REFERENCING NEW TABLE AS lifecycle_new FOR EACH STATEMENT
                    EXECUTE FUNCTION lifecycle._capture()', source);
    EXECUTE format('CREATE TRIGGER lifecycle_capture_update AFTER UPDATE ON %s
                    REFERENCING OLD TABLE AS lifecycle_old NEW TABLE AS lifecycle_new
                    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._capture()', source);
    EXECUTE format('CREATE TRIGGER lifecycle_capture_delete AFTER DELETE ON %s
                    REFERENCING OLD TABLE AS lifecycle_old FOR EACH STATEMENT
                    EXECUTE FUNCTION lifecycle._capture()', source);
    EXECUTE format('CREATE TRIGGER lifecycle_capture_truncate AFTER TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._capture()', source);
    IF NOT EXISTS (SELECT FROM pg_index i JOIN pg_attribute a
                       ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = source AND a.attname = customer_column) THEN
        RAISE NOTICE 'no index on %(%): each refresh will scan the table',
            source, quote_ident(customer_column)
            USING HINT = format('CREATE INDEX ON %s (%I);', source, customer_column);
    END IF;
    PERFORM lifecycle._gather_all(s, s.tracked_on);
    PERFORM lifecycle._apply(s, s.tracked_on, 'initial');
    PERFORM lifecycle._rescore(s.id, s.tracked_on);
    RETURN s.id;
END
$$;

-- The type of column `col` of `tab`, or an ERROR naming the argument.
CREATE FUNCTION lifecycle._column_type(tab regclass, col name, argument text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    t text;
BEGIN
    SELECT format_type(atttypid, atttypmod) INTO t FROM pg_attribute
    WHERE attrelid = tab AND attname = col AND attnum > 0 AND NOT attisdropped;
    IF t IS NULL THEN
        RAISE EXCEPTION 'argument "%": % has no column %', argument, tab, quote_ident(col)
            USING ERRCODE = '42703';
    END IF;
    RETURN t;
END
$$;

-- Stops following a source: drops its triggers and its rows in the engine's tables.
CREATE FUNCTION lifecycle.untrack(source regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    trig text;
    sid integer;
BEGIN
    PERFORM pg_advisory_xact_lock(lifecycle._refresh_lock());
    SELECT t.id INTO sid FROM lifecycle.sources t WHERE t.source = untrack.source;
    IF sid IS NULL THEN
        RAISE EXCEPTION 'argument "source": % is not tracked', source USING ERRCODE = '22023';
    END IF;
    FOREACH trig IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', 'lifecycle_capture_' || trig, source);
    END LOOP;
    DELETE FROM lifecycle.change_queue q WHERE q.source_id = sid;
    DELETE FROM lifecycle.customer_stage c WHERE c.source_id = sid;
    DELETE FROM lifecycle.transitions t WHERE t.source_id = sid;
    DELETE FROM lifecycle.sources t WHERE t.id = sid;
END
$$;

------------------------------------------------------------------------------------
-- Refresh
------------------------------------------------------------------------------------

-- One refresh at a time per database: the transitions' ids then follow commit order,
-- which is what lets a listener catch up with "WHERE id > last seen".
CREATE FUNCTION lifecycle._refresh_lock() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN 7810175542870287461;  -- any fixed key of our own

-- The scratch table of one refresh (per session, emptied at commit): per customer looked
-- at, its old row (known, old_*), whether it is recomputed from the
-- source (else its queued days are added to the old history) and its new history.
CREATE FUNCTION lifecycle._work_table() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.lifecycle_work') IS NOT NULL THEN
        RETURN;
    END IF;
    CREATE TEMP TABLE lifecycle_work (
        customer text COLLATE "C" PRIMARY KEY, recompute boolean NOT NULL, known boolean NOT NULL,
        old_stage lifecycle.stage, old_last date, gone boolean NOT NULL DEFAULT false,
        row_id tid,  -- where the customer's row is: written back without a second index probe
        first_purchase date, last_purchase date, purchases bigint, spend double precision,
        next_order date)
        ON COMMIT DELETE ROWS;
END
$$;

-- Reads from source `s`, as of `as_of`, the purchase histories of the customers in
-- lifecycle_work marked recompute, or of every customer when `all_customers` (adding
-- them). In the same statement (one snapshot) it deletes the queue rows of those
-- customers: an order this read sees has its queue row deleted with it, and an order it
-- does not see keeps its queue row for the next refresh. Nothing is counted twice or
-- missed. Customers with no order left are marked gone.
CREATE FUNCTION lifecycle._read_source(s lifecycle.sources, as_of date, all_customers boolean)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE pg_temp.lifecycle_work
    SET first_purchase = NULL, last_purchase = NULL, purchases = NULL, spend = NULL
    WHERE recompute;
    EXECUTE format(
        'WITH seen AS (
             DELETE FROM lifecycle.change_queue q
             WHERE q.source_id = %6$s
               AND ($3 OR q.customer IN (SELECT customer FROM pg_temp.lifecycle_work
                                         WHERE recompute))),
         fresh AS (
             SELECT c::text AS customer, min(d) FILTER (WHERE d <= $2) AS first_purchase,
                    max(d) FILTER (WHERE d <= $2) AS last_purchase,
                    count(DISTINCT d) FILTER (WHERE d <= $2) AS purchases,
                    sum(a) FILTER (WHERE d <= $2) AS spend, min(d) FILTER (WHERE d > $2) AS next_order
             FROM (SELECT %1$I AS c, %2$s AS d, %3$s AS a FROM %4$s
                   WHERE %1$I IS NOT NULL AND %2$s IS NOT NULL
                     AND ($3 OR %1$I = ANY ($1::%5$s[]))) AS o
             GROUP BY c)
         INSERT INTO pg_temp.lifecycle_work AS w (customer, recompute, known, first_purchase,
                                                  last_purchase, purchases, spend, next_order)
         SELECT customer, true, false, first_purchase, last_purchase, purchases, spend, next_order
         FROM fresh
         ON CONFLICT (customer) DO UPDATE SET
             first_purchase = excluded.first_purchase, last_purchase = excluded.last_purchase,
             purchases = excluded.purchases, spend = excluded.spend, next_order = excluded.next_order',
        s.customer_column, lifecycle._day_sql(s), lifecycle._amount_sql(s), s.source,
        s.customer_type, s.id)
    USING ARRAY(SELECT customer FROM pg_temp.lifecycle_work WHERE recompute), as_of,
          all_customers;
    UPDATE pg_temp.lifecycle_work SET gone = true WHERE recompute AND purchases IS NULL;
END
$$;

-- Every customer of source `s` into lifecycle_work, recomputed (at track(), and after a
-- TRUNCATE).
CREATE FUNCTION lifecycle._gather_all(s lifecycle.sources, as_of date) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = on SET enable_mergejoin = on AS $$
BEGIN
    PERFORM lifecycle._work_table();
    TRUNCATE pg_temp.lifecycle_work;
    INSERT INTO pg_temp.lifecycle_work (customer, recompute, known, old_stage, old_last, row_id)
    SELECT customer, true, true, stage, last_purchase, ctid
    FROM lifecycle.customer_stage WHERE source_id = s.id;
    PERFORM lifecycle._read_source(s, as_of, true);
END
$$;

-- Takes up to `budget` queue rows of source `s` and works out the new purchase histories
-- of their customers into lifecycle_work. Queued purchase days after the last known one
-- (or before the first) are simply added; anything else (an UPDATE, a DELETE, a day
-- between the first and last purchase, a day after as_of, an order that came due) is
-- recomputed from the source. When the queue held a TRUNCATE every customer is gathered.
CREATE FUNCTION lifecycle._gather(s lifecycle.sources, as_of date, budget bigint)
RETURNS void
-- Index lookups, whatever the planner guesses of the scratch tables: the cost must follow
-- the number of changed customers, not the size of the stage table.
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    truncated boolean;
BEGIN
    PERFORM lifecycle._work_table();
    TRUNCATE pg_temp.lifecycle_work;
    -- The oldest `budget` queue rows: everything up to the budget-th id (a range of the
    -- primary key, read in order, rather than `budget` separate lookups).
    WITH taken AS (
        DELETE FROM lifecycle.change_queue q
        WHERE q.source_id = s.id
          AND q.id <= coalesce((SELECT id FROM lifecycle.change_queue WHERE source_id = s.id
                                ORDER BY id OFFSET budget - 1 LIMIT 1), 9223372036854775807)
        RETURNING q.customer, q.day, q.spend
    ), gathered AS (
        INSERT INTO pg_temp.lifecycle_work (customer, recompute, known, old_stage, old_last, row_id,
                                            first_purchase, last_purchase, purchases, spend)
        SELECT q.customer,
               coalesce(bool_or(q.day IS NULL OR q.day > as_of OR c.next_order IS NOT NULL
                                OR (q.day > c.first_purchase AND q.day < c.last_purchase)), false),
               c.customer IS NOT NULL, c.stage, c.last_purchase, c.ctid,
               least(c.first_purchase, min(q.day)), greatest(c.last_purchase, max(q.day)),
               coalesce(c.purchases, 0) + count(DISTINCT q.day) FILTER (
                   WHERE c.customer IS NULL OR q.day < c.first_purchase OR q.day > c.last_purchase),
               CASE WHEN c.spend IS NULL AND sum(q.spend) IS NULL THEN NULL
                    ELSE coalesce(c.spend, 0) + coalesce(sum(q.spend), 0) END
        -- in the index's order: neighbouring customers share pages, which stay in cache
        FROM (SELECT * FROM taken WHERE customer IS NOT NULL ORDER BY customer) AS q
        LEFT JOIN lifecycle.customer_stage c ON c.source_id = s.id AND c.customer = q.customer
        GROUP BY q.customer, c.customer, c.ctid, c.stage, c.first_purchase, c.last_purchase,
                 c.purchases, c.spend, c.next_order)
    SELECT coalesce(bool_or(customer IS NULL), false) INTO truncated FROM taken;
    IF truncated THEN
        PERFORM lifecycle._gather_all(s, as_of);
        RETURN;
    END IF;
    -- Customers whose order dated in the future has come due.
    INSERT INTO pg_temp.lifecycle_work (customer, recompute, known, old_stage, old_last, row_id)
    SELECT customer, true, true, stage, last_purchase, ctid FROM lifecycle.customer_stage
    WHERE source_id = s.id AND next_change <= as_of AND next_order <= as_of
    ON CONFLICT (customer) DO UPDATE SET recompute = true;
    IF EXISTS (SELECT FROM pg_temp.lifecycle_work WHERE recompute) THEN
        PERFORM lifecycle._read_source(s, as_of, false);
    END IF;
END
$$;

-- Writes the histories in lifecycle_work in one statement: each customer's stage as of
-- `as_of` and next change, computed as its row is written; customers with no order left
-- removed; and a transition for each stage that changed (cause `cause`, or when NULL
-- 'purchase' if the last purchase moved forward and 'correction' otherwise), from the old
-- stage kept in lifecycle_work. Returns the number of transitions.
CREATE FUNCTION lifecycle._apply(s lifecycle.sources, as_of date, cause text) RETURNS bigint
-- Index lookups, whatever the planner guesses of the scratch tables: the cost must follow
-- the number of changed customers, not the size of the stage table.
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    logged bigint;
    model lifecycle.models := (SELECT k FROM lifecycle.models k WHERE is_current);
BEGIN
    WITH fresh AS (
        SELECT w.*, x.stage AS new_stage, x.next_change AS new_next_change,
               lifecycle._rfm_of(w.first_purchase, w.last_purchase, w.purchases, w.spend, as_of,
                                 s.rfm_breakpoints) AS rfm,
               lifecycle._churn_risk(model, w.first_purchase, w.last_purchase, w.purchases, as_of)
                   AS churn_risk,
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
            churn_risk = f.churn_risk, expected_value = f.expected_value, updated_at = now()
        FROM fresh f
        WHERE f.known AND c.ctid = f.row_id
        RETURNING f.customer, f.old_stage, f.new_stage, f.old_last, f.last_purchase, f.purchases
    ), added AS (
        INSERT INTO lifecycle.customer_stage
            (source_id, customer, first_purchase, last_purchase, purchases, spend, stage,
             stage_since, next_change, next_order, r, f, m, segment, churn_risk, expected_value)
        SELECT s.id, f.customer, f.first_purchase, f.last_purchase, f.purchases, f.spend,
               f.new_stage, as_of, f.new_next_change, f.next_order, (f.rfm).r, (f.rfm).f,
               (f.rfm).m, (f.rfm).segment, f.churn_risk, f.expected_value
        FROM fresh f WHERE NOT f.known
        RETURNING customer, NULL::lifecycle.stage, stage, NULL::date, last_purchase, purchases
    ), removed AS (
        DELETE FROM lifecycle.customer_stage c
        USING pg_temp.lifecycle_work w
        WHERE w.gone AND w.known AND c.ctid = w.row_id
        RETURNING c.customer, c.stage, 'prospect'::lifecycle.stage, c.last_purchase, NULL::date,
                  0::bigint
    ), written (customer, old_stage, new_stage, old_last, new_last, purchases) AS (
        TABLE changed UNION ALL TABLE added UNION ALL TABLE removed
    )
    INSERT INTO lifecycle.transitions (source_id, customer, from_stage, to_stage, effective, cause)
    SELECT s.id, customer, coalesce(old_stage, 'prospect'), new_stage, as_of,
           coalesce(_apply.cause,
                    CASE WHEN new_last > old_last OR (old_last IS NULL AND purchases > 0)
                         THEN 'purchase' ELSE 'correction' END)
    FROM written
    WHERE coalesce(old_stage, 'prospect') <> new_stage
    ORDER BY customer;
    GET DIAGNOSTICS logged = ROW_COUNT;
    RETURN logged;
END
$$;

-- A customer's RFM scores against the source's breakpoints (NULL before the first
-- rescoring, or without a purchase).
CREATE FUNCTION lifecycle._rfm_of(first date, last date, purchases bigint,
                                  spend double precision, as_of date,
                                  breakpoints lifecycle.rfm_breakpoints)
RETURNS lifecycle.rfm
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN purchases > 0 AND breakpoints IS NOT NULL
            THEN lifecycle.rfm_score(greatest(as_of - last, 0)::float8, purchases::float8,
                                     coalesce(spend, 0), breakpoints) END;

-- Moves customers whose next_change has come through their stages, one step at a time,
-- each logged with the day it took effect (cause 'time'). At most `budget` customers per
-- step. Customers with an order coming due are left to _gather. Returns (customers
-- stepped, transitions logged).
CREATE FUNCTION lifecycle._step_time(s lifecycle.sources, as_of date, budget bigint,
                                     OUT stepped bigint, OUT logged bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    t bigint;
BEGIN
    stepped := 0;
    logged := 0;
    FOR i IN 1 .. 8 LOOP   -- a customer passes at most 4 boundaries without buying
        WITH due AS (
            SELECT c.customer, c.stage AS from_stage, c.next_change AS on_day,
                   lifecycle.lifecycle_stage(c.first_purchase, c.last_purchase, c.purchases,
                                             c.next_change, s.policy) AS to_stage,
                   lifecycle.next_stage_change(c.first_purchase, c.last_purchase, c.purchases,
                                               c.next_change, s.policy) AS next
            FROM lifecycle.customer_stage c
            WHERE c.source_id = s.id AND c.next_change <= as_of AND c.purchases > 0
              AND (c.next_order IS NULL OR c.next_order > c.next_change)
            ORDER BY c.next_change
            LIMIT budget
        ), moved AS (
            UPDATE lifecycle.customer_stage c
            SET stage = d.to_stage, next_change = least(d.next, c.next_order),
                stage_since = CASE WHEN d.to_stage = c.stage THEN c.stage_since ELSE d.on_day END,
                updated_at = now()
            FROM due d WHERE c.source_id = s.id AND c.customer = d.customer
            RETURNING 1
        ), logged_rows AS (
            INSERT INTO lifecycle.transitions (source_id, customer, from_stage, to_stage,
                                               effective, cause)
            SELECT s.id, d.customer, d.from_stage, d.to_stage, d.on_day, 'time'
            FROM due d WHERE d.to_stage <> d.from_stage
            ORDER BY d.on_day, d.customer
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM logged_rows) INTO n, t;
        stepped := stepped + n;
        logged := logged + t;
        EXIT WHEN n = 0 OR stepped >= budget;
    END LOOP;
END
$$;

-- The scores that drift with time for everyone, recomputed over all the customers of
-- source `id` every lifecycle.rfm_interval (and after a new current model): RFM
-- breakpoints and scores, churn risk and expected value. Returns the rows changed.
CREATE FUNCTION lifecycle._rescore(id integer, as_of date) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bp lifecycle.rfm_breakpoints;
    model lifecycle.models := (SELECT k FROM lifecycle.models k WHERE is_current);
    n bigint;
BEGIN
    -- (recency never below 0: a purchase after as_of only if someone set lifecycle.as_of back)
    bp := (SELECT lifecycle.rfm_breakpoints(greatest(as_of - last_purchase, 0)::float8, purchases::float8,
                                            coalesce(spend, 0))
           FROM lifecycle.customer_stage WHERE source_id = id AND purchases > 0);
    UPDATE lifecycle.sources SET rfm_breakpoints = bp, rfm_scored_at = now() WHERE sources.id = _rescore.id;
    UPDATE lifecycle.customer_stage c
    SET r = (x.rfm).r, f = (x.rfm).f, m = (x.rfm).m, segment = (x.rfm).segment,
        churn_risk = x.churn_risk, expected_value = x.expected_value
    FROM (SELECT customer,
                 lifecycle._rfm_of(first_purchase, last_purchase, purchases, spend, as_of, bp) AS rfm,
                 lifecycle._churn_risk(model, first_purchase, last_purchase, purchases, as_of) AS churn_risk,
                 lifecycle._expected_value(model, first_purchase, last_purchase, purchases, spend, as_of)
                     AS expected_value
          FROM lifecycle.customer_stage WHERE source_id = id AND purchases > 0) AS x
    WHERE c.source_id = id AND c.customer = x.customer
      AND (c.r, c.f, c.m, c.segment, c.churn_risk, c.expected_value)
          IS DISTINCT FROM ((x.rfm).r, (x.rfm).f, (x.rfm).m, (x.rfm).segment, x.churn_risk,
                            x.expected_value);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Announces the transitions with id > after_id on the channel lifecycle.notify_channel:
-- a JSON payload per source and chunk, each under PostgreSQL's 8000-byte limit. Returns
-- the number of NOTIFYs.
CREATE FUNCTION lifecycle._announce(after_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    channel text := current_setting('lifecycle.notify_channel');
    chunk record;
    sent integer := 0;
BEGIN
    FOR chunk IN
        WITH items AS (
            SELECT t.id, t.source_id,
                   format('{"id":%s,"customer":%s,"from":"%s","to":"%s","cause":"%s","on":"%s"}',
                          t.id,
                          -- a very long id would not fit: the listener reads it from the log
                          CASE WHEN octet_length(t.customer) <= 200 THEN to_json(t.customer)::text
                               ELSE 'null' END,
                          t.from_stage, t.to_stage, t.cause, to_char(t.effective, 'YYYY-MM-DD'))
                       AS item
            FROM lifecycle.transitions t
            WHERE t.id > after_id AND t.cause <> 'initial'
        ), sized AS (
            SELECT *, sum(octet_length(item) + 1) OVER (PARTITION BY source_id ORDER BY id) / 7000
                      AS part
            FROM items
        )
        SELECT s.source::text AS source, string_agg(sized.item, ',' ORDER BY sized.id) AS list
        FROM sized JOIN lifecycle.sources s ON s.id = sized.source_id
        GROUP BY s.source, sized.source_id, part
        ORDER BY sized.source_id, part
    LOOP
        PERFORM pg_notify(channel, format('{"source":%s,"transitions":[%s]}',
                                          to_json(chunk.source), chunk.list));
        sent := sent + 1;
    END LOOP;
    RETURN sent;
END
$$;

CREATE TYPE lifecycle.refresh_result AS (
    sources       integer,          -- tracked sources looked at
    queued        bigint,           -- customers with changed orders
    due           bigint,           -- customers whose stage changed with time (steps)
    recomputed    bigint,           -- of those, customers recomputed from the source
    transitions   bigint,           -- rows added to the transitions log
    notifications integer,          -- NOTIFYs sent
    rfm_rescored  bigint,           -- customers whose RFM or model scores changed in a rescoring
    more          boolean,          -- work was left for the next call
    elapsed_ms    double precision
);

-- Brings the stage table up to date, incrementally: per source, the customers whose
-- next_change has come (through the due index), then the customers in the change queue;
-- every stage change is logged and announced. At most max_customers of each per source
-- (NULL: all). RFM breakpoints are recomputed every lifecycle.rfm_interval.
CREATE FUNCTION lifecycle.refresh(max_customers integer DEFAULT NULL)
RETURNS lifecycle.refresh_result
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r lifecycle.refresh_result;
    started timestamptz := clock_timestamp();
    as_of date := lifecycle.engine_date();
    budget bigint := coalesce(max_customers, 9223372036854775807);
    last_id bigint;
    s lifecycle.sources;
    queued bigint;
    recomputed bigint;
    stepped record;
BEGIN
    IF max_customers < 1 THEN
        RAISE EXCEPTION 'argument "max_customers" must be at least 1, got %', max_customers
            USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(lifecycle._refresh_lock());
    r := ROW(0, 0, 0, 0, 0, 0, 0, false, 0);
    SELECT coalesce(max(id), 0) INTO last_id FROM lifecycle.transitions;
    FOR s IN SELECT * FROM lifecycle.sources ORDER BY id LOOP
        IF NOT EXISTS (SELECT FROM pg_class WHERE oid = s.source) THEN
            CONTINUE;  -- dropped under us; untrack() cleans up
        END IF;
        r.sources := r.sources + 1;
        stepped := lifecycle._step_time(s, as_of, budget);
        r.due := r.due + stepped.stepped;
        r.transitions := r.transitions + stepped.logged;
        PERFORM lifecycle._gather(s, as_of, budget);
        SELECT count(*), count(*) FILTER (WHERE recompute) INTO queued, recomputed
        FROM pg_temp.lifecycle_work;
        IF queued > 0 THEN
            r.queued := r.queued + queued;
            r.recomputed := r.recomputed + recomputed;
            r.transitions := r.transitions + lifecycle._apply(s, as_of, NULL);
        END IF;
        IF s.rfm_scored_at IS NULL OR s.rfm_scored_at
               < now() - current_setting('lifecycle.rfm_interval')::interval THEN
            r.rfm_rescored := r.rfm_rescored + lifecycle._rescore(s.id, as_of);
        END IF;
        r.more := r.more
            OR EXISTS (SELECT FROM lifecycle.change_queue WHERE source_id = s.id)
            OR EXISTS (SELECT FROM lifecycle.customer_stage
                       WHERE source_id = s.id AND next_change <= as_of);
    END LOOP;
    PERFORM lifecycle._refit_if_due();
    r.notifications := lifecycle._announce(last_id);
    r.elapsed_ms := extract(epoch FROM clock_timestamp() - started) * 1000;
    RETURN r;
END
$$;

------------------------------------------------------------------------------------
-- The worker's side (src/worker/ runs these)
------------------------------------------------------------------------------------

-- One tick: a refresh of at most batch_size customers per source, recorded in
-- worker_state in the same transaction. Returns whether work is left.
CREATE FUNCTION lifecycle._worker_tick(batch_size integer) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r lifecycle.refresh_result := lifecycle.refresh(batch_size);
BEGIN
    INSERT INTO lifecycle.worker_state AS w (pid, ticks, last_tick_at, last_tick_ms,
                                             last_customers, last_transitions)
    VALUES (pg_backend_pid(), 1, now(), r.elapsed_ms, r.queued + r.due, r.transitions)
    ON CONFLICT (singleton) DO UPDATE SET
        pid = excluded.pid, ticks = w.ticks + 1, consecutive_errors = 0,
        last_tick_at = excluded.last_tick_at, last_tick_ms = excluded.last_tick_ms,
        last_customers = excluded.last_customers, last_transitions = excluded.last_transitions;
    RETURN r.more;
END
$$;

-- A tick failed (and was rolled back): count it and keep the message.
CREATE FUNCTION lifecycle._worker_failed(message text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO lifecycle.worker_state AS w (pid, errors, consecutive_errors, last_error,
                                             last_error_at)
    VALUES (pg_backend_pid(), 1, 1, message, now())
    ON CONFLICT (singleton) DO UPDATE SET
        pid = excluded.pid, errors = w.errors + 1, consecutive_errors = w.consecutive_errors + 1,
        last_error = excluded.last_error, last_error_at = excluded.last_error_at;
$$;

CREATE VIEW lifecycle.worker_status AS
SELECT current_database() AS database, w.pid, a.pid IS NOT NULL AS running, a.state,
       a.backend_start AS started_at, w.ticks, w.errors, w.consecutive_errors, w.last_tick_at,
       w.last_tick_ms, w.last_customers, w.last_transitions, w.last_error, w.last_error_at,
       (SELECT count(*) FROM lifecycle.change_queue) AS queued,
       (SELECT count(*) FROM lifecycle.customer_stage
        WHERE next_change <= lifecycle.engine_date()) AS due
FROM (SELECT true AS singleton) AS one
LEFT JOIN lifecycle.worker_state w USING (singleton)
LEFT JOIN pg_stat_activity a ON a.pid = w.pid AND a.backend_type = 'lifecycle worker';
COMMENT ON VIEW lifecycle.worker_status IS
    'The lifecycle worker of this database: alive or not, its last tick, errors, work waiting';

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
