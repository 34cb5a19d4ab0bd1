-- The C++/PostgreSQL boundary: an exception thrown deep in the core reaches the client
-- as a clean ERROR with the right SQLSTATE, every C++ object on the way is destroyed,
-- and the backend keeps serving. The selftest entry points are not in the extension's
-- SQL; the test declares them.
CREATE FUNCTION selftest_throw(kind text, depth integer) RETURNS void
    AS '$libdir/lifecycle', 'lifecycle_selftest_throw' LANGUAGE C STRICT;
CREATE FUNCTION selftest_pg_error() RETURNS void
    AS '$libdir/lifecycle', 'lifecycle_selftest_pg_error' LANGUAGE C STRICT;
CREATE FUNCTION selftest_live_probes() RETURNS bigint
    AS '$libdir/lifecycle', 'lifecycle_selftest_live_probes' LANGUAGE C STRICT;
CREATE FUNCTION selftest_unwind_stacks(inside_pg_call boolean) RETURNS void
    AS '$libdir/lifecycle', 'lifecycle_selftest_unwind_stacks' LANGUAGE C STRICT;

SELECT pg_backend_pid() AS pid \gset

-- 22023 / 22008 from the core's own errors, 53200 for std::bad_alloc, XX000 for any
-- other exception (its text varies between C++ libraries, so only the SQLSTATE is shown).
SELECT expect_error($$SELECT selftest_throw('invalid', 50)$$);
SELECT expect_error($$SELECT selftest_throw('date', 50)$$);
SELECT expect_error($$SELECT selftest_throw('bad_alloc', 50)$$);
SELECT left(expect_error($$SELECT selftest_throw('runtime', 50)$$), 5);
SELECT left(expect_error($$SELECT selftest_throw('unknown', 50)$$), 5);
SELECT selftest_live_probes() AS live_probes_after_exceptions;

-- The other direction: a PostgreSQL ERROR raised while C++ objects are alive keeps its
-- SQLSTATE and message, and the objects are destroyed before it reaches the client.
SELECT expect_error($$SELECT selftest_pg_error()$$);
SELECT selftest_live_probes() AS live_probes_after_pg_error;

-- Uncaught, at top level, in the same session: a plain ERROR, then the session goes on.
\set VERBOSITY terse
SELECT selftest_throw('invalid', 1000);
SELECT selftest_pg_error();
\set VERBOSITY default
SELECT pg_backend_pid() = :pid AS same_backend, selftest_live_probes() AS live_probes;

-- A C++ exception unwinding frames that PostgreSQL's error stacks point into (an error
-- context callback, pg_call's PG_TRY): the guard restores both stacks before the ERROR,
-- so no stale CONTEXT line, no jump into a dead frame, and the backend goes on.
SELECT selftest_unwind_stacks(false);
SELECT selftest_unwind_stacks(true);
SELECT expect_error($$SELECT selftest_unwind_stacks(true)$$);
DO $$
BEGIN
    FOR i IN 1..1000 LOOP
        BEGIN
            PERFORM selftest_unwind_stacks(i % 2 = 0);
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
    END LOOP;
END $$;
SELECT expect_error($$SELECT 1 / 0$$);
SELECT pg_backend_pid() = :pid AS same_backend;

-- Many in a row, inside one transaction with savepoints: nothing leaks, nothing breaks.
DO $$
BEGIN
    FOR i IN 1..1000 LOOP
        BEGIN
            PERFORM selftest_throw(CASE i % 3 WHEN 0 THEN 'invalid' WHEN 1 THEN 'bad_alloc' ELSE 'runtime' END, i % 20);
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
    END LOOP;
END $$;
SELECT selftest_live_probes() AS live_probes_after_1000, pg_backend_pid() = :pid AS same_backend;

DROP FUNCTION selftest_throw(text, integer), selftest_pg_error(), selftest_live_probes(),
    selftest_unwind_stacks(boolean);
