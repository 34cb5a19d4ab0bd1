-- One source's failure is contained to it (issue 21): refresh() runs each source's part in
-- a subtransaction; a source that fails is rolled back alone, its error kept in
-- lifecycle.source_status, and it waits until its retry_at while the other sources' orders
-- are staged and announced in the same refresh. A source whose table is gone is forgotten
-- by the worker's own refresh. Models are checked when stored, and a current model that
-- fails at scoring time is set aside instead of failing every tick.
-- Uses stage_differences() from 10_engine (a recomputation in plain SQL with
-- lifecycle_stage()).
SET client_min_messages = warning;
SET lifecycle.as_of = '2026-03-01';
-- (no current model from the earlier tests: the scores below are those of no model)
UPDATE lifecycle.models SET is_current = false WHERE is_current;

-- Two sources, the second owned by a role that is not a superuser (the engine reads a
-- table as its owner), and a third whose table will be gone.
CREATE ROLE c50_owner;
CREATE TABLE c50_good (customer_id integer, ordered_at date, amount numeric);
CREATE TABLE c50_bad (customer_id integer, ordered_at date, amount numeric);
CREATE TABLE c50_gone (customer_id integer, ordered_at date, amount numeric);
CREATE INDEX ON c50_good (customer_id);
CREATE INDEX ON c50_bad (customer_id);
CREATE INDEX ON c50_gone (customer_id);
ALTER TABLE c50_bad OWNER TO c50_owner;
INSERT INTO c50_good SELECT c, '2026-01-05', 10 FROM generate_series(1, 30) c;
INSERT INTO c50_bad SELECT c, '2026-01-05', 10 FROM generate_series(1, 30) c;
INSERT INTO c50_gone SELECT c, '2026-01-05', 10 FROM generate_series(1, 30) c;
SELECT lifecycle.track('c50_good', 'customer_id', 'ordered_at', 'amount') > 0 AS good,
       lifecycle.track('c50_bad', 'customer_id', 'ordered_at', 'amount') > 0 AS bad,
       lifecycle.track('c50_gone', 'customer_id', 'ordered_at', 'amount') > 0 AS gone;
SELECT (lifecycle.refresh()).sources;
-- The gone source has records the worker's role may not delete (contacts, reasons).
SELECT lifecycle.set_contact('c50_gone', '3', 'Europe/Berlin');
SELECT lifecycle.record_churn_reason('c50_gone', '4', 'price') > 0 AS reason;
SELECT id AS gone_id FROM lifecycle.sources WHERE source = 'c50_gone'::regclass \gset

-- 1. Its table dropped while the event triggers were off (as a temporary table's is when
-- its session ends): the worker's refresh forgets it, with everything kept of it, through
-- lifecycle._forget_gone_source (SECURITY DEFINER: its role cannot delete contacts or
-- reasons itself), and the other sources go on.
ALTER EVENT TRIGGER lifecycle_on_drop DISABLE;
DROP TABLE c50_gone;
ALTER EVENT TRIGGER lifecycle_on_drop ENABLE;
SET ROLE lifecycle_worker;
SELECT expect_error('DELETE FROM lifecycle.contacts WHERE source_id = ' || :gone_id) AS worker_deletes_contacts,
       expect_error('DELETE FROM lifecycle.customer_reasons WHERE source_id = ' || :gone_id) AS worker_deletes_reasons;
RESET ROLE;
INSERT INTO c50_good SELECT c, '2026-02-01', 5 FROM generate_series(1, 5) c;
-- (a session of its own, whose scratch tables are the worker's)
\c
SET client_min_messages = warning;
SET lifecycle.as_of = '2026-03-01';
SET ROLE lifecycle_worker;
SELECT sources, queued FROM lifecycle.refresh();
RESET ROLE;
SELECT count(*) AS gone_rows
FROM (SELECT source_id FROM lifecycle.customer_stage UNION ALL SELECT source_id FROM lifecycle.transitions
      UNION ALL SELECT source_id FROM lifecycle.contacts
      UNION ALL SELECT source_id FROM lifecycle.customer_reasons
      UNION ALL SELECT id FROM lifecycle.sources) x
WHERE source_id = :gone_id;
SELECT source FROM lifecycle.source_status ORDER BY source_id;
SELECT stage_differences('c50_good', 'default') AS good_differences;
-- No one else may execute it, and it forgets nothing whose table is there.
CREATE ROLE c50_nobody;
SET ROLE c50_nobody;
SELECT expect_error($$SELECT lifecycle._forget_gone_source(1)$$);
SET ROLE lifecycle_worker;
SELECT lifecycle._forget_gone_source(id) AS forgot FROM lifecycle.sources WHERE source = 'c50_good'::regclass;
RESET ROLE;
SELECT p.prosecdef, p.proconfig, p.proowner = e.extowner AS owned_by_extension_owner,
       array(SELECT a.grantee::regrole::text FROM aclexplode(p.proacl) a
             WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner ORDER BY 1) AS executable_by
FROM pg_proc p, pg_extension e
WHERE p.oid = 'lifecycle._forget_gone_source(integer)'::regprocedure AND e.extname = 'lifecycle';

-- 2. A source that fails: its owner may no longer read it, so recomputing an updated
-- customer from it fails (42501). In the same refresh the other source's new orders are
-- staged and announced; the failed one's work is rolled back (its changes stay queued).
REVOKE SELECT ON c50_bad FROM c50_owner;
INSERT INTO c50_good SELECT c, '2026-02-20', 7 FROM generate_series(10, 19) c;
INSERT INTO c50_bad SELECT c, '2026-02-20', 7 FROM generate_series(10, 19) c;
UPDATE c50_bad SET amount = 11 WHERE customer_id = 3;
SELECT coalesce(max(id), 0) AS before_id FROM lifecycle.transitions \gset
SELECT queued AS bad_queued_before FROM lifecycle.source_status WHERE source = 'c50_bad' \gset
LISTEN lifecycle;
-- (psql prints the notification into a file, read back below without its process id)
SELECT '/tmp/lifecycle_50_containment_' || pg_backend_pid() || '.txt' AS notify_file \gset
\o :notify_file
SELECT sources, queued, transitions, notifications FROM lifecycle.refresh();
\o
SELECT regexp_replace(regexp_replace(line, 'PID \d+', 'PID N'), '"(first|last)_id" : \d+', '"\1_id" : N', 'g')
           AS psql_printed,
       p->>'source' AS source, p->'to' AS to_stages, (p->>'transitions')::bigint AS transitions,
       (p->>'first_id')::bigint = (SELECT min(id) FROM lifecycle.transitions WHERE id > :before_id)
           AND (p->>'last_id')::bigint = (SELECT max(id) FROM lifecycle.transitions WHERE id > :before_id)
           AS ids_are_the_new_transitions
FROM regexp_split_to_table(pg_read_file(:'notify_file'), E'\n') AS line,
     LATERAL (SELECT substring(line FROM 'with payload "(.*)" received')::json AS p) j
WHERE line LIKE 'Asynchronous notification%';
UNLISTEN lifecycle;
\setenv NOTIFY_FILE :notify_file
\! rm -f "$NOTIFY_FILE"
SELECT s.source::text, count(*) AS new_transitions
FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id
WHERE t.id > :before_id GROUP BY 1 ORDER BY 1;
SELECT stage_differences('c50_good', 'default') AS good_differences;
SELECT source, waiting, consecutive_errors, errors, last_error, last_error_at IS NOT NULL AS failed_at,
       retry_at - last_error_at AS waits, queued = :bad_queued_before AS changes_still_queued
FROM lifecycle.source_status ORDER BY source_id;
-- Nothing of the failed part was kept: its stage rows are those before the failure.
SELECT count(*) FILTER (WHERE last_purchase > '2026-01-05') AS bad_customers_moved
FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
WHERE s.source = 'c50_bad'::regclass;

-- 3. Until its retry_at it is skipped (not tried, not counted again); the others go on.
INSERT INTO c50_good VALUES (25, '2026-02-25', 3);
SELECT sources, queued FROM lifecycle.refresh();
SELECT source, waiting, consecutive_errors, errors FROM lifecycle.source_status ORDER BY source_id;
-- Its queued changes do not wake the worker meanwhile; another source's do.
SELECT lifecycle._work_waiting() AS wakes_for_the_waiting_source;
INSERT INTO c50_good VALUES (25, '2026-02-26', 3);
SELECT lifecycle._work_waiting() AS wakes_for_the_other;
SELECT sources, queued FROM lifecycle.refresh();
-- When it is tried again and fails again, it waits twice as long.
SELECT pg_sleep(greatest(extract(epoch FROM retry_at - clock_timestamp()), 0) + 0.05)
FROM lifecycle.sources WHERE source = 'c50_bad'::regclass;
SELECT sources, queued FROM lifecycle.refresh();
SELECT source, waiting, consecutive_errors, errors, retry_at - last_error_at AS waits
FROM lifecycle.source_status ORDER BY source_id;

-- 4. Once the cause is gone it recovers at its next try: its queued changes are staged,
-- consecutive_errors and retry_at are cleared (the last error is kept).
GRANT SELECT ON c50_bad TO c50_owner;
UPDATE lifecycle.sources SET retry_at = now() WHERE source = 'c50_bad'::regclass;
SELECT sources, queued > 0 AS staged_its_changes FROM lifecycle.refresh();
SELECT source, waiting, consecutive_errors, errors, last_error, retry_at, queued
FROM lifecycle.source_status ORDER BY source_id;
SELECT stage_differences('c50_bad', 'default') AS bad_differences,
       stage_differences('c50_good', 'default') AS good_differences;

-- 5. Models are checked as they are stored: a NaN, infinite, zero or negative shape or
-- scale, a NULL parameter, calibrated coefficients that are not finite or not one per
-- feature, are refused (22023, naming the column and the parameter), as INSERT or UPDATE,
-- by an editor too.
CREATE FUNCTION c50_model(bg text DEFAULT '(1,2,0.5,3,0,30,0,t)',
                          gg text DEFAULT '(2,3,10,0,30,0,t)',
                          mbg text DEFAULT NULL, pn text DEFAULT NULL, cal text DEFAULT NULL,
                          cal_days integer DEFAULT 30)
RETURNS text LANGUAGE sql AS $$
    SELECT format($f$INSERT INTO lifecycle.models (name, source, customer_column, time_column,
                      amount_column, calibration_end, unit, customers, bgnbd, gamma_gamma,
                      mbgnbd, pareto_nbd, calibrated, calibrated_horizon_days)
                  VALUES ('c50', 'c50_good', 'customer_id', 'ordered_at', 'amount', '2026-02-01',
                          'week', 30, %L, %L, %L, %L, %L, %s)$f$,
                  bg, gg, mbg, pn, cal, coalesce(cal_days::text, 'NULL'))
$$;
SELECT k.bad, expect_error(k.sql)
FROM (VALUES ('bgnbd r NaN', c50_model(bg => '(NaN,2,0.5,3,0,30,0,t)')),
             ('bgnbd alpha Infinity', c50_model(bg => '(1,Infinity,0.5,3,0,30,0,t)')),
             ('bgnbd a 0', c50_model(bg => '(1,2,0,3,0,30,0,t)')),
             ('bgnbd b negative', c50_model(bg => '(1,2,0.5,-3,0,30,0,t)')),
             ('bgnbd r NULL', c50_model(bg => '(,2,0.5,3,0,30,0,t)')),
             ('mbgnbd alpha -Infinity', c50_model(mbg => '(1,-Infinity,0.5,3,0,30,0,t)')),
             ('pareto_nbd s NaN', c50_model(pn => '(1,2,NaN,3,0,30,0,t)')),
             ('pareto_nbd beta 0', c50_model(pn => '(1,2,1,0,0,30,0,t)')),
             ('gamma_gamma p 0', c50_model(gg => '(0,3,10,0,30,0,t)')),
             ('gamma_gamma q Infinity', c50_model(gg => '(2,Infinity,10,0,30,0,t)')),
             ('gamma_gamma gamma NaN', c50_model(gg => '(2,3,NaN,0,30,0,t)')),
             ('calibrated NaN', c50_model(cal => '("{1,2,3,4,5,6,NaN}",0,30,1,t)')),
             ('calibrated Infinity', c50_model(cal => '("{1,2,3,4,5,Infinity,7}",0,30,1,t)')),
             ('calibrated too few', c50_model(cal => '("{1,2,3}",0,30,1,t)')),
             ('calibrated no horizon', c50_model(cal => '("{1,2,3,4,5,6,7}",0,30,1,t)', cal_days => NULL)),
             ('calibrated horizon 0', c50_model(cal => '("{1,2,3,4,5,6,7}",0,30,1,t)', cal_days => 0)),
             ('a good one', c50_model())) AS k (bad, sql);
SELECT expect_error($$UPDATE lifecycle.models SET bgnbd.alpha = 'NaN' WHERE name = 'c50'$$) AS update_nan,
       expect_error($$UPDATE lifecycle.models SET gamma_gamma = NULL, pareto_nbd = '(1,2,-1,3,0,30,0,t)' WHERE name = 'c50'$$) AS update_negative;
CREATE ROLE c50_editor IN ROLE lifecycle_editor;
SET ROLE c50_editor;
SELECT expect_error($$UPDATE lifecycle.models SET bgnbd.r = 'Infinity' WHERE name = 'c50'$$) AS editor_infinity;
SELECT expect_error($$UPDATE lifecycle.models SET bgnbd.r = 1.5 WHERE name = 'c50'$$) AS editor_good;
RESET ROLE;
SELECT (bgnbd).r FROM lifecycle.models WHERE name = 'c50';

-- 6. A model whose parameters pass (finite, positive) but that fails at scoring time:
-- a Gamma-Gamma scale so large that the lifetime value is not a finite number. Made
-- current (after a good one had scored everyone), the rescoring of the next refresh fails
-- with it: the model is set aside and the customers scored without it (the scores taken
-- away, left NULL), the error recorded on the model; the sources themselves did not fail,
-- and it is not tried again.
UPDATE lifecycle.models SET is_current = true WHERE name = 'c50';
SELECT sources FROM lifecycle.refresh();
SELECT count(*) AS customers, count(churn_risk) AS with_churn_risk,
       count(expected_value) AS with_expected_value
FROM lifecycle.customer_stage;
UPDATE lifecycle.models SET gamma_gamma = '(1e300,1e300,1e300,0,30,0,t)' WHERE name = 'c50';
SELECT sources FROM lifecycle.refresh();
SELECT name, scoring_error, scoring_error_at IS NOT NULL AS set_aside_at FROM lifecycle.models WHERE name = 'c50';
SELECT source, consecutive_errors, errors, waiting FROM lifecycle.source_status ORDER BY source_id;
SELECT count(*) AS customers, count(churn_risk) AS with_churn_risk,
       count(expected_value) AS with_expected_value
FROM lifecycle.customer_stage;
SELECT stage_differences('c50_bad', 'default') AS bad_differences,
       stage_differences('c50_good', 'default') AS good_differences;
-- Not tried again: the next refreshes, with purchases scored as they are written, neither
-- fail nor warn.
INSERT INTO c50_good VALUES (26, '2026-02-26', 3);
INSERT INTO c50_bad VALUES (26, '2026-02-26', 3);
SELECT sources, queued FROM lifecycle.refresh();
SELECT stage_differences('c50_bad', 'default') AS bad_differences,
       stage_differences('c50_good', 'default') AS good_differences;
SELECT scoring_error IS NOT NULL AS still_set_aside FROM lifecycle.models WHERE name = 'c50';
-- Corrected, it is scored with again (its error cleared, every customer rescored).
UPDATE lifecycle.models SET gamma_gamma = '(2,3,10,0,30,0,t)' WHERE name = 'c50';
SELECT scoring_error, scoring_error_at FROM lifecycle.models WHERE name = 'c50';
SELECT sources, rfm_rescored > 0 AS rescored FROM lifecycle.refresh();
SELECT count(*) AS customers, count(churn_risk) AS with_churn_risk,
       count(expected_value) AS with_expected_value
FROM lifecycle.customer_stage;

-- 7. A current model stored with parameters the check refuses (before 0.3.0, or with the
-- table's triggers off) is set aside at the next refresh, before any source scores with it.
SET session_replication_role = replica;
UPDATE lifecycle.models SET bgnbd = '(1,NaN,0.5,3,0,30,0,t)' WHERE name = 'c50';
RESET session_replication_role;
SELECT sources FROM lifecycle.refresh();
SELECT scoring_error FROM lifecycle.models WHERE name = 'c50';
SELECT count(*) FILTER (WHERE last_error IS NOT NULL AND consecutive_errors > 0) AS sources_failing
FROM lifecycle.source_status;

-- source_status is for readers.
SELECT has_table_privilege('lifecycle_reader', 'lifecycle.source_status', 'SELECT') AS reader_reads,
       has_table_privilege('c50_nobody', 'lifecycle.source_status', 'SELECT') AS nobody_reads;

-- Clean up: untrack everything, drop what was created.
DELETE FROM lifecycle.models WHERE name = 'c50';
SELECT lifecycle.untrack('c50_good'), lifecycle.untrack('c50_bad');
SELECT count(*) AS sources_left FROM lifecycle.sources;
DROP FUNCTION c50_model;
DROP TABLE c50_good, c50_bad;
DROP ROLE c50_owner, c50_nobody, c50_editor;
RESET lifecycle.as_of;

-- 8. The engine's date going backwards while a source is tracked is refused for that
-- source: it fails as a source fails (a WARNING, kept in source_status with SQLSTATE
-- 55000 in the warning, retried with backoff), nothing of it is rewritten at the earlier
-- day, and a source tracked at that earlier day is refreshed in the same tick.
SET lifecycle.as_of = '2026-05-10';
CREATE TABLE c50_ahead (customer int, ordered date);
INSERT INTO c50_ahead VALUES (1, '2026-05-01'), (2, '2026-02-01');
SELECT lifecycle.track('c50_ahead', 'customer', 'ordered') > 0 AS tracked;
SET lifecycle.as_of = '2026-05-20';
SELECT sources, due FROM lifecycle.refresh();
SELECT refreshed_on FROM lifecycle.sources WHERE source = 'c50_ahead'::regclass;
SELECT customer, stage, stage_since FROM lifecycle.customer_stage ORDER BY customer;
SET lifecycle.as_of = '2026-05-12';
CREATE TABLE c50_behind (customer int, ordered date);
INSERT INTO c50_behind VALUES (3, '2026-05-11');
SELECT lifecycle.track('c50_behind', 'customer', 'ordered') > 0 AS tracked;
INSERT INTO c50_ahead VALUES (1, '2026-05-11');
INSERT INTO c50_behind VALUES (3, '2026-05-12');
SELECT sources, queued FROM lifecycle.refresh();
SELECT source, last_error, consecutive_errors, waiting, queued FROM lifecycle.source_status ORDER BY source;
SELECT s.source::text, c.customer, c.stage, c.stage_since, c.last_purchase
FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id ORDER BY 1, 2;
-- Forward again (the same day as the last refresh, once the backoff is over): the source
-- takes its queued order and its error is cleared.
SET lifecycle.as_of = '2026-05-20';
UPDATE lifecycle.sources SET retry_at = NULL WHERE source = 'c50_ahead'::regclass;
SELECT sources, queued FROM lifecycle.refresh();
SELECT source, consecutive_errors, waiting, queued FROM lifecycle.source_status ORDER BY source;
SELECT customer, last_purchase FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
WHERE s.source = 'c50_ahead'::regclass ORDER BY customer;
SELECT lifecycle.untrack('c50_ahead'), lifecycle.untrack('c50_behind');
DROP TABLE c50_ahead, c50_behind;
RESET lifecycle.as_of;
