-- What the newer PostgreSQL majors change under the engine (issue 22), played by
-- ordinary roles. lc_nora owns and tracks her tables; lc_mia has, from PostgreSQL 17 on,
-- the MAINTAIN privilege on them and the pg_maintain role: MAINTAIN is not ownership, and
-- no gate lets her through. PostgreSQL 18's virtual generated columns are refused at
-- track() (computed when read, the capture triggers' transition tables cannot give them:
-- the application's INSERT failed); stored generated columns are tracked as any column.
-- Runs on every major: a block for a feature runs where the feature exists, and the
-- expected output has one alternative per set of features that shows (56_newer_majors.out:
-- 18 and later; _1: 15 to 17, where the MAINTAIN blocks print nothing). Uses
-- stage_differences() from 10_engine.
SET client_min_messages = warning;
SET lifecycle.as_of = '2026-06-30';
SELECT current_setting('server_version_num')::int >= 170000 AS pg17,
       current_setting('server_version_num')::int >= 180000 AS pg18 \gset
CREATE ROLE lc_nora LOGIN;
GRANT lifecycle_tracker TO lc_nora;
CREATE ROLE lc_mia LOGIN;
GRANT lifecycle_tracker TO lc_mia;
CREATE SCHEMA nora AUTHORIZATION lc_nora;
GRANT USAGE ON SCHEMA nora TO lc_mia;
SET ROLE lc_nora;
CREATE TABLE nora.orders (customer_id bigint, ordered_at date, amount numeric,
                          day date GENERATED ALWAYS AS (ordered_at + 0) STORED);
INSERT INTO nora.orders (customer_id, ordered_at, amount)
VALUES (1, '2026-06-01', 10), (2, '2026-03-20', 5), (3, '2025-12-24', 7);
\if :pg17
GRANT MAINTAIN ON nora.orders TO lc_mia;
\endif
RESET ROLE;
\if :pg17
GRANT pg_maintain TO lc_mia;
\endif

-- MAINTAIN (and pg_maintain) on the table is not ownership: every gate refuses her.
SET ROLE lc_mia;
SELECT lifecycle.track('nora.orders', 'customer_id', 'ordered_at', 'amount');
RESET ROLE;
SET ROLE lc_nora;
-- A stored generated column is tracked as any other.
SELECT lifecycle.track('nora.orders', 'customer_id', 'day', 'amount') > 0 AS tracked;
RESET ROLE;
SET ROLE lc_mia;
SELECT lifecycle.resync('nora.orders');
SELECT lifecycle.untrack('nora.orders');
RESET ROLE;
-- From 16 on, a member of the owner's role granted WITH INHERIT FALSE (SET only) has not
-- the owner's rights: refused like core refuses it ALTER TABLE. (On 15, not a member.)
CREATE ROLE lc_nina LOGIN;
GRANT lifecycle_tracker TO lc_nina;
GRANT USAGE ON SCHEMA nora TO lc_nina;
\if :pg17
GRANT lc_nora TO lc_nina WITH INHERIT FALSE;
\endif
SET ROLE lc_nina;
SELECT lifecycle.untrack('nora.orders');
RESET ROLE;
SET ROLE lc_mia;
-- what pg_maintain does give her on the engine's tables changes no stage
\if :pg17
VACUUM (ANALYZE) lifecycle.customer_stage;
\endif
RESET ROLE;
SELECT lifecycle.refresh() IS NOT NULL AS refreshed;
INSERT INTO nora.orders (customer_id, ordered_at, amount) VALUES (2, '2026-06-29', 3);
SELECT lifecycle.refresh() IS NOT NULL AS refreshed;
SELECT customer, stage FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
WHERE s.source = 'nora.orders'::regclass ORDER BY 1;
SELECT stage_differences('nora.orders', 'default') AS differences;

\if :pg18
SET ROLE lc_nora;
CREATE TABLE nora.virt (customer_id bigint, ordered_at date, amount numeric,
                        doubled numeric GENERATED ALWAYS AS (amount * 2) VIRTUAL,
                        day date GENERATED ALWAYS AS (ordered_at + 0) VIRTUAL);
-- a virtual generated column as the time, or as the amount: refused (0A000)
\set SHOW_CONTEXT never
SELECT lifecycle.track('nora.virt', 'customer_id', 'day', 'amount');
SELECT lifecycle.track('nora.virt', 'customer_id', 'ordered_at', 'doubled');
\set SHOW_CONTEXT errors
-- virtual columns the engine does not track are no matter: writes are captured
SELECT lifecycle.track('nora.virt', 'customer_id', 'ordered_at', 'amount') > 0 AS tracked;
INSERT INTO nora.virt (customer_id, ordered_at, amount) VALUES (7, '2026-06-01', 10), (8, '2026-01-20', 4);
UPDATE nora.virt SET amount = 12 WHERE customer_id = 7;
RESET ROLE;
SELECT lifecycle.refresh() IS NOT NULL AS refreshed;
SELECT customer, stage, purchases, spend FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
WHERE s.source = 'nora.virt'::regclass ORDER BY 1;
SELECT stage_differences('nora.virt', 'default') AS differences;
SET ROLE lc_nora;
SELECT lifecycle.untrack('nora.virt');
DROP TABLE nora.virt;
RESET ROLE;
\endif

SET ROLE lc_nora;
SELECT lifecycle.untrack('nora.orders');
RESET ROLE;
DROP SCHEMA nora CASCADE;
DROP ROLE lc_nina;
DROP ROLE lc_nora;
\if :pg17
REVOKE pg_maintain FROM lc_mia;
\endif
DROP ROLE lc_mia;
