------------------------------------------------------------------------------------
-- Waking the worker (src/worker/refresh_worker.cpp): between ticks it asks this every
-- lifecycle.poll_interval, in a transaction of its own that takes no lock, and ticks at
-- once when the answer is true. It must stay a probe of a row or two, whatever the
-- queue's length: it runs a few times a second in every database the worker serves.
-- Privileges: src/privileges.sql (last in the install script) revokes it from PUBLIC and
-- grants it to lifecycle_worker, as for every internal function.
------------------------------------------------------------------------------------

-- Whether a tick would find work that came in since the last one: changed orders queued.
CREATE FUNCTION lifecycle._work_waiting() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM lifecycle.change_queue);
$$;
