------------------------------------------------------------------------------------
-- Tracking sources and capturing their changes. Who may do what is in privileges.sql
-- and docs/security.md: track(), untrack() and resync() are gates in C that check the
-- caller owns the table and then run _track(), _untrack() and _resync() as the
-- extension's owner; those are executable by no one else.
------------------------------------------------------------------------------------

-- Whether a column of type `type` may be tracked as the source's 'customer', 'time' or
-- 'amount': built-in types only (see src/pg/source_reader.cpp).
CREATE FUNCTION lifecycle._allowed_type(kind text, type regtype) RETURNS boolean
AS 'MODULE_PATHNAME', 'lifecycle_allowed_type' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Whether the columns source `s` tracks are still there with the types they had at
-- track(). DDL that would change them is refused (see _on_ddl below); this is the check
-- for when event triggers did not run.
CREATE FUNCTION lifecycle._columns_intact(s lifecycle.sources) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT count(*) FROM pg_attribute a
        WHERE a.attrelid = s.source AND a.attnum > 0 AND NOT a.attisdropped
          AND (a.attname, a.atttypid) IN ((s.customer_column, s.customer_type),
                                          (s.time_column, s.time_type),
                                          (s.amount_column, s.amount_type),
                                          (s.watermark_column, s.watermark_type)))
       = 2 + (s.amount_column IS NOT NULL)::int + (s.watermark_column IS NOT NULL)::int;

-- Statement-level trigger on a tracked source: queues the customers of the changed rows,
-- read from the transition tables. Runs as the extension's owner so writers need no
-- rights on lifecycle's tables; so it trusts nothing but lifecycle.sources: the source is
-- found by the trigger's table, and a table that is not tracked queues nothing (anyone
-- may attach this function to a table of their own). The expressions it evaluates over
-- the rows are casts of built-in types to text, date and double precision, checked on
-- every call: should a tracked column have changed (event triggers off), it queues a
-- full recomputation instead, which refresh() then refuses with a clear ERROR, rather
-- than failing the application's write.
-- Rows the engine cannot use (_reject_sql) are left out of the queue, never a reason to
-- fail the writer's INSERT: each row's reason is computed in the one pass that builds
-- the queue rows (a CASE of a few comparisons; the amount is cast only for the rows
-- kept, as an aggregate's FILTER is tested before its argument is evaluated), and only
-- a statement that had some reads its rows a second time, to record them in
-- lifecycle.rejected_rows (insert-only: writers never update a shared row). An UPDATE
-- records its new rows' the same way. A timestamptz becomes a day in the source's zone
-- read with the default abbreviations, as the reader reads it: AT TIME ZONE looks a name
-- up among the session's abbreviations first, and a writer's session may have its own
-- ('EST' is -5 by default, +10 under 'Australia').
CREATE FUNCTION lifecycle._capture() RETURNS trigger
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

-- How a source's time column becomes a day, as SQL over the column (the capture
-- trigger's form; src/pg/source_reader.cpp builds the same for reads).
CREATE FUNCTION lifecycle._day_sql(s lifecycle.sources) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE s.time_type
    WHEN 'date'::regtype THEN format('%I', s.time_column)
    WHEN 'timestamp with time zone'::regtype THEN
        format('(%I AT TIME ZONE %L)::date', s.time_column, s.time_zone)
    ELSE format('%I::date', s.time_column)
END;

-- Why a row of source `s` is left out of the computation, as SQL over its columns: a
-- text expression, NULL for a row the engine uses. Every path that reads rows applies
-- it, so that a recomputation gives what the incremental path gives: the capture
-- trigger, the watermark capture and every read of the source (reject_sql in
-- src/pg/source_reader.cpp builds the same text). The reasons, in this order:
-- - customer_too_long: a text id longer than 1,000 bytes. The stage table's primary key
--   and the log's index are btrees, whose entries must fit in a third of a page (about
--   2,700 bytes); 1,000 leaves room for the other key columns and the entry's overhead,
--   and no real id is that long. (Integer and uuid ids are always short.)
-- - time_out_of_range: a day outside 1400-01-01 .. 9999-12-31, the calendar the engine
--   computes in (src/core/calendar.hpp), 'infinity' and '-infinity' included. A
--   timestamptz is bounded a day inside that range (1400-01-02 to 9999-12-30, UTC), so
--   that no zone's offset moves its day out, and is not converted to a day per row.
-- - amount_not_finite: NaN or +/-Infinity (real, double precision, numeric).
-- - amount_out_of_range: beyond +/-1e15, which covers the numeric values no double
--   precision can hold (1e400). With every order within 1e15, no sum of the orders a
--   table can hold (fewer than 2^48 rows) comes near double precision's limit (about
--   1.8e308), nor do the models' products of spends and counts; and no real order is
--   that large. (smallint and integer amounts are always within it.)
-- Comparisons only, with bounds of the column's own type (no cast per row but a
-- timestamp's to date): NaN sorts
-- above every number in PostgreSQL, so BETWEEN fails for it as for the infinities; and
-- no abs(), whose bigint version fails for the smallest bigint.
CREATE FUNCTION lifecycle._reject_sql(s lifecycle.sources) RETURNS text
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

-- The rows of `relation` (the capture trigger's transition table, or the source, with
-- `filter`: '' or a condition beginning with ' AND') that source `s` leaves out, as a
-- query of one row per reason: the source's id, the reason, one of its rows (the first
-- 100 characters of the customer id, the amount as text) and how many rows. Rows without
-- a customer or a time are not counted: they are no orders. (rejected_sql in
-- src/pg/source_reader.cpp builds the same text.)
CREATE FUNCTION lifecycle._rejected_sql(s lifecycle.sources, relation text, filter text)
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

-- The rows of source `source_id` that the engine leaves out (_reject_sql), one row per
-- reason with one of them and how many: of a watermark source, those with ids in
-- (after, upto]; with both NULL, every row the stage table would count. Read as the
-- table's owner (src/pg/source_reader.cpp).
CREATE FUNCTION lifecycle._source_rejected(source_id integer, after bigint, upto bigint)
RETURNS TABLE (source integer, reason text, customer text, amount text, row_count bigint)
AS 'MODULE_PATHNAME', 'lifecycle_source_rejected' LANGUAGE C VOLATILE;

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
-- by track()'s initial read, those above by the refreshes. The wait is bounded like a
-- lock wait, by lock_timeout (which track() sets to lifecycle.lock_timeout at most): a
-- writer that keeps its transaction open must not keep track() waiting without end.
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

-- track(), untrack() and resync() run in the caller's transaction, and their waits (for
-- a writer's lock on the table, a tick on the source, the transactions that hold a
-- watermark's sequence) must not last on the caller's schedule, nor on another role's:
-- each is bounded like the worker's, by lifecycle.lock_timeout (or the caller's own
-- lock_timeout when that is shorter; 0 is no limit in both), and ends in an ERROR 55P03.
-- Sets lock_timeout for the rest of the call and returns the caller's, which the call
-- puts back when it is done (an ERROR puts it back with the rollback). None of them
-- takes the refresh lock, which would keep every tick out until the caller's
-- transaction ends (docs/worker.md, "Gate calls and the worker").
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

-- A table the engine can follow without gaps: a plain, permanent table, not a partition,
-- neither an inheritance child nor a parent (the capture triggers are statement triggers
-- on this table: rows written through a parent or into a child would not fire them).
-- Partitioned tables are refused for the same reason; track each partition instead. A
-- temporary table is refused: its drop at the end of its session fires no event trigger,
-- so the engine would never learn that it is gone. The rule is _untrackable's, in C
-- (src/pg/trackable.cpp), which the DDL guard (_on_ddl) and the source reader apply too.
CREATE FUNCTION lifecycle._untrackable(tab regclass) RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_untrackable' LANGUAGE C STABLE STRICT;

CREATE FUNCTION lifecycle._check_trackable(tab regclass) RETURNS void
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

-- The type of column `col` of `tab`, which must be one the engine may track as `kind`,
-- or an ERROR naming the argument.
CREATE FUNCTION lifecycle._column_type(tab regclass, col name, argument text, kind text)
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

-- Stops following a source: drops its triggers and its rows in the engine's tables.
CREATE FUNCTION lifecycle.untrack(source regclass) RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_owner_gate' LANGUAGE C;

CREATE FUNCTION lifecycle._untrack(tab regclass) RETURNS void
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

-- Removes source `sid` and everything the engine keeps of it.
CREATE FUNCTION lifecycle._forget_source(sid integer) RETURNS void
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

-- The id of tracked source `tab` (NULL when it is not tracked), its row locked: FOR
-- UPDATE by untrack(), which ticks then skip; FOR KEY SHARE by resync(), which ticks
-- do not mind but an untrack() waits for. The wait (for a tick working on the source,
-- or another gate call on it) is at most lock_timeout, then an ERROR 55P03 saying so.
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

-- Recomputes every customer of a source from the table and logs each stage that differs
-- from the stage table as a 'correction' transition (announced like any other). The
-- remedy after any gap in capture: a restore, a replication apply, triggers disabled.
-- The recomputation is the worker's (or the next refresh()'s): resync() queues it, and
-- returns how many customers' stages differ now, computed without writing anything but
-- the queue row. So its corrections are logged under the refresh lock, their ids in
-- commit order with every other announced transition, and the caller's transaction,
-- however long it stays open, keeps no tick out.
CREATE FUNCTION lifecycle.resync(source regclass) RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_owner_gate' LANGUAGE C;

CREATE FUNCTION lifecycle._resync(tab regclass) RETURNS bigint
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

------------------------------------------------------------------------------------
-- DDL on tracked tables (event triggers)
------------------------------------------------------------------------------------

-- The DDL guard. Event triggers run in the session of whoever issues the DDL, as the
-- extension's owner (SECURITY DEFINER: they read lifecycle.sources). They decide on the
-- objects a command touched, never on its tag: ALTER VIEW, ALTER MATERIALIZED VIEW and
-- ALTER FOREIGN TABLE rename a table's columns as well as ALTER TABLE does, and CREATE
-- SCHEMA ... CREATE TABLE runs a CREATE TABLE of its own. And they check only the
-- sources the command touched: a source broken while event triggers were off is the
-- tick's business (refresh() reports it), never a reason for another role's DDL to fail.

-- A dropped source is forgotten (its triggers went with it). A capture trigger dropped
-- from a table that stays tracked is refused: writes would go uncaptured with nothing to
-- say so (untrack() forgets the source before it drops them). Dropping a tracked column
-- is refused by _on_ddl, at the end of the ALTER TABLE.
CREATE FUNCTION lifecycle._on_drop() RETURNS event_trigger
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
CREATE EVENT TRIGGER lifecycle_on_drop ON sql_drop EXECUTE FUNCTION lifecycle._on_drop();

-- At the end of any DDL command, for each tracked table the command touched (a table it
-- created or altered, a column of it, a trigger or rule on it) or linked through
-- pg_inherits to one it touched (a new child, a parent it was attached to, a table made
-- to inherit from it): the table must still have its tracked columns with their types, be a table
-- _check_trackable accepts, and keep its capture triggers as _track made them;
-- otherwise the DDL is refused, rather than the application's later writes failing or
-- rows going uncaptured. Capture triggers re-enabled the ordinary way (ENABLE TRIGGER,
-- which fires them only for origin writes) are set back to ENABLE ALWAYS; disabled ones
-- are left as the DBA chose, with a WARNING (resync() repairs the gap). No tag filter: whatever the
-- spelling, what counts is the object; for DDL on other tables it is one look at the
-- command's objects.
CREATE FUNCTION lifecycle._on_ddl() RETURNS event_trigger
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
CREATE EVENT TRIGGER lifecycle_on_ddl ON ddl_command_end EXECUTE FUNCTION lifecycle._on_ddl();
