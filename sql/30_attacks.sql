-- The attacks of an ordinary role that owns a table (docs/security.md), played against
-- the engine run by a superuser (as the worker once was by default, and as a DBA's
-- manual refresh() still is). Each path: the engine refuses, or runs the role's code only
-- with the role's own rights. After all of them the role is still no superuser.
SET client_min_messages = warning;
CREATE ROLE lc_mallory LOGIN;
GRANT lifecycle_tracker TO lc_mallory;
CREATE SCHEMA mallory AUTHORIZATION lc_mallory;
SET lifecycle.as_of = '2026-06-30';

SET ROLE lc_mallory;
-- What mallory's code saw whenever it ran: as whom, and whether it made her a superuser.
CREATE TABLE mallory.seen (who name, escalated boolean);
GRANT INSERT ON mallory.seen TO PUBLIC;
CREATE FUNCTION mallory.payload() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    ok boolean := true;
BEGIN
    BEGIN
        ALTER ROLE lc_mallory SUPERUSER;
    EXCEPTION WHEN OTHERS THEN
        ok := false;
    END;
    INSERT INTO mallory.seen VALUES (current_user, ok);
    RETURN true;
END
$$;

-- ... and as a trigger.
CREATE FUNCTION mallory.evil() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM mallory.payload(); RETURN NULL; END $$;

-- 1. A domain whose CHECK calls mallory's function: refused at track().
CREATE DOMAIN mallory.customer_id AS bigint CHECK (mallory.payload());
CREATE TABLE mallory.orders_domain (customer_id mallory.customer_id, ordered_at date, amount numeric);
INSERT INTO mallory.orders_domain VALUES (1, '2026-06-01', 10);
SELECT expect_error($$SELECT lifecycle.track('mallory.orders_domain', 'customer_id', 'ordered_at', 'amount')$$);

-- 2. Her own type with her own cast to text: refused at track().
CREATE TYPE mallory.code AS ENUM ('a', 'b');
CREATE FUNCTION mallory.code_text(mallory.code) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM mallory.payload(); RETURN $1::text; END $$;
CREATE TABLE mallory.orders_cast (customer_id mallory.code, ordered_at date);
SELECT expect_error($$SELECT lifecycle.track('mallory.orders_cast', 'customer_id', 'ordered_at')$$);
-- ... and an amount of her type, or a time of a domain over date.
CREATE DOMAIN mallory.day AS date CHECK (mallory.payload());
CREATE TABLE mallory.orders_day (customer_id bigint, ordered_at mallory.day, amount mallory.customer_id);
SELECT expect_error($$SELECT lifecycle.track('mallory.orders_day', 'customer_id', 'ordered_at')$$);
SELECT expect_error($$SELECT lifecycle.track('mallory.orders_day', 'customer_id', 'customer_id', 'amount')$$);

-- 3. A plain table tracked, then retyped to the domain: the ALTER is refused.
CREATE TABLE mallory.orders (customer_id bigint, ordered_at date, amount numeric);
CREATE INDEX ON mallory.orders (customer_id);
INSERT INTO mallory.orders SELECT g % 20, date '2026-01-01' + g, 5 FROM generate_series(1, 100) g;
SELECT lifecycle.track('mallory.orders', 'customer_id', 'ordered_at', 'amount') > 0 AS tracked;
SELECT expect_error($$ALTER TABLE mallory.orders ALTER COLUMN customer_id TYPE mallory.customer_id$$);
SELECT expect_error($$ALTER TABLE mallory.orders RENAME COLUMN ordered_at TO placed_at$$);
SELECT expect_error($$ALTER TABLE mallory.orders DROP COLUMN amount$$);
-- Other DDL is not in the way.
ALTER TABLE mallory.orders ADD COLUMN note text;
ALTER TABLE mallory.orders RENAME COLUMN note TO remark;
RESET ROLE;

-- 4. Should the event triggers not run (a superuser disabled them), the retype goes
-- through; the application's writes still succeed, and the engine refuses to read the
-- table (42804) instead of running the CHECK.
ALTER EVENT TRIGGER lifecycle_on_ddl DISABLE;
SET ROLE lc_mallory;
ALTER TABLE mallory.orders ALTER COLUMN customer_id TYPE mallory.customer_id;
TRUNCATE mallory.seen;
INSERT INTO mallory.orders VALUES (5, '2026-06-29', 1);   -- her CHECK runs, as her
SELECT who, escalated FROM mallory.seen;
TRUNCATE mallory.seen;
RESET ROLE;
ALTER EVENT TRIGGER lifecycle_on_ddl ENABLE;
SELECT expect_error($$SELECT lifecycle.refresh()$$);
SELECT count(*) AS runs_of_her_code FROM mallory.seen;
SELECT lifecycle.untrack('mallory.orders');

-- 5. Code that does run while the engine reads her table (a forced row-level security
-- policy) runs as her, in a security-restricted operation: no escalation.
SET ROLE lc_mallory;
CREATE TABLE mallory.orders_rls (customer_id bigint, ordered_at date, amount numeric);
INSERT INTO mallory.orders_rls SELECT g % 5, date '2026-03-01' + g, 1 FROM generate_series(1, 20) g;
ALTER TABLE mallory.orders_rls ENABLE ROW LEVEL SECURITY;
ALTER TABLE mallory.orders_rls FORCE ROW LEVEL SECURITY;
CREATE POLICY everything ON mallory.orders_rls USING (mallory.payload());
-- ... and tries to write the engine's scratch tables of the session it runs in, to slip
-- rows into the engine's computation, or to hang a trigger of hers on them, which the
-- engine's next write would fire with its rights: refused (they are not open to her).
-- (The scheduler's is made first: it is there only once a step was due in the session.)
CREATE TABLE mallory.injected (scratch text, wrote boolean);
GRANT INSERT ON mallory.injected TO PUBLIC;
CREATE FUNCTION mallory.inject() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    t text;
    ok boolean;
BEGIN
    FOREACH t IN ARRAY ARRAY['lifecycle_work', 'lifecycle_new', 'lifecycle_incoming',
                             'lifecycle_bought', 'lifecycle_due'] LOOP
        ok := true;
        BEGIN
            EXECUTE format('DELETE FROM pg_temp.%I', t);
        EXCEPTION WHEN OTHERS THEN
            ok := false;
        END;
        INSERT INTO mallory.injected VALUES (t, ok);
        ok := true;
        BEGIN
            EXECUTE format('CREATE TRIGGER x AFTER INSERT ON pg_temp.%I
                            FOR EACH STATEMENT EXECUTE FUNCTION mallory.evil()', t);
        EXCEPTION WHEN OTHERS THEN
            ok := false;
        END;
        INSERT INTO mallory.injected VALUES (t || ' trigger', ok);
    END LOOP;
    RETURN true;
END
$$;
CREATE POLICY inject ON mallory.orders_rls AS RESTRICTIVE USING (mallory.inject());
SELECT lifecycle.track('mallory.orders_rls', 'customer_id', 'ordered_at', 'amount') > 0 AS tracked;
TRUNCATE mallory.seen;
RESET ROLE;
SELECT lifecycle._due_table();   -- (the scheduler's scratch table, as after a due step)
INSERT INTO mallory.orders_rls VALUES (1, '2026-06-30', 1);
UPDATE mallory.orders_rls SET amount = 2 WHERE customer_id = 2;   -- a recompute from the table
SELECT (lifecycle.refresh()).queued;
SELECT who, escalated, count(*) > 0 AS ran FROM mallory.seen GROUP BY who, escalated;
SELECT scratch, wrote, count(*) > 0 AS tried FROM mallory.injected GROUP BY 1, 2 ORDER BY 1, 2;
SELECT rolsuper FROM pg_roles WHERE rolname = 'lc_mallory';

-- 6. A refit after the model's table was renamed and replaced: the model's source name
-- now names a table that is not tracked, so nothing is read.
SELECT (lifecycle.fit_model('mallory_model', 'mallory.orders_rls', 'customer_id', 'ordered_at',
                            'amount', '2026-06-30', 'day', false)).customers > 0 AS fitted;
UPDATE lifecycle.models SET is_current = (name = 'mallory_model'), fitted_at = now() - interval '1 day';
SET ROLE lc_mallory;
ALTER TABLE mallory.orders_rls RENAME TO orders_old;
CREATE TABLE mallory.orders_rls (customer_id mallory.customer_id, ordered_at date, amount numeric);
INSERT INTO mallory.orders_rls VALUES (1, '2026-06-01', 1);
SELECT expect_error($$SELECT lifecycle.track('mallory.orders_rls', 'customer_id', 'ordered_at', 'amount')$$);
TRUNCATE mallory.seen;
RESET ROLE;
ALTER SYSTEM SET lifecycle.refit_interval = '1s';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SELECT lifecycle._refit_if_due() AS refitted;
ALTER SYSTEM RESET lifecycle.refit_interval;
SELECT pg_reload_conf();
SELECT count(*) AS runs_of_her_code FROM mallory.seen;
UPDATE lifecycle.models SET is_current = false WHERE name = 'mallory_model';
DELETE FROM lifecycle.models WHERE name = 'mallory_model';

-- 7. Only a table's owner tracks it; the internal functions are closed; the capture
-- trigger's function cannot be attached by her.
CREATE TABLE public.not_hers (customer_id bigint, ordered_at date);
SET ROLE lc_mallory;
SELECT expect_error($$SELECT lifecycle.track('public.not_hers', 'customer_id', 'ordered_at')$$);
SELECT expect_error($$SELECT lifecycle._track('mallory.orders_old', 'customer_id', 'ordered_at', NULL, 'default', NULL)$$);
SELECT expect_error($$SELECT * FROM lifecycle._source_histories(1, NULL, '2026-06-30')$$);
-- nor the watermark capture's readers, which read a table or its sequence as its owner
SELECT expect_error($$SELECT * FROM lifecycle._source_new_orders(1, 0, 100)$$);
SELECT expect_error($$SELECT * FROM lifecycle._sequence_position(1)$$);
SELECT expect_error($$CREATE TRIGGER t AFTER INSERT ON mallory.orders_old FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._capture()$$);
-- Dropping her tracked table untracks it.
SELECT count(*) AS tracked_before FROM lifecycle.sources WHERE source::text LIKE 'mallory.%';
DROP TABLE mallory.orders_old;
RESET ROLE;
SELECT count(*) AS tracked_after FROM lifecycle.sources WHERE source::text LIKE 'mallory.%';

-- 8. Objects planted in her own session's temporary schema under the names of the engine's
-- scratch tables, before a gate runs the engine there as the extension's owner: a table
-- with a statement trigger, one with a DEFAULT, one with a rule, a view with an INSTEAD OF
-- trigger; each name, through track(), resync() and untrack(). The engine never uses
-- them (it drops what is not its own) and her code never runs. Her tables stay empty, so
-- no transition is logged; the sources' id sequence is put back at the end, so that the
-- later tests' ids are as before.
SELECT last_value AS sources_seq FROM lifecycle.sources_id_seq \gset
SELECT current_user AS superuser_name \gset
SET ROLE lc_mallory;
CREATE TABLE mallory.planted (customer_id bigint, ordered_at date, amount numeric);
-- plant(kind, name): a temporary object `name` of her own, that runs mallory.payload()
-- when a row goes into it. The columns are the union of every scratch table's.
CREATE FUNCTION mallory.plant(kind text, name text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    cols text := 'customer text COLLATE "C" PRIMARY KEY, recompute boolean, known boolean,
                  old_stage text, old_last date, old_spend double precision,
                  gone boolean %s, row_id tid, first_purchase date, last_purchase date,
                  purchases bigint, spend double precision, next_order date, day date,
                  first_day date, last_day date, days bigint, odd boolean,
                  spend_added double precision';
BEGIN
    IF kind = 'view' THEN
        EXECUTE format('CREATE TEMP TABLE %I (%s)', name || '_hidden', format(cols, ''));
        EXECUTE format('CREATE TEMP VIEW %I AS SELECT * FROM pg_temp.%I', name, name || '_hidden');
        EXECUTE format('CREATE TRIGGER x INSTEAD OF INSERT OR UPDATE OR DELETE ON pg_temp.%I
                        FOR EACH ROW EXECUTE FUNCTION mallory.evil()', name);
        RETURN;
    END IF;
    EXECUTE format('CREATE TEMP TABLE %I (%s)', name,
                   format(cols, CASE kind WHEN 'default' THEN 'DEFAULT mallory.payload()' ELSE '' END));
    IF kind = 'trigger' THEN
        EXECUTE format('CREATE TRIGGER x AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON pg_temp.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION mallory.evil()', name);
    ELSIF kind = 'rule' THEN
        EXECUTE format('CREATE RULE x AS ON INSERT TO pg_temp.%I DO ALSO SELECT mallory.payload()', name);
    END IF;
END
$$;
RESET ROLE;
-- Each attack in a new session of hers (the temporary schema is the session's).
\c - lc_mallory
SET client_min_messages = warning;
SELECT mallory.plant('trigger', 'lifecycle_work'), mallory.plant('trigger', 'lifecycle_new'),
       mallory.plant('trigger', 'lifecycle_incoming'), mallory.plant('trigger', 'lifecycle_bought');
SELECT lifecycle.track('mallory.planted', 'customer_id', 'ordered_at', 'amount') > 0 AS tracked;
-- the engine's own tables replaced hers; she may neither hang a trigger on them nor write them
SELECT c.relname, pg_get_userbyid(c.relowner) = :'superuser_name' AS the_engines, c.relhastriggers
FROM pg_class c WHERE c.relnamespace = pg_my_temp_schema() AND c.relkind = 'r' ORDER BY 1;
SELECT expect_error($$CREATE TRIGGER y AFTER INSERT ON pg_temp.lifecycle_work FOR EACH STATEMENT EXECUTE FUNCTION mallory.evil()$$);
SELECT expect_error($$INSERT INTO pg_temp.lifecycle_new VALUES ('1', '2026-06-01', 1)$$);
SELECT lifecycle.resync('mallory.planted');
\c - lc_mallory
SET client_min_messages = warning;
SELECT mallory.plant('default', 'lifecycle_work'), mallory.plant('default', 'lifecycle_new'),
       mallory.plant('rule', 'lifecycle_incoming'), mallory.plant('view', 'lifecycle_bought');
SELECT lifecycle.resync('mallory.planted');
\c - lc_mallory
SET client_min_messages = warning;
SELECT mallory.plant('rule', 'lifecycle_work'), mallory.plant('view', 'lifecycle_new'),
       mallory.plant('default', 'lifecycle_incoming'), mallory.plant('trigger', 'lifecycle_bought');
SELECT lifecycle.untrack('mallory.planted');
SELECT lifecycle.track('mallory.planted', 'customer_id', 'ordered_at', 'amount') > 0 AS tracked;
\c - lc_mallory
SET client_min_messages = warning;
SELECT mallory.plant('view', 'lifecycle_work'), mallory.plant('rule', 'lifecycle_new'),
       mallory.plant('view', 'lifecycle_incoming'), mallory.plant('default', 'lifecycle_bought');
SELECT lifecycle.resync('mallory.planted');
SELECT lifecycle.untrack('mallory.planted');
SELECT count(*) AS runs_of_her_code FROM mallory.seen;
SELECT rolsuper FROM pg_roles WHERE rolname = 'lc_mallory';
-- The search_path the gate pins for the engine does not outlive the call: hers is hers.
SET search_path = mallory, public;
SELECT lifecycle.track('mallory.planted', 'customer_id', 'ordered_at', 'amount') > 0 AS tracked;
SHOW search_path;
SELECT lifecycle.untrack('mallory.planted');
\c - :superuser_name
SET client_min_messages = warning;
SET lifecycle.as_of = '2026-06-30';
SELECT setval('lifecycle.sources_id_seq', :sources_seq) = :sources_seq AS sequence_put_back;

-- After everything: still no superuser.
SELECT rolsuper FROM pg_roles WHERE rolname = 'lc_mallory';
DROP TABLE public.not_hers;
DROP SCHEMA mallory CASCADE;
DROP OWNED BY lc_mallory;
DROP ROLE lc_mallory;
RESET lifecycle.as_of;
