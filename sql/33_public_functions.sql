-- docs/security.md lists every function PUBLIC may execute in the lifecycle schema,
-- between the markers public-execute:begin and public-execute:end. Checked both ways
-- against the EXECUTE privileges in pg_proc: nothing granted goes unlisted, nothing
-- listed is not granted. (Read from the docs/ beside sql/: the test suites copy it.)
\set doc `sed -n '/<!-- public-execute:begin -->/,/<!-- public-execute:end -->/p' docs/security.md`
SELECT length(:'doc') > 1000 AS list_found;
WITH documented AS (
    SELECT m[1] AS signature
    FROM regexp_matches(:'doc', '`(lifecycle\.[a-z_0-9]+\([^`]*\))`', 'g') AS m
), granted AS (
    SELECT p.oid::regprocedure::text AS signature
    FROM pg_proc p
    WHERE p.pronamespace = 'lifecycle'::regnamespace
      AND has_function_privilege('public', p.oid, 'EXECUTE')
)
SELECT coalesce(d.signature, g.signature) AS signature,
       CASE WHEN d.signature IS NULL THEN 'granted to PUBLIC, not in docs/security.md'
            ELSE 'in docs/security.md, not granted to PUBLIC' END AS problem
FROM documented d FULL JOIN granted g ON g.signature = d.signature
WHERE d.signature IS NULL OR g.signature IS NULL
ORDER BY 1;
