-- The privilege model (docs/security.md), run as non-superusers: for each role, what it
-- may do and what it may not. Everything below "SET ROLE" runs without superuser rights.
SET client_min_messages = warning;
CREATE ROLE lc_nobody LOGIN;
CREATE ROLE lc_reader LOGIN IN ROLE lifecycle_reader;
CREATE ROLE lc_tracker LOGIN IN ROLE lifecycle_tracker;
CREATE ROLE lc_editor LOGIN IN ROLE lifecycle_editor;
CREATE ROLE lc_other LOGIN IN ROLE lifecycle_tracker;
GRANT CREATE ON SCHEMA public TO lc_tracker, lc_editor, lc_other;
SET lifecycle.as_of = '2026-06-30';

-- The roles the extension made, and who may not log in.
SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb
FROM pg_roles WHERE rolname LIKE 'lifecycle\_%' ORDER BY rolname;
-- Nothing internal is executable by PUBLIC: the functions PUBLIC may run are the
-- documented pure ones (and a few pure helpers they call).
SELECT p.proname, count(*) AS forms
FROM pg_proc p
WHERE p.pronamespace = 'lifecycle'::regnamespace
  AND has_function_privilege('lc_nobody', p.oid, 'EXECUTE')
  AND p.proname LIKE '\_%'
GROUP BY p.proname ORDER BY p.proname;
SELECT p.proname
FROM pg_proc p
WHERE p.pronamespace = 'lifecycle'::regnamespace AND p.proname NOT LIKE '\_%'
  AND NOT has_function_privilege('lc_nobody', p.oid, 'EXECUTE')
ORDER BY p.proname;
-- Tables PUBLIC can read: configuration only.
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'lifecycle'::regnamespace AND c.relkind IN ('r', 'v')
  AND has_table_privilege('lc_nobody', c.oid, 'SELECT')
ORDER BY c.relname;

-- A source, tracked by its owner, lc_tracker.
SET ROLE lc_tracker;
CREATE TABLE tracker_orders (customer_id integer, ordered_at timestamptz, amount real);
INSERT INTO tracker_orders SELECT g % 10, timestamptz '2026-01-01 12:00+00' + g * interval '1 day', 2
FROM generate_series(1, 150) g;
SELECT lifecycle.track('tracker_orders', 'customer_id', 'ordered_at', 'amount') > 0 AS tracked;
SELECT stage, count(*) FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
WHERE s.source = 'tracker_orders'::regclass GROUP BY stage ORDER BY stage;
-- The engine's tables are not the tracker's to write, nor to lock.
SELECT expect_error($$DELETE FROM lifecycle.customer_stage$$);
SELECT expect_error($$UPDATE lifecycle.sources SET policy = 'x'$$);
SELECT expect_error($$INSERT INTO lifecycle.transitions (source_id, customer, from_stage, to_stage, effective, cause) VALUES (1, 'x', 'new', 'lapsed', '2026-01-01', 'time')$$);
SELECT expect_error($$LOCK TABLE lifecycle.refresh_lock$$);
SELECT expect_error($$SELECT lifecycle.refresh()$$);
SELECT expect_error($$SELECT lifecycle._rescore(1, '2026-06-30')$$);
-- Settings that change whose rights are used or what runs: superusers only.
SELECT expect_error($$SET lifecycle.as_of = '2030-01-01'$$);
SELECT expect_error($$SET lifecycle.notify_payload = 'full'$$);
SELECT expect_error($$SET lifecycle.notify_channel = 'other'$$);
SELECT expect_error($$SET lifecycle.role = 'lc_tracker'$$);
SELECT expect_error($$SET lifecycle.lock_timeout = 0$$);
SELECT expect_error($$SET lifecycle.tick_timeout = 0$$);
-- The worker's tick size is the server's (a manual refresh takes max_customers).
SELECT expect_error($$SET lifecycle.batch_size = 10$$);

-- Another tracker cannot track, untrack or resync a table it does not own.
SET ROLE lc_other;
SELECT expect_error($$SELECT lifecycle.untrack('tracker_orders')$$);
SELECT expect_error($$SELECT lifecycle.resync('tracker_orders')$$);
SELECT expect_error($$SELECT lifecycle.track('tracker_orders', 'customer_id', 'ordered_at')$$);
-- ... but a member of the owning role can.
RESET ROLE;
GRANT lc_tracker TO lc_other;
SET ROLE lc_other;
SELECT lifecycle.resync('tracker_orders') AS corrections;
RESET ROLE;
REVOKE lc_tracker FROM lc_other;
SELECT (lifecycle.refresh()).transitions AS corrections_logged;  -- (resync's recomputation)

-- The worker's role runs the engine, and nothing else.
SET ROLE lc_tracker;
INSERT INTO tracker_orders VALUES (77, '2026-06-30 09:00+00', 3);
SET ROLE lifecycle_worker;
SELECT (lifecycle.refresh()).transitions;
SELECT expect_error($$SELECT lifecycle.track('tracker_orders', 'customer_id', 'ordered_at')$$);
SELECT expect_error($$SELECT count(*) FROM tracker_orders$$);
SELECT expect_error($$UPDATE lifecycle.policies SET lapsed_days = 1$$);
SELECT expect_error($$ALTER TABLE lifecycle.customer_stage ADD COLUMN x int$$);

-- A reader reads the stages, the log and the views; writes nothing; tracks nothing.
SET ROLE lc_reader;
SELECT customer, from_stage, to_stage, cause FROM lifecycle.transitions WHERE customer = '77';
SELECT stage, customers FROM lifecycle.stage_counts WHERE source = 'tracker_orders' ORDER BY stage;
SELECT count(*) AS months FROM lifecycle.churn_per_month;
SELECT running IS NOT NULL AS reads_worker_status FROM lifecycle.worker_status;
SELECT expect_error($$UPDATE lifecycle.customer_stage SET stage = 'lapsed'$$);
SELECT expect_error($$SELECT * FROM lifecycle.customer_stage FOR UPDATE$$);
SELECT expect_error($$INSERT INTO lifecycle.policies (name) VALUES ('mine')$$);
SELECT expect_error($$SELECT lifecycle.track('tracker_orders', 'customer_id', 'ordered_at')$$);
SELECT expect_error($$SELECT count(*) FROM lifecycle.change_queue$$);

-- An editor edits policies and fits models on data it may read.
SET ROLE lc_editor;
INSERT INTO lifecycle.policies (name, at_risk_days, inactive_days, lapsed_days) VALUES ('editors', 20, 40, 80);
UPDATE lifecycle.policies SET lapsed_days = 90 WHERE name = 'editors';
CREATE TABLE editor_orders AS
SELECT g % 50 AS customer_id, date '2025-01-01' + (g * 7 % 500) AS ordered_at, 10::numeric AS amount
FROM generate_series(1, 400) g;
SELECT (lifecycle.fit_model('editors', 'editor_orders', 'customer_id', 'ordered_at', 'amount',
                            '2026-06-30', 'week', false)).customers;
SELECT expect_error($$SELECT lifecycle.fit_model('stolen', 'tracker_orders', 'customer_id', 'ordered_at', 'amount')$$);
DELETE FROM lifecycle.models WHERE name = 'editors';
DELETE FROM lifecycle.policies WHERE name = 'editors';
SELECT expect_error($$DELETE FROM lifecycle.transitions$$);
SELECT expect_error($$SELECT lifecycle.untrack('tracker_orders')$$);

-- Anyone: the pure functions, nothing of the engine.
SET ROLE lc_nobody;
SELECT lifecycle.lifecycle_stage('2026-01-01', '2026-06-01', 3, '2026-06-30');
SELECT (lifecycle.churn_counts(s)).* FROM (
    SELECT lifecycle.churn_status(d, '2026-01-01', '2026-06-30') AS s
    FROM (VALUES (1, date '2025-12-01'), (1, '2026-03-01'), (2, '2025-11-01')) AS o (c, d)
    GROUP BY c) x;
SELECT expect_error($$SELECT count(*) FROM lifecycle.customer_stage$$);
SELECT expect_error($$SELECT count(*) FROM lifecycle.stage_counts$$);
SELECT expect_error($$SELECT lifecycle.track('tracker_orders', 'customer_id', 'ordered_at')$$);
SELECT expect_error($$SELECT * FROM lifecycle._source_histories(1, NULL, '2026-06-30')$$);
SELECT expect_error($$SELECT lifecycle._worker_tick(10)$$);

-- The owner untracks its table.
SET ROLE lc_tracker;
SELECT lifecycle.untrack('tracker_orders');
DROP TABLE tracker_orders;
RESET ROLE;
DROP TABLE editor_orders;
DROP OWNED BY lc_nobody, lc_reader, lc_tracker, lc_editor, lc_other;
DROP ROLE lc_nobody, lc_reader, lc_tracker, lc_editor, lc_other;
RESET lifecycle.as_of;
