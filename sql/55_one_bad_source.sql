-- Issue 21's scene, all at once: four sources, of which one is fine and the others are
-- what an ordinary role can do to the engine. In ONE refresh by the worker's role:
--   a55_orders  fine: its new orders are staged (against a plain-SQL recomputation) and
--               announced;
--   v55_orders  values legal for their column types that the engine cannot use (NaN,
--               Infinity, orders whose sum overflows double precision, a customer id too
--               long for the stage table's index): the application's INSERTs succeed,
--               the good rows are staged, the others are listed in lifecycle.rejected_rows;
--   e55_orders  a source whose recomputation fails (its owner may no longer read it): its
--               error is in lifecycle.source_status, its changes stay queued;
--   a temporary table tracked (as 0.2.0 let one be), whose session has ended, which
--   fires no event trigger: forgotten by the worker's own refresh.
-- Uses full_recomputation() from 10_engine (lifecycle_stage() over the orders, plain SQL).
SET client_min_messages = warning;
SET lifecycle.as_of = '2026-03-01';
-- Rows of the stage table of `source` that differ, both ways, from full_recomputation()
-- over `orders` (the source itself, or a view of its good rows).
CREATE FUNCTION differences_55(source regclass, orders regclass) RETURNS bigint
LANGUAGE sql AS $$
    WITH ours AS (
        SELECT c.customer, c.first_purchase, c.last_purchase, c.purchases,
               round(c.spend::numeric, 6) AS spend, c.stage
        FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
        WHERE s.source = $1 AND c.purchases > 0),
    plain AS (SELECT customer, first_purchase, last_purchase, purchases,
                     round(spend::numeric, 6), stage
              FROM full_recomputation($2, 'default'))
    SELECT (SELECT count(*) FROM (TABLE ours EXCEPT TABLE plain) a)
         + (SELECT count(*) FROM (TABLE plain EXCEPT TABLE ours) b)
$$;
CREATE ROLE o55_owner;
CREATE TABLE a55_orders (customer_id integer, ordered_at date, amount numeric);
CREATE TABLE v55_orders (customer_id text, ordered_at date, amount double precision);
CREATE TABLE e55_orders (customer_id integer, ordered_at date, amount numeric);
ALTER TABLE e55_orders OWNER TO o55_owner;
INSERT INTO a55_orders SELECT c, '2026-01-05', 10 FROM generate_series(1, 20) c;
INSERT INTO v55_orders SELECT c::text, '2026-01-05', 10 FROM generate_series(1, 20) c;
INSERT INTO e55_orders SELECT c, '2026-01-05', 10 FROM generate_series(1, 20) c;
SELECT lifecycle.track('a55_orders', 'customer_id', 'ordered_at', 'amount') > 0 AS a,
       lifecycle.track('v55_orders', 'customer_id', 'ordered_at', 'amount') > 0 AS v,
       lifecycle.track('e55_orders', 'customer_id', 'ordered_at', 'amount') > 0 AS e;
-- What a good row of v55_orders is, for the oracle: the rows the test itself calls bad
-- are the ones written below with a NaN, an infinite or a huge amount or a long id.
CREATE VIEW v55_good AS
SELECT * FROM v55_orders
WHERE amount BETWEEN -1e15 AND 1e15 AND octet_length(customer_id) <= 1000;

-- The temporary source, in a session of its own: a sources row as track() of 0.2.0 made
-- one (track() now refuses temporary tables), then the session ends.
\c
SET client_min_messages = warning;
CREATE TEMP TABLE t55_orders (customer_id integer, ordered_at date, amount numeric);
INSERT INTO lifecycle.sources
SELECT (jsonb_populate_record(s, jsonb_build_object(
            'id', nextval('lifecycle.sources_id_seq'),
            'source', 'pg_temp.t55_orders'::regclass::oid::text))).*
FROM lifecycle.sources s WHERE s.source = 'a55_orders'::regclass;
SELECT id AS temp_id FROM lifecycle.sources WHERE source::text LIKE '%t55_orders' \gset
SELECT pg_backend_pid() AS temp_session \gset
\c
SET client_min_messages = warning;
-- (\c does not wait for the old session to end, which drops its temporary table: wait)
SELECT set_config('lc55.temp_session', :'temp_session', false) IS NOT NULL AS noted;
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity
                              WHERE pid = current_setting('lc55.temp_session')::int);
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
SET lifecycle.as_of = '2026-03-01';
-- (still tracked, its table gone with its session)
SELECT count(*) AS tracked, count(*) FILTER (WHERE EXISTS (SELECT FROM pg_class c WHERE c.oid = s.source))
       AS its_table_there
FROM lifecycle.sources s WHERE s.id = :temp_id;

-- The writes: good orders for all three, the bad values for v55, and an UPDATE of e55
-- (recomputed from its table, which its owner may no longer read).
INSERT INTO a55_orders SELECT c, '2026-02-20', 7 FROM generate_series(5, 14) c;
INSERT INTO v55_orders SELECT c::text, '2026-02-20', 7 FROM generate_series(5, 14) c;
INSERT INTO v55_orders VALUES ('21', '2026-02-21', 'NaN'), ('22', '2026-02-21', 'Infinity'),
                              ('23', '2026-02-21', 1e308), ('23', '2026-02-22', 1e308),
                              (repeat('x', 3000), '2026-02-21', 1);
INSERT INTO e55_orders SELECT c, '2026-02-20', 7 FROM generate_series(5, 14) c;
REVOKE SELECT ON e55_orders FROM o55_owner;
UPDATE e55_orders SET amount = 11 WHERE customer_id = 3;
SELECT coalesce(max(id), 0) AS before_id FROM lifecycle.transitions \gset

-- One refresh, as the worker's role, in a session of its own, listening.
SET ROLE lifecycle_worker;
LISTEN lifecycle;
SELECT '/tmp/lifecycle_55_one_bad_source_' || pg_backend_pid() || '.txt' AS notify_file \gset
\o :notify_file
SELECT sources AS done_sources, transitions AS new_transitions, notifications AS sent
FROM lifecycle.refresh() \gset
\o
UNLISTEN lifecycle;
RESET ROLE;
-- The refresh's result (two sources done, the failed and the gone one not counted) and
-- the notifications psql printed (process id and ids masked): one per source staged.
SELECT :done_sources AS done_sources, :new_transitions AS new_transitions, :sent AS sent;
SELECT regexp_replace(regexp_replace(line, 'PID \d+', 'PID N'), '"(first|last)_id" : \d+',
                      '"\1_id" : N', 'g') AS printed
FROM regexp_split_to_table(pg_read_file(:'notify_file'), E'\n') AS line
WHERE line LIKE 'Asynchronous notification%' ORDER BY line;
\setenv NOTIFY_FILE :notify_file
\! rm -f "$NOTIFY_FILE"

-- a55: staged, as a plain recomputation says (0 differences), its transitions logged.
SELECT differences_55('a55_orders', 'a55_orders') AS a55_differences;
SELECT s.source::text, count(*) AS new_transitions
FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id
WHERE t.id > :before_id GROUP BY 1 ORDER BY 1;
-- v55: its good rows staged as a recomputation over them alone says; its bad rows listed
-- with their reasons, counted, and in no engine table.
SELECT differences_55('v55_orders', 'v55_good') AS v55_differences;
SELECT r.reason, sum(r.row_count) AS rows_left_out, min(left(r.customer, 10)) AS a_sample
FROM lifecycle.rejected_rows r JOIN lifecycle.sources s ON s.id = r.source_id
WHERE s.source = 'v55_orders'::regclass GROUP BY 1 ORDER BY 1;
SELECT count(*) AS bad_customers_staged FROM lifecycle.customer_stage c
JOIN lifecycle.sources s ON s.id = c.source_id
WHERE s.source = 'v55_orders'::regclass AND c.customer IN ('21', '22', '23', repeat('x', 3000));
-- e55: failed alone, its error shown, its changes still queued, tried again later.
SELECT source, waiting, consecutive_errors, errors, last_error, retry_at > last_error_at AS backs_off,
       queued > 0 AS changes_still_queued
FROM lifecycle.source_status WHERE source LIKE '%55_orders' ORDER BY source_id;
-- the temporary source: gone, and nothing of it left.
SELECT count(*) AS temp_source_rows
FROM (SELECT source_id FROM lifecycle.customer_stage UNION ALL SELECT source_id FROM lifecycle.transitions
      UNION ALL SELECT id FROM lifecycle.sources) x
WHERE source_id = :temp_id;

-- Its owner may read it again: the next refresh after its retry_at stages it.
GRANT SELECT ON e55_orders TO o55_owner;
UPDATE lifecycle.sources SET retry_at = now() WHERE source = 'e55_orders'::regclass;
SELECT sources FROM lifecycle.refresh();
SELECT source, waiting, consecutive_errors, queued FROM lifecycle.source_status WHERE source LIKE '%55_orders' ORDER BY source_id;
SELECT differences_55('e55_orders', 'e55_orders') AS e55_differences;

SELECT lifecycle.untrack('a55_orders'), lifecycle.untrack('v55_orders'),
       lifecycle.untrack('e55_orders');
DROP VIEW v55_good;
DROP FUNCTION differences_55(regclass, regclass);
DROP TABLE a55_orders, v55_orders, e55_orders;
DROP ROLE o55_owner;
RESET lifecycle.as_of;
