------------------------------------------------------------------------------------
-- Waking the worker (src/worker/refresh_worker.cpp): between ticks it asks this every
-- lifecycle.poll_interval, in a transaction of its own that takes no lock, and ticks at
-- once when the answer is true. It must stay a probe of a row or two, whatever the
-- queue's length: it runs a few times a second in every database the worker serves.
-- Privileges: src/privileges.sql (last in the install script) revokes it from PUBLIC and
-- grants it to lifecycle_worker, as for every internal function.
------------------------------------------------------------------------------------

-- Whether a tick would find work that came in since the last one: changed orders queued;
-- or a watermark source whose sequence handed out ids since its last capture, or whose
-- last capture was held back by transactions that have all ended since (not while they
-- run: the worker would tick every poll for nothing). PL/pgSQL keeps its plans between
-- calls (a SQL function is planned again on every call); not parallel safe, as the
-- owner's read of the sequence is not.
CREATE FUNCTION lifecycle._work_waiting() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- (not for a source waiting after a failure until its retry_at: the worker would
    -- tick every poll for nothing; the changes of the first 1,000 queue rows only, so that
    -- the check stays bounded while such a source has many queued)
    RETURN EXISTS (SELECT FROM (SELECT q.source_id FROM lifecycle.change_queue q LIMIT 1000) q
                   WHERE NOT EXISTS (SELECT FROM lifecycle.sources s
                                     WHERE s.id = q.source_id AND s.retry_at > now()))
        OR EXISTS (SELECT FROM lifecycle.sources s
                   WHERE s.watermark_column IS NOT NULL
                     AND NOT coalesce(s.retry_at > now(), false)
                     AND ((SELECT p.last_value FROM lifecycle._sequence_position(s.id) p)
                              > s.watermark_seen
                          OR (s.watermark < s.watermark_seen
                              AND NOT lifecycle._still_holding(s.watermark_sequence,
                                                               s.watermark_holders))));
END
$$;
