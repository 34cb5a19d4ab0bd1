-- Install the extension and the helpers the other tests share.
CREATE EXTENSION lifecycle;
SELECT extname, extversion, extrelocatable, nspname
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE extname = 'lifecycle';

-- Every function is parallel safe; the stage forms have the documented volatility.
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'lifecycle'
WHERE p.prokind IN ('f', 'w', 'a') AND p.proname NOT LIKE '\_%'
ORDER BY 1::text;
-- Internal support functions too: only the stage engine's, which write tables, are not
-- parallel safe (and the triggers).
SELECT p.oid::regprocedure AS not_parallel_safe, p.proparallel
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'lifecycle'
WHERE p.proparallel <> 's' AND p.prorettype <> 'trigger'::regtype
ORDER BY 1::text;

-- expect_error(sql): runs `sql` and shows the SQLSTATE and message it fails with.
CREATE FUNCTION expect_error(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
