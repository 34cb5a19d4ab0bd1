-- DDL on tracked tables, and gaps in capture: nothing goes silently uncaptured. Uses
-- stage_differences() and broken_chains() from 10_engine (a recomputation in plain SQL).
SET client_min_messages = warning;
SET lifecycle.as_of = '2026-05-31';

-- Partitioned tables, partitions and inheritance parents are refused at track(): their
-- rows could be written where the statement triggers do not fire.
CREATE TABLE part_orders (customer_id bigint, ordered_at date, amount numeric)
    PARTITION BY RANGE (ordered_at);
CREATE TABLE part_orders_2026 PARTITION OF part_orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT expect_error($$SELECT lifecycle.track('part_orders', 'customer_id', 'ordered_at')$$);
SELECT expect_error($$SELECT lifecycle.track('part_orders_2026', 'customer_id', 'ordered_at')$$);
CREATE TABLE parent_orders (customer_id bigint, ordered_at date, amount numeric);
CREATE TABLE child_orders () INHERITS (parent_orders);
SELECT expect_error($$SELECT lifecycle.track('parent_orders', 'customer_id', 'ordered_at')$$);
CREATE VIEW view_orders AS SELECT * FROM parent_orders;
SELECT expect_error($$SELECT lifecycle.track('view_orders', 'customer_id', 'ordered_at')$$);

CREATE TABLE ddl_orders (id serial, customer_id bigint, ordered_at date, amount numeric);
CREATE INDEX ON ddl_orders (customer_id);
INSERT INTO ddl_orders (customer_id, ordered_at, amount)
SELECT g % 30, date '2026-01-01' + g, g FROM generate_series(1, 140) g;
SELECT lifecycle.track('ddl_orders', 'customer_id', 'ordered_at', 'amount', 'engine_test') > 0 AS tracked;
-- ... and a tracked table cannot become one of them.
SELECT expect_error($$CREATE TABLE ddl_child () INHERITS (ddl_orders)$$);
-- (The guard refuses these two. PostgreSQL minors whose FindTriggerIncompatibleWithInheritance
-- refused statement triggers with transition tables too, 16.2 for one, refuse them first,
-- over the capture triggers, with the same SQLSTATE: either refusal is the right one.)
SELECT left(e, 5) AS sqlstate, e LIKE '%lifecycle tracks public.ddl_orders%' OR e LIKE '%prevents table "ddl_orders" from becoming%' AS refused
FROM expect_error($$ALTER TABLE ddl_orders INHERIT parent_orders$$) e;
CREATE TABLE part_like (id integer, customer_id bigint, ordered_at date, amount numeric)
    PARTITION BY RANGE (ordered_at);
SELECT left(e, 5) AS sqlstate, e LIKE '%lifecycle tracks public.ddl_orders%' OR e LIKE '%prevents table "ddl_orders" from becoming%' AS refused
FROM expect_error($$ALTER TABLE part_like ATTACH PARTITION ddl_orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')$$) e;
SELECT count(*) AS ddl_orders_inherits FROM pg_inherits WHERE 'ddl_orders'::regclass IN (inhrelid, inhparent);
-- The capture triggers fire always, even for replicated writes.
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'ddl_orders'::regclass ORDER BY tgname;
SET session_replication_role = replica;
INSERT INTO ddl_orders (customer_id, ordered_at, amount) VALUES (1001, '2026-05-31', 7);
RESET session_replication_role;
SELECT (lifecycle.refresh()).queued AS replicated_write_captured;
SELECT stage_differences('ddl_orders', 'engine_test') AS differences;

-- A gap: writes with the triggers disabled are not captured; resync() finds every
-- difference and queues the recomputation, which the next refresh logs as corrections
-- (the stage table is left alone until then); the table then equals the recomputation.
ALTER TABLE ddl_orders DISABLE TRIGGER USER;
INSERT INTO ddl_orders (customer_id, ordered_at, amount) VALUES (1002, '2026-05-30', 1), (3, '2026-05-31', 1);
DELETE FROM ddl_orders WHERE customer_id IN (4, 5);
ALTER TABLE ddl_orders ENABLE TRIGGER USER;   -- the ordinary way: origin writes only ...
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'ddl_orders'::regclass ORDER BY tgname;  -- ... set back to always
SELECT (lifecycle.refresh()).queued AS nothing_queued;
SELECT stage_differences('ddl_orders', 'engine_test') AS differences_before_resync;
SELECT lifecycle.resync('ddl_orders') AS corrections;
SELECT stage_differences('ddl_orders', 'engine_test') AS differences_until_the_refresh;
SELECT (lifecycle.refresh()).transitions AS corrections_logged;
SELECT customer, from_stage, to_stage, cause FROM lifecycle.transitions
WHERE cause = 'correction' AND source_id = (SELECT id FROM lifecycle.sources WHERE source = 'ddl_orders'::regclass)
ORDER BY customer;
SELECT stage_differences('ddl_orders', 'engine_test') AS differences, broken_chains('ddl_orders') AS broken;
SELECT lifecycle.resync('ddl_orders') AS corrections_again;
SELECT (lifecycle.refresh()).transitions AS corrections_logged_again;

-- Renaming the table is fine: the engine follows it by OID.
ALTER TABLE ddl_orders RENAME TO ddl_orders_renamed;
INSERT INTO ddl_orders_renamed (customer_id, ordered_at, amount) VALUES (1003, '2026-05-31', 2);
SELECT (lifecycle.refresh()).transitions;
SELECT stage_differences('ddl_orders_renamed', 'engine_test') AS differences;
-- Dropping it untracks it, and nothing of it stays in the engine's tables.
SELECT id AS ddl_source FROM lifecycle.sources WHERE source = 'ddl_orders_renamed'::regclass \gset
DROP TABLE ddl_orders_renamed;
SELECT (SELECT count(*) FROM lifecycle.sources WHERE id = :ddl_source) AS sources,
       (SELECT count(*) FROM lifecycle.customer_stage WHERE source_id = :ddl_source) AS stages,
       (SELECT count(*) FROM lifecycle.transitions WHERE source_id = :ddl_source) AS transitions,
       (SELECT count(*) FROM lifecycle.change_queue WHERE source_id = :ddl_source) AS queued;
SELECT (lifecycle.refresh()).sources;

-- Dropped while the event triggers were off: the next refresh forgets it instead of
-- failing on it for ever (untrack() cannot name a table that is gone).
CREATE TABLE gone_orders (customer_id bigint, ordered_at date);
INSERT INTO gone_orders VALUES (1, '2026-05-01');
SELECT lifecycle.track('gone_orders', 'customer_id', 'ordered_at') AS gone_source \gset
ALTER EVENT TRIGGER lifecycle_on_drop DISABLE;
DROP TABLE gone_orders;
ALTER EVENT TRIGGER lifecycle_on_drop ENABLE;
SELECT count(*) AS still_listed FROM lifecycle.sources WHERE id = :gone_source;
SELECT (lifecycle.refresh()).sources;
SELECT (SELECT count(*) FROM lifecycle.sources WHERE id = :gone_source) AS sources,
       (SELECT count(*) FROM lifecycle.customer_stage WHERE source_id = :gone_source) AS stages;

DROP VIEW view_orders;
DROP TABLE child_orders, parent_orders, part_orders, part_like;
RESET lifecycle.as_of;
