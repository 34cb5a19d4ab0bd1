-- The DDL guard (issue 21): it decides on the objects a command touched, whatever the
-- command's spelling; it checks only the sources the command touched, so that a broken
-- source never makes another role's DDL fail; and track(), the guard and the source
-- reader share one check of inheritance (pg_inherits). Played by ordinary roles: lc_dora
-- owns and tracks her tables, lc_otto owns nothing tracked. Uses stage_differences()
-- from 10_engine (a recomputation in plain SQL).
SET client_min_messages = warning;
SET lifecycle.as_of = '2026-06-30';
CREATE ROLE lc_dora LOGIN;
GRANT lifecycle_tracker TO lc_dora;
CREATE ROLE lc_otto LOGIN;
CREATE SCHEMA dora AUTHORIZATION lc_dora;
CREATE SCHEMA otto AUTHORIZATION lc_otto;
-- (CREATE SCHEMA ... CREATE TABLE needs CREATE on the database; a foreign table needs a
-- server: a wrapper without handler will do, nothing is ever read through it)
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO lc_dora', current_database()); END $$;
CREATE FOREIGN DATA WRAPPER lc_fdw;
CREATE SERVER lc_server FOREIGN DATA WRAPPER lc_fdw;
GRANT USAGE ON FOREIGN SERVER lc_server TO lc_dora;
-- error_hint(sql): the hint of the ERROR that `sql` fails with.
CREATE FUNCTION error_hint(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    hint text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RETURN hint;
END
$$;

SET ROLE lc_dora;
-- 1. A temporary table is refused: its drop at the end of the session would fire no
-- event trigger, and the engine would never learn that it is gone.
CREATE TEMP TABLE temp_orders (customer_id bigint, ordered_at date, amount numeric);
INSERT INTO temp_orders VALUES (1, '2026-06-01', 1);
SELECT expect_error($$SELECT lifecycle.track('temp_orders', 'customer_id', 'ordered_at', 'amount')$$);
SELECT error_hint($$SELECT lifecycle.track('temp_orders', 'customer_id', 'ordered_at', 'amount')$$);
SELECT count(*) AS temp_sources FROM lifecycle.sources WHERE source = 'temp_orders'::regclass;
DROP TABLE temp_orders;

-- 2. Every spelling that would rename a tracked column, make the table a parent, a child
-- or a partition, or take its capture triggers away is refused.
CREATE TABLE dora.orders (customer_id bigint, ordered_at date, amount numeric);
CREATE INDEX ON dora.orders (customer_id);
INSERT INTO dora.orders SELECT g % 20, date '2026-01-01' + g, g FROM generate_series(1, 150) g;
SELECT lifecycle.track('dora.orders', 'customer_id', 'ordered_at', 'amount') > 0 AS tracked;
SELECT expect_error($$ALTER VIEW dora.orders RENAME COLUMN customer_id TO cust$$);
SELECT expect_error($$ALTER MATERIALIZED VIEW dora.orders RENAME COLUMN ordered_at TO placed_at$$);
SELECT expect_error($$ALTER FOREIGN TABLE dora.orders RENAME COLUMN amount TO total$$);
SELECT expect_error($$ALTER FOREIGN TABLE dora.orders ALTER COLUMN amount TYPE bigint$$);
SELECT expect_error($$CREATE SCHEMA dora_kids CREATE TABLE kid () INHERITS (dora.orders)$$);
SELECT expect_error($$CREATE FOREIGN TABLE dora.remote_kid () INHERITS (dora.orders) SERVER lc_server$$);
SELECT expect_error($$CREATE TABLE dora.kid () INHERITS (dora.orders)$$);
CREATE TABLE dora.other (customer_id bigint, ordered_at date, amount numeric);
SELECT expect_error($$ALTER TABLE dora.other INHERIT dora.orders$$);
-- ATTACH PARTITION: the tracked table as the partition (refused by the guard), or as the
-- parent (refused by PostgreSQL: a tracked table is never partitioned)
CREATE TABLE dora.by_day (customer_id bigint, ordered_at date, amount numeric)
    PARTITION BY RANGE (ordered_at);
-- (or by PostgreSQL itself, over the capture triggers, on minors such as 16.2: see 32_ddl)
SELECT left(e, 5) AS sqlstate, e LIKE '%lifecycle tracks dora.orders%' OR e LIKE '%prevents table "orders" from becoming a partition%' AS refused
FROM expect_error($$ALTER TABLE dora.by_day ATTACH PARTITION dora.orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')$$) e;
-- (as the parent PostgreSQL refuses it itself, in words that differ between majors)
SELECT expect_error($$ALTER TABLE dora.orders ATTACH PARTITION dora.other FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')$$)
       <> 'no error' AS refused_as_parent;
SELECT expect_error($$CREATE TABLE dora.orders_2026 PARTITION OF dora.orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')$$);
-- the capture triggers
SELECT expect_error($$ALTER TRIGGER lifecycle_capture_insert ON dora.orders RENAME TO quiet$$);
SELECT expect_error($$DROP TRIGGER lifecycle_capture_delete ON dora.orders$$);
SELECT error_hint($$DROP TRIGGER lifecycle_capture_delete ON dora.orders$$);
-- All of it left the table as it was: its columns, its triggers, no inheritance.
SELECT attname, atttypid::regtype FROM pg_attribute
WHERE attrelid = 'dora.orders'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'dora.orders'::regclass ORDER BY tgname;
SELECT count(*) AS inherits FROM pg_inherits WHERE 'dora.orders'::regclass IN (inhrelid, inhparent);
SELECT to_regnamespace('dora_kids') IS NULL AS no_kids_schema;
-- Other DDL on the table is not in the way, whatever its spelling.
ALTER TABLE dora.orders ADD COLUMN note text;
ALTER VIEW dora.orders RENAME COLUMN note TO remark;
CREATE FUNCTION dora.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER her_own AFTER INSERT ON dora.orders FOR EACH STATEMENT EXECUTE FUNCTION dora.noop();
ALTER TRIGGER her_own ON dora.orders RENAME TO still_hers;
DROP TRIGGER still_hers ON dora.orders;
-- The writes are still captured.
INSERT INTO dora.orders (customer_id, ordered_at, amount) VALUES (7, '2026-06-30', 3), (99, '2026-06-30', 1);
RESET ROLE;
SELECT (lifecycle.refresh()).queued AS queued;
SELECT stage_differences('dora.orders', 'default') AS differences;

-- 3. A source broken while the event triggers were off (as a superuser may) is the
-- tick's business: another role's DDL goes on, and so does the owner's DDL on other
-- tables. Only DDL on the broken table itself is refused, until it is repaired.
ALTER EVENT TRIGGER lifecycle_on_ddl DISABLE;
ALTER TABLE dora.orders RENAME COLUMN customer_id TO cust;
ALTER EVENT TRIGGER lifecycle_on_ddl ENABLE;
SET ROLE lc_otto;
CREATE TABLE otto.notes (id integer, body text);
ALTER TABLE otto.notes ADD COLUMN at date;
CREATE TEMP TABLE scratch (a integer);
CREATE TABLE otto.notes_child () INHERITS (otto.notes);
DROP TABLE scratch, otto.notes_child, otto.notes;
SET ROLE lc_dora;
CREATE TABLE dora.unrelated (a integer);
DROP TABLE dora.unrelated;
SELECT expect_error($$ALTER TABLE dora.orders ADD COLUMN extra integer$$);
ALTER TABLE dora.orders RENAME COLUMN cust TO customer_id;   -- repaired: allowed
RESET ROLE;
SELECT stage_differences('dora.orders', 'default') AS differences_after_repair;

-- 4. The reader and track() agree on inheritance: read from pg_inherits. A child added
-- and dropped leaves pg_class.relhassubclass set until an ANALYZE; the table is a
-- table of its own again for both (the old reader refused it).
SET ROLE lc_dora;
CREATE TABLE dora.family (customer_id bigint, ordered_at date, amount numeric);
INSERT INTO dora.family SELECT g % 7, date '2026-02-01' + g, 2 FROM generate_series(1, 60) g;
CREATE TABLE dora.family_kid () INHERITS (dora.family);
SELECT expect_error($$SELECT lifecycle.track('dora.family', 'customer_id', 'ordered_at', 'amount')$$);
DROP TABLE dora.family_kid;
SELECT relhassubclass AS stale_relhassubclass FROM pg_class WHERE oid = 'dora.family'::regclass;
SELECT lifecycle.track('dora.family', 'customer_id', 'ordered_at', 'amount') > 0 AS tracked;
RESET ROLE;
SELECT stage_differences('dora.family', 'default') AS differences;
-- A child made with the event triggers off: the reader refuses the table (resync reads it
-- through the reader), and reads it again once the child is gone, with no ANALYZE.
ALTER EVENT TRIGGER lifecycle_on_ddl DISABLE;
CREATE TABLE dora.family_kid () INHERITS (dora.family);
ALTER EVENT TRIGGER lifecycle_on_ddl ENABLE;
SET ROLE lc_dora;
SELECT expect_error($$SELECT lifecycle.resync('dora.family')$$);
DROP TABLE dora.family_kid;
SELECT lifecycle.resync('dora.family') AS corrections;
RESET ROLE;
SELECT relhassubclass AS stale_relhassubclass FROM pg_class WHERE oid = 'dora.family'::regclass;
SELECT stage_differences('dora.family', 'default') AS differences;

-- 5. Untracking drops the capture triggers (the guard lets it: the source is forgotten
-- first); dropping a tracked table with its triggers forgets the source.
SET ROLE lc_dora;
SELECT lifecycle.untrack('dora.orders');
SELECT count(*) AS capture_triggers_left FROM pg_trigger
WHERE tgrelid = 'dora.orders'::regclass AND tgname LIKE 'lifecycle\_capture\_%';
DROP TABLE dora.family;
RESET ROLE;
SELECT count(*) AS dora_sources FROM lifecycle.sources WHERE source::text LIKE 'dora.%';

DROP SCHEMA dora CASCADE;
DROP SCHEMA otto CASCADE;
DROP FUNCTION error_hint(text);
DROP SERVER lc_server;
DROP FOREIGN DATA WRAPPER lc_fdw;
DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM lc_dora', current_database()); END $$;
DROP OWNED BY lc_dora;
DROP OWNED BY lc_otto;
DROP ROLE lc_dora;
DROP ROLE lc_otto;
RESET lifecycle.as_of;
