-- track(), untrack() and resync() keep no lock on the caller's schedule (issue 21): none
-- of them takes the refresh lock, which a caller's open transaction would hold until it
-- ends and so keep every tick out; every wait in them is bounded by lifecycle.lock_timeout
-- (1 s in test/regress.conf), and the caller's lock_timeout comes back after the call;
-- resync() writes nothing but a request, which the next refresh carries out, logging each
-- correction under the refresh lock. The waits between sessions (a tracker's transaction
-- left open while refreshes go on, a writer holding a watermark's sequence) are in
-- test/isolation/specs/gate_locks.spec.
SET client_min_messages = warning;
SET lifecycle.as_of = '2026-06-01';
CREATE TABLE gl_orders (customer_id integer, ordered_at date, amount numeric);
CREATE INDEX ON gl_orders (customer_id);
INSERT INTO gl_orders VALUES (1, '2026-05-20', 10), (2, '2026-04-01', 5), (2, '2026-04-20', 5),
                             (3, '2026-05-30', 7), (4, '2026-03-01', 2), (6, '2026-02-01', 4);

-- Whether this session holds the refresh lock (a gate call that took it would keep it
-- until this transaction ends).
CREATE FUNCTION holds_refresh_lock() RETURNS boolean LANGUAGE sql AS $$
    SELECT EXISTS (SELECT FROM pg_locks
                   WHERE locktype = 'relation' AND relation = 'lifecycle.refresh_lock'::regclass
                     AND pid = pg_backend_pid() AND granted)
$$;
-- Customers whose stage in the stage table differs from the plain recomputation
-- (sql/10_engine.sql's oracle; a customer missing on one side is a prospect there).
CREATE FUNCTION stages_differing(source regclass) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*)
    FROM (SELECT customer, stage::text FROM full_recomputation(source, 'engine_test')) p
    FULL JOIN (SELECT c.customer, c.stage::text FROM lifecycle.customer_stage c
               JOIN lifecycle.sources s ON s.id = c.source_id WHERE s.source = $1) c
      USING (customer)
    WHERE coalesce(p.stage, 'prospect') <> coalesce(c.stage, 'prospect')
$$;

-- track() in a transaction: no refresh lock held after it.
BEGIN;
SELECT lifecycle.track('gl_orders', 'customer_id', 'ordered_at', 'amount', 'engine_test') > 0 AS tracked;
SELECT holds_refresh_lock() AS track_holds_refresh_lock;
COMMIT;
SELECT stage_differences('gl_orders', 'engine_test') AS differences_after_track;

-- The bound: lifecycle.lock_timeout, or the caller's lock_timeout when shorter (0: none).
BEGIN;
SET LOCAL lock_timeout = 0;
SELECT lifecycle._bound_waits() AS callers;
SHOW lock_timeout;
SET LOCAL lock_timeout = '200ms';
SELECT lifecycle._bound_waits() AS callers;
SHOW lock_timeout;
SET LOCAL lock_timeout = '1h';
SELECT lifecycle._bound_waits() AS callers;
SHOW lock_timeout;
ROLLBACK;
-- ... and each gate call gives the caller's back.
SET lock_timeout = '7s';
SELECT lifecycle.resync('gl_orders') >= 0 AS resynced;
SHOW lock_timeout;
RESET lock_timeout;
SELECT (lifecycle.refresh()).transitions AS nothing_to_correct;

-- A gap in capture: orders written with the triggers disabled (2 and 5 buy, 4's order
-- removed).
ALTER TABLE gl_orders DISABLE TRIGGER USER;
INSERT INTO gl_orders VALUES (2, '2026-05-31', 9), (5, '2026-05-25', 3);
DELETE FROM gl_orders WHERE customer_id = 4;
ALTER TABLE gl_orders ENABLE TRIGGER USER;
SELECT stages_differing('gl_orders') AS stages_differing_plain_sql;
SELECT coalesce(max(id), 0) AS last_id FROM lifecycle.transitions \gset
-- resync() in a transaction: it counts the corrections as the plain recomputation does,
-- holds no refresh lock, and writes nothing but its request (the stage table and the
-- log are as they were until a refresh).
BEGIN;
SELECT lifecycle.resync('gl_orders') AS corrections;
SELECT holds_refresh_lock() AS resync_holds_refresh_lock;
SELECT count(*) AS requests FROM lifecycle.change_queue q JOIN lifecycle.sources s ON s.id = q.source_id
WHERE s.source = 'gl_orders'::regclass AND q.correction;
SELECT count(*) AS logged_by_resync FROM lifecycle.transitions WHERE id > :last_id;
SELECT stages_differing('gl_orders') AS stages_differing_until_refreshed;
COMMIT;
-- The refresh logs them, as corrections, and the table equals the recomputation.
SELECT (lifecycle.refresh()).transitions AS logged_by_refresh;
SELECT customer, from_stage, to_stage, cause FROM lifecycle.transitions
WHERE id > :last_id ORDER BY id;
SELECT stage_differences('gl_orders', 'engine_test') AS differences,
       stages_differing('gl_orders') AS stages_differing, broken_chains('gl_orders') AS broken;
SELECT count(*) AS requests_left FROM lifecycle.change_queue WHERE correction;
-- resync() of what is not tracked.
CREATE TABLE gl_untracked (customer_id integer, ordered_at date);
SELECT expect_error($$SELECT lifecycle.resync('gl_untracked')$$);
SELECT expect_error($$SELECT lifecycle.untrack('gl_untracked')$$);

-- untrack() in a transaction: no refresh lock (its source's row is locked instead, which
-- ticks skip: gate_locks.spec).
BEGIN;
SELECT lifecycle.untrack('gl_orders');
SELECT holds_refresh_lock() AS untrack_holds_refresh_lock;
COMMIT;
SELECT count(*) AS sources_left FROM lifecycle.sources WHERE source::text LIKE 'gl\_%';

DROP TABLE gl_orders, gl_untracked;
DROP FUNCTION holds_refresh_lock(), stages_differing(regclass);
RESET lifecycle.as_of;
