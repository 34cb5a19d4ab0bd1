-- ALTER EXTENSION lifecycle UPDATE from 0.1.0 gives exactly what a fresh install of the
-- current version gives: the same member objects, and the same definitions of them.
-- Each database's description is kept in a psql variable and compared in the other.
CREATE DATABASE lifecycle_upgraded;
CREATE DATABASE lifecycle_fresh;

\c lifecycle_upgraded
CREATE EXTENSION lifecycle VERSION '0.1.0';
ALTER EXTENSION lifecycle UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'lifecycle';
\i sql/extension_members.psql
SELECT string_agg(line, E'\n' ORDER BY line) AS upgraded FROM members \gset
SELECT count(*) > 0 AS has_members FROM members;

\c lifecycle_fresh
CREATE EXTENSION lifecycle;
\i sql/extension_members.psql
-- The lines only one of the two has (none expected).
SELECT line AS only_in_fresh FROM members
EXCEPT SELECT unnest(string_to_array(:'upgraded', E'\n'));
SELECT unnest(string_to_array(:'upgraded', E'\n')) AS only_in_upgraded
EXCEPT SELECT line FROM members;
SELECT string_agg(line, E'\n' ORDER BY line) = :'upgraded' AS same_extension FROM members;

\c contrib_regression
DROP DATABASE lifecycle_upgraded;
DROP DATABASE lifecycle_fresh;
