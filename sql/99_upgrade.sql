-- ALTER EXTENSION lifecycle UPDATE from each released version gives exactly what a fresh
-- install of the current version gives: the same member objects with the same
-- definitions, comments, privileges, defaults, indexes, constraints and triggers
-- (sql/extension_members.psql). The released scripts are installed as they shipped
-- (released/); the last step is the hand-written updates/ script. Each database's
-- description is kept in a psql variable and compared with the fresh one's.
-- (test/upgrade.sh does the same with data, live transitions and the worker running.)
CREATE DATABASE lifecycle_from_0_1_0;
CREATE DATABASE lifecycle_from_0_2_0;
CREATE DATABASE lifecycle_fresh;

\c lifecycle_from_0_1_0
CREATE EXTENSION lifecycle VERSION '0.1.0';
ALTER EXTENSION lifecycle UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'lifecycle';
\i sql/extension_members.psql
SELECT string_agg(line, E'\n' ORDER BY line) AS from_0_1_0 FROM members \gset

\c lifecycle_from_0_2_0
CREATE EXTENSION lifecycle VERSION '0.2.0';
ALTER EXTENSION lifecycle UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'lifecycle';
\i sql/extension_members.psql
SELECT string_agg(line, E'\n' ORDER BY line) AS from_0_2_0 FROM members \gset

\c lifecycle_fresh
CREATE EXTENSION lifecycle;
SELECT extversion FROM pg_extension WHERE extname = 'lifecycle';
\i sql/extension_members.psql
SELECT count(*) > 0 AS has_members FROM members;
-- The lines only one side has (none expected).
SELECT line AS only_in_fresh FROM members
EXCEPT SELECT unnest(string_to_array(:'from_0_2_0', E'\n'));
SELECT unnest(string_to_array(:'from_0_2_0', E'\n')) AS only_in_upgraded_from_0_2_0
EXCEPT SELECT line FROM members;
SELECT unnest(string_to_array(:'from_0_1_0', E'\n')) AS only_in_upgraded_from_0_1_0
EXCEPT SELECT line FROM members;
SELECT string_agg(line, E'\n' ORDER BY line) = :'from_0_2_0' AS same_from_0_2_0,
       string_agg(line, E'\n' ORDER BY line) = :'from_0_1_0' AS same_from_0_1_0
FROM members;
-- After the 0.2.0 -> 0.3.0 script every column of the stage table, the log and the views
-- has a comment, as on a fresh install.
SELECT count(*) AS columns_without_comment
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'lifecycle'::regnamespace
  AND (c.relkind = 'v' OR c.relname IN ('customer_stage', 'transitions'))
  AND col_description(c.oid, a.attnum) IS NULL;

\c contrib_regression
DROP DATABASE lifecycle_from_0_1_0;
DROP DATABASE lifecycle_from_0_2_0;
DROP DATABASE lifecycle_fresh;
