
------------------------------------------------------------------------------------
-- 0.2.0: the stage engine: tracked sources, the change queue, the stage table, the
-- transitions log, refresh() and the views the background worker and BI read.
-- Part of lifecycle--0.2.0.sql and of the 0.1.0 -> 0.2.0 upgrade (see the Makefile).
------------------------------------------------------------------------------------

-- Calling this loads the library, which defines the lifecycle.* settings.
CREATE FUNCTION lifecycle._load() RETURNS void
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'lifecycle_load';

-- The worker's two calls (see src/worker/): one tick, and the report of a failed one.
-- (Placeholders until the engine lands: a tick does nothing and asks for no more.)
CREATE FUNCTION lifecycle._worker_tick(batch_size integer) RETURNS boolean
    LANGUAGE sql AS $$ SELECT false $$;
CREATE FUNCTION lifecycle._worker_failed(message text) RETURNS void
    LANGUAGE sql AS $$ SELECT $$;
