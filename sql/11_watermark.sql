-- Watermark capture: track(..., watermark_column => 'id') reads new rows by their id
-- instead of an INSERT trigger (src/engine/capture.sql, docs/design.md). The same
-- writes go to two tables, one tracked with triggers and one by its watermark; after
-- each refresh both must give the same stage table and the same log, and both must
-- equal the recomputation in plain SQL of 10_engine.sql. Out-of-order commits are in
-- test/isolation/specs/watermark_order.spec.
SET client_min_messages = warning;
SET lifecycle.as_of = '2026-03-01';

-- Bad input: the column must be an integer filled by a sequence of its own that hands
-- ids out in time order.
CREATE TABLE wm_bad (id bigserial, n integer, customer_id integer, ordered_at date,
                     cached bigint GENERATED ALWAYS AS IDENTITY (CACHE 20));
SELECT expect_error($$SELECT lifecycle.track('wm_bad', 'customer_id', 'ordered_at', watermark_column => 'nope')$$);
SELECT expect_error($$SELECT lifecycle.track('wm_bad', 'customer_id', 'ordered_at', watermark_column => 'ordered_at')$$);
SELECT expect_error($$SELECT lifecycle.track('wm_bad', 'customer_id', 'ordered_at', watermark_column => 'n')$$);
SELECT expect_error($$SELECT lifecycle.track('wm_bad', 'customer_id', 'ordered_at', watermark_column => 'cached')$$);
SELECT count(*) AS sources_left FROM lifecycle.sources;
DROP TABLE wm_bad;

-- The twins, with a history before tracking.
CREATE TABLE orders_t (id bigserial PRIMARY KEY, customer_id integer, ordered_at date,
                       amount numeric(10, 2));
CREATE TABLE orders_w (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                       customer_id integer, ordered_at date, amount numeric(10, 2));
SELECT setseed(0.11);
INSERT INTO orders_t (customer_id, ordered_at, amount)
SELECT 1 + (random() * 79)::int, date '2026-03-01' - (random() * 200)::int,
       round((1 + random() * 99)::numeric, 2)
FROM generate_series(1, 300);
INSERT INTO orders_w (customer_id, ordered_at, amount)
SELECT customer_id, ordered_at, amount FROM orders_t ORDER BY id;
SELECT lifecycle.track('orders_t', 'customer_id', 'ordered_at', 'amount', 'engine_test') > 0 AS tracked_t;
SELECT lifecycle.track('orders_w', 'customer_id', 'ordered_at', 'amount', 'engine_test',
                       watermark_column => 'id') > 0 AS tracked_w;
-- The watermark source has no INSERT trigger; updates, deletes and TRUNCATE keep theirs.
SELECT tgrelid::regclass AS tab, tgname FROM pg_trigger
WHERE tgname LIKE 'lifecycle_capture_%' ORDER BY 1, 2;
SELECT watermark_column, watermark_sequence, watermark FROM lifecycle.sources
WHERE source = 'orders_w'::regclass;

-- One step of the workload, the same on both tables: inserts (one to twenty rows, some
-- dated in the future), an amount and date changed, a customer changed, a delete.
CREATE FUNCTION twin_step(i integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rows integer := 1 + (random() * 19)::int;
    victim bigint := (SELECT id FROM orders_t ORDER BY random() LIMIT 1);
    other integer := 1 + (random() * 99)::int;
    shift integer := (random() * 60)::int - 40;
BEGIN
    CASE i % 6
    WHEN 3 THEN
        UPDATE orders_t SET amount = amount + 1, ordered_at = ordered_at + shift WHERE id = victim;
        UPDATE orders_w SET amount = amount + 1, ordered_at = ordered_at + shift WHERE id = victim;
    WHEN 4 THEN
        DELETE FROM orders_t WHERE id = victim;
        DELETE FROM orders_w WHERE id = victim;
    WHEN 5 THEN
        UPDATE orders_t SET customer_id = other WHERE id = victim;
        UPDATE orders_w SET customer_id = other WHERE id = victim;
    ELSE
        CREATE TEMP TABLE IF NOT EXISTS batch (customer_id integer, ordered_at date, amount numeric);
        TRUNCATE batch;
        INSERT INTO batch
        SELECT 1 + (random() * 99)::int,
               current_setting('lifecycle.as_of')::date - (random() * 100)::int + 5,
               round((1 + random() * 99)::numeric, 2)
        FROM generate_series(1, rows);
        INSERT INTO orders_t (customer_id, ordered_at, amount) SELECT * FROM batch;
        INSERT INTO orders_w (customer_id, ordered_at, amount) SELECT * FROM batch;
    END CASE;
END
$$;

-- 90 steps, each its own transaction; a refresh every third step, a day later every
-- tenth, and at step 45 both tables emptied and refilled.
SELECT setseed(0.22);
-- (their results are not shown: the refresh results carry the time they took)
\o /dev/null
SELECT CASE
         WHEN i = 45 THEN 'TRUNCATE orders_t; TRUNCATE orders_w; SELECT twin_step(0)'
         WHEN i % 10 = 0 THEN format('SET lifecycle.as_of = %L',
                                     (date '2026-03-01' + i / 10)::text)
         WHEN i % 3 = 0 THEN 'SELECT lifecycle.refresh()'
         ELSE format('SELECT twin_step(%s)', i) END
FROM generate_series(1, 90) AS i
ORDER BY i \gexec
\o
SELECT queued >= 0 AS refreshed FROM lifecycle.refresh();

-- Both equal the recomputation, both logs chain, and they equal each other.
SELECT stage_differences('orders_t', 'engine_test') AS differ_t,
       stage_differences('orders_w', 'engine_test') AS differ_w,
       broken_chains('orders_t') AS broken_t, broken_chains('orders_w') AS broken_w;
CREATE VIEW twin_stages AS
SELECT s.source::text AS tab, c.customer, c.first_purchase, c.last_purchase, c.purchases,
       round(c.spend::numeric, 6) AS spend, c.stage, c.stage_since, c.next_change, c.next_order
FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id;
CREATE VIEW twin_log AS
SELECT s.source::text AS tab, t.customer, t.from_stage, t.to_stage, t.effective, t.cause
FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id;
SELECT (SELECT count(*) FROM (SELECT customer, first_purchase, last_purchase, purchases, spend, stage,
                                     stage_since, next_change, next_order
                              FROM twin_stages WHERE tab = 'orders_t'
                              EXCEPT ALL
                              SELECT customer, first_purchase, last_purchase, purchases, spend, stage,
                                     stage_since, next_change, next_order
                              FROM twin_stages WHERE tab = 'orders_w') d)
     + (SELECT count(*) FROM (SELECT customer, first_purchase, last_purchase, purchases, spend, stage,
                                     stage_since, next_change, next_order
                              FROM twin_stages WHERE tab = 'orders_w'
                              EXCEPT ALL
                              SELECT customer, first_purchase, last_purchase, purchases, spend, stage,
                                     stage_since, next_change, next_order
                              FROM twin_stages WHERE tab = 'orders_t') d) AS stage_rows_differing,
       (SELECT count(*) FROM (SELECT customer, from_stage, to_stage, effective, cause
                              FROM twin_log WHERE tab = 'orders_t'
                              EXCEPT ALL
                              SELECT customer, from_stage, to_stage, effective, cause
                              FROM twin_log WHERE tab = 'orders_w') d)
     + (SELECT count(*) FROM (SELECT customer, from_stage, to_stage, effective, cause
                              FROM twin_log WHERE tab = 'orders_w'
                              EXCEPT ALL
                              SELECT customer, from_stage, to_stage, effective, cause
                              FROM twin_log WHERE tab = 'orders_t') d) AS log_rows_differing;
-- What the workload did (the same on both).
SELECT tab, cause, count(*) FROM twin_log GROUP BY 1, 2 ORDER BY 1, 2;
-- The watermark caught up with the sequence, and a resync finds nothing to correct.
SELECT watermark = (SELECT max(id) FROM orders_w) AS caught_up FROM lifecycle.sources
WHERE source = 'orders_w'::regclass;
SELECT lifecycle.resync('orders_w') AS corrections_w;
SELECT (lifecycle.refresh()).transitions AS corrections_logged_w;  -- (resync's recomputation)

-- A table tracked empty: the sequence has handed out nothing yet.
CREATE TABLE orders_e (id integer GENERATED ALWAYS AS IDENTITY, customer_id integer,
                       ordered_at date, amount numeric);
SELECT lifecycle.track('orders_e', 'customer_id', 'ordered_at', 'amount', 'engine_test',
                       watermark_column => 'id') > 0 AS tracked_e;
SELECT watermark FROM lifecycle.sources WHERE source = 'orders_e'::regclass;
INSERT INTO orders_e (customer_id, ordered_at, amount) VALUES (7, '2026-03-05', 10), (8, '2026-03-09', 20);
SELECT queued, transitions FROM lifecycle.refresh();
SELECT customer, purchases, stage FROM lifecycle.customer_stage c JOIN lifecycle.sources s
    ON s.id = c.source_id WHERE s.source = 'orders_e'::regclass ORDER BY customer;
-- The worker's poll (lifecycle._work_waiting) sees new rows of a watermark source, which
-- queue nothing.
SELECT lifecycle._work_waiting() AS waiting_when_idle;
-- A bulk load is taken a batch at a time: at most max_customers rows move the watermark
-- per refresh, which then says more is left (the worker goes on at once).
INSERT INTO orders_e (customer_id, ordered_at, amount)
SELECT 100 + i, '2026-03-09', i FROM generate_series(1, 12) AS i;
SELECT lifecycle._work_waiting() AS waiting_after_orders;
SELECT queued, more FROM lifecycle.refresh(5);
SELECT watermark FROM lifecycle.sources WHERE source = 'orders_e'::regclass;
SELECT queued, more FROM lifecycle.refresh(5);
SELECT watermark FROM lifecycle.sources WHERE source = 'orders_e'::regclass;
SELECT queued, more FROM lifecycle.refresh(5);
SELECT watermark FROM lifecycle.sources WHERE source = 'orders_e'::regclass;
SELECT lifecycle._work_waiting() AS waiting_after_refreshes;
SELECT count(*) AS customers_e FROM lifecycle.customer_stage c JOIN lifecycle.sources s
    ON s.id = c.source_id WHERE s.source = 'orders_e'::regclass;
-- A row given an explicit id above the sequence's position is never counted; resync()
-- warns about it.
INSERT INTO orders_e (id, customer_id, ordered_at, amount) OVERRIDING SYSTEM VALUE
VALUES (1000000, 9, '2026-03-09', 1);
SELECT lifecycle.resync('orders_e') AS corrections_e;
DELETE FROM orders_e WHERE id = 1000000;
-- The watermark column is tracked: DDL that would change it is refused.
SELECT expect_error($$ALTER TABLE orders_e ALTER COLUMN id TYPE bigint$$);

SELECT lifecycle.untrack('orders_t'), lifecycle.untrack('orders_w'), lifecycle.untrack('orders_e');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'lifecycle_capture_%';
DROP VIEW twin_stages, twin_log;
DROP FUNCTION twin_step(integer);
DROP TABLE orders_t, orders_w, orders_e;
RESET lifecycle.as_of;
