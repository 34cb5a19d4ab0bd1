------------------------------------------------------------------------------------
-- Refresh
------------------------------------------------------------------------------------

-- One refresh at a time per database: the transitions' ids then follow commit order,
-- which is what lets a listener catch up with "WHERE id > last seen". The lock is on a
-- table of the extension's that only the worker's role and superusers can lock (an
-- advisory lock could be taken, and held, by any role). The worker takes it before its
-- tick's snapshot, so it never waits holding one (src/worker/refresh_worker.cpp).
CREATE FUNCTION lifecycle._lock_refresh() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    LOCK TABLE lifecycle.refresh_lock IN EXCLUSIVE MODE;
END
$$;

-- Whether pg_temp.<name>, one of the engine's scratch tables, is there and may be used
-- by the role running the engine (current_user: the extension's owner in a gate, the
-- worker's role in the worker). The caller of a gate shares the session, so it can
-- create a table of that name in the temporary schema first, with a trigger, a rule, a
-- DEFAULT or a policy that would run its code as the engine's role. So the table is used
-- only if it is owned by this role (or by a superuser, who may use what a superuser
-- made: a DBA's refresh() before a gate), has none of those and grants nothing to PUBLIC;
-- otherwise it is dropped when this role may drop it, and the engine refuses to go on
-- when it may not. (The engine grants no TRIGGER, REFERENCES or any right to PUBLIC on
-- its tables, so nobody else can hang anything on them: not even a table owner's code
-- that runs in the engine's session while it reads the table, a forced RLS policy.)
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

-- The scratch tables of one refresh (per session, emptied at commit): the rows a
-- watermark capture passed; the changed customers taken from the queue, one row each;
-- those whose purchases were written at once, for the playbooks; and per customer left
-- for the general path, its old row (known, old_*), whether it is recomputed from the
-- source and its new history. (Each checked on its own: a session that began under an
-- older version may have some of them.) Created by the role running the engine and
-- checked before each use (_scratch_ready); open to the worker's role only, for a
-- DBA's session that runs refresh() as it after a superuser's gate.
CREATE FUNCTION lifecycle._work_table() RETURNS void
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

-- The purchase histories of customers of tracked source `source_id` (all of them when
-- `customers` is NULL), read as the table's owner in the caller's snapshot; see
-- src/pg/source_reader.cpp.
CREATE FUNCTION lifecycle._source_histories(source_id integer, customers text[], as_of date)
RETURNS TABLE (customer text, first_purchase date, last_purchase date, purchases bigint,
               spend double precision, first_day_spend double precision, next_order date)
AS 'MODULE_PATHNAME', 'lifecycle_source_histories' LANGUAGE C VOLATILE;

-- Recomputes from source `s`, as of `as_of`, the purchase histories of the customers in
-- lifecycle_work marked recompute, or of every customer when `all_customers` (adding
-- them). In the same statement (one snapshot: the source is read in the statement's
-- snapshot) it deletes those customers' changes from the queue (a queue row of several
-- customers' orders keeps the others'): an order this read sees leaves the queue with
-- it, and an order it does not see stays queued for the next refresh. Nothing is
-- counted twice or missed. Customers with no order left are marked gone.
CREATE FUNCTION lifecycle._recompute_from_source(s lifecycle.sources, as_of date,
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

-- Every customer of source `s` into lifecycle_work, recomputed (at track(), and after a
-- TRUNCATE).
CREATE FUNCTION lifecycle._collect_all(s lifecycle.sources, as_of date) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = on SET enable_mergejoin = on AS $$
BEGIN
    PERFORM lifecycle._work_table();
    TRUNCATE pg_temp.lifecycle_work;
    INSERT INTO pg_temp.lifecycle_work (customer, recompute, known, old_stage, old_last,
                                        old_spend, row_id)
    SELECT customer, true, true, stage, last_purchase, spend, ctid
    FROM lifecycle.customer_stage WHERE source_id = s.id;
    PERFORM lifecycle._recompute_from_source(s, as_of, true);
END
$$;

-- Takes the oldest queue rows of source `s` up to `budget` changes (whole rows: a row of
-- orders counts its orders), and the rows its watermark capture just read, one row per
-- customer into lifecycle_incoming. The common case, days on or after
-- the customer's last purchase day and nothing else, is written at once by
-- _write_purchases. The rest go into lifecycle_work for _write_stages: a new customer
-- with its days, a known one to be recomputed from the source (an UPDATE, a DELETE, a day
-- after as_of, a day before its last purchase, an order dated in the future), and the customers
-- whose future order came due. When the queue held a TRUNCATE every customer is
-- gathered; when it held resync()'s request, every customer is recomputed and written
-- here, each change logged as a 'correction'. Returns the customers written at once and
-- the transitions they (or the corrections) logged.
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

-- Keeps lifecycle.rejected_rows bounded: per source and reason, the first five entries
-- stay as they were recorded, and those after them are folded into the fifth (their rows
-- added to its count, the time of the last kept). Writers only ever insert entries (a
-- counter row updated by every writer's statement would serialize them until commit);
-- this, run by the refresh, is the only update.
CREATE FUNCTION lifecycle._fold_rejected(sid integer) RETURNS void
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

-- Writes the histories in lifecycle_work in one statement: each customer's stage as of
-- `as_of` and next change, computed as its row is written; customers with no order left
-- removed; and a transition for each stage that changed (cause `forced_cause`, or when NULL
-- 'purchase' if the last purchase moved forward and 'correction' otherwise), from the old
-- stage kept in lifecycle_work. Returns the number of transitions.
CREATE FUNCTION lifecycle._write_stages(s lifecycle.sources, as_of date, forced_cause text) RETURNS bigint
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

-- A customer's wake day (customer_stage.wake_on) when its row is written with next change
-- `next_change`: the day it had, `kept`, while that lies ahead and is not after the new
-- next change, so that the due index's column is unchanged and the update can be HOT;
-- else the next change itself (NULL with it).
CREATE FUNCTION lifecycle._wake_on(kept date, as_of date, next_change date) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN kept > as_of AND kept <= next_change THEN kept ELSE next_change END;

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
-- step. Customers with an order coming due are left to _collect_queued. A customer woken
-- before its next_change (a purchase moved it later: wake_on in tables.sql) is only
-- given its wake_on again. Returns (customers stepped, transitions logged).
CREATE FUNCTION lifecycle._step_time(s lifecycle.sources, as_of date, budget bigint,
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
CREATE FUNCTION lifecycle._rescore(src_id integer, as_of date, budget bigint DEFAULT NULL,
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
CREATE FUNCTION lifecycle._announce(after_id bigint) RETURNS integer
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

-- The 'full' payloads: every transition with its customer, per source and chunk. (Cheap
-- per row, as it runs for every transition: concatenation rather than format(), the
-- day's ISO text rather than to_char(), and the source's name joined per chunk.)
CREATE FUNCTION lifecycle._announce_full(channel text, after_id bigint) RETURNS integer
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

CREATE TYPE lifecycle.refresh_result AS (
    sources       integer,          -- tracked sources looked at
    queued        bigint,           -- customers with changed orders
    due           bigint,           -- customers whose stage changed with time (steps)
    recomputed    bigint,           -- of those, customers recomputed from the source
    transitions   bigint,           -- rows added to the transitions log
    notifications integer,          -- NOTIFYs sent
    rfm_rescored  bigint,           -- customers whose RFM or model scores changed in a rescoring
    enrolled      bigint,           -- customers enrolled in playbooks (held out included)
    actions       bigint,           -- playbook actions made due
    more          boolean,          -- work was left for the next call
    elapsed_ms    double precision
);

-- Brings the stage table up to date, incrementally: per source, the customers whose
-- next_change has come (through the due index), then the customers in the change queue;
-- every stage change is logged and announced. At most max_customers of each per source
-- (NULL: all; queued changes are taken in whole queue rows, up to 999 orders more), and
-- as many in a rescoring pass (started every lifecycle.rfm_interval).
-- Then the playbooks: purchases recorded against enrolments, customers enrolled from
-- the new transitions and the day's dates, at most max_customers due steps made into
-- actions, announced on lifecycle.actions_channel (src/engagement/schedule.sql).
-- Model refits are not done here: the worker runs them in transactions of their own.
CREATE FUNCTION lifecycle.refresh(max_customers integer DEFAULT NULL)
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
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO lifecycle.worker_state AS w (pid, errors, consecutive_errors, last_error,
                                             last_error_at)
    VALUES (pg_backend_pid(), 1, 1, message, now())
    ON CONFLICT (singleton) DO UPDATE SET
        pid = excluded.pid, errors = w.errors + 1, consecutive_errors = w.consecutive_errors + 1,
        last_error = excluded.last_error, last_error_at = excluded.last_error_at;
$$;

