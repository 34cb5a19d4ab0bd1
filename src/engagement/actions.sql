------------------------------------------------------------------------------------
-- What applications call: claim actions and report outcomes, consent, contact details,
-- churn reasons. SECURITY DEFINER, granted to lifecycle_sender only (privileges.sql):
-- they write the engine's tables, which that role cannot touch directly. Every name is
-- qualified and search_path pinned; no user code runs inside.
------------------------------------------------------------------------------------

-- The id of tracked source `source`; an ERROR naming the argument if it is not tracked.
CREATE FUNCTION lifecycle._tracked_source_id(source regclass) RETURNS integer
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id integer := (SELECT s.id FROM lifecycle.sources s WHERE s.source = _tracked_source_id.source);
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'argument "source": % is not tracked (see lifecycle.track)', source
            USING ERRCODE = '22023';
    END IF;
    RETURN id;
END
$$;

CREATE FUNCTION lifecycle._check_customer(customer text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF customer IS NULL THEN
        RAISE EXCEPTION 'argument "customer" must not be NULL' USING ERRCODE = '22004';
    END IF;
END
$$;

-- Sets customer `who`'s consent on `chans` to `grant_it` (with its origin `origin`) and
-- logs each change in consent_log.
CREATE FUNCTION lifecycle._set_consent(src integer, who text, chans text[], grant_it boolean,
                                       origin text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH changed AS (
        INSERT INTO lifecycle.consent AS c (source_id, customer, channel, granted, via)
        SELECT src, who, ch, grant_it, origin FROM unnest(chans) AS ch
        ON CONFLICT ON CONSTRAINT consent_pkey DO UPDATE
            SET granted = excluded.granted, changed_at = now(), via = excluded.via
        RETURNING c.*
    )
    INSERT INTO lifecycle.consent_log (source_id, customer, channel, granted, changed_at, via)
    SELECT c.source_id, c.customer, c.channel, c.granted, c.changed_at, c.via FROM changed c;
END;

-- Hands at most max_actions due actions (oldest first) to `consumer` for `lease`, or
-- until it reports an outcome. Concurrent consumers never get the same action (the rows
-- are locked with SKIP LOCKED, and a claimed row is due again only when its lease has
-- run out); an action whose lease ran out is handed out again, to one consumer.
CREATE FUNCTION lifecycle.claim_actions(consumer text, max_actions integer DEFAULT 100,
                                        lease interval DEFAULT '5 minutes',
                                        channels text[] DEFAULT NULL)
RETURNS SETOF lifecycle.actions
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ch text;
BEGIN
    IF consumer IS NULL OR consumer = '' THEN
        RAISE EXCEPTION 'argument "consumer" must name the consumer' USING ERRCODE = '22023';
    END IF;
    IF max_actions IS NULL OR max_actions < 1 THEN
        RAISE EXCEPTION 'argument "max_actions" must be at least 1, got %',
            coalesce(max_actions::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF lease IS NULL OR lease <= interval '0' THEN
        RAISE EXCEPTION 'argument "lease" must be positive, got %', coalesce(lease::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    FOREACH ch IN ARRAY coalesce(channels, '{}') LOOP
        PERFORM lifecycle._check_channel('argument "channels"', ch);
    END LOOP;
    RETURN QUERY
    WITH picked AS (
        SELECT a.id FROM lifecycle.actions a
        WHERE a.status IN ('due', 'claimed')
          AND ((a.status = 'due' AND a.due_at <= lifecycle.engine_time())
               OR (a.status = 'claimed' AND a.claim_expires < now()))
          AND (channels IS NULL OR a.channel = ANY (channels))
        ORDER BY a.due_at, a.id
        LIMIT max_actions
        FOR UPDATE SKIP LOCKED
    )
    UPDATE lifecycle.actions a
    SET status = 'claimed', claimed_by = consumer, claim_expires = now() + lease,
        attempts = a.attempts + 1, updated_at = now()
    FROM picked WHERE a.id = picked.id
    RETURNING a.*;
END
$$;

-- Records an outcome of action `action_id`: sent, delivered, opened, clicked, replied,
-- bounced, or failed (with retry_after: due again then; without: given up). The same
-- outcome reported twice for the same attempt is ignored, and the status only moves
-- forward (due, failed, sent, delivered or bounced, opened, clicked, replied). A report
-- is taken from whoever makes it, after a lease ran out too: it counts for the current
-- attempt. A click or a reply stops the
-- series when the playbook says so: its other actions not yet reported are cancelled at
-- once, and the scheduler ends the enrolment before its next step (the application's
-- transaction never locks an enrolment, which the worker writes: docs/playbooks.md).
-- Returns the action's status.
CREATE FUNCTION lifecycle.report_action(action_id bigint, outcome text, detail text DEFAULT NULL,
                                        retry_after interval DEFAULT NULL,
                                        consumer text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a lifecycle.actions;
    -- Outcomes only move an action forward: a late 'sent' does not undo 'bounced', nor a
    -- late 'failed' a 'replied'. Equal ranks keep what came first.
    ranks constant jsonb := '{"due": 0, "claimed": 0, "failed": 1, "sent": 2, "delivered": 3,
                              "bounced": 3, "opened": 4, "clicked": 5, "replied": 6}';
    stops text[];
BEGIN
    IF outcome IS NULL OR outcome NOT IN ('sent', 'delivered', 'opened', 'clicked', 'replied',
                                          'bounced', 'failed') THEN
        RAISE EXCEPTION 'argument "outcome": % is not an outcome (sent, delivered, opened, clicked, replied, bounced or failed)',
            coalesce(quote_literal(outcome), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF retry_after IS NOT NULL AND (outcome <> 'failed' OR retry_after < interval '0') THEN
        RAISE EXCEPTION 'argument "retry_after" goes only with outcome failed, and is not negative'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO a FROM lifecycle.actions x WHERE x.id = action_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'argument "action_id": there is no action %', coalesce(action_id::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO lifecycle.action_outcomes (action_id, attempt, outcome, consumer, detail)
    VALUES (a.id, a.attempts, outcome, consumer, detail)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND OR a.status = 'canceled' THEN
        RETURN a.status;   -- a repeat, or too late: nothing changes
    END IF;
    a.status := CASE
        WHEN (ranks ->> a.status)::int >= (ranks ->> outcome)::int THEN a.status
        WHEN outcome = 'failed' AND retry_after IS NOT NULL THEN 'due'
        ELSE outcome END;
    UPDATE lifecycle.actions x
    SET status = a.status, updated_at = now(),
        due_at = CASE WHEN a.status = 'due' THEN now() + retry_after ELSE x.due_at END,
        claimed_by = CASE WHEN a.status = 'due' THEN NULL ELSE x.claimed_by END,
        claim_expires = CASE WHEN a.status = 'due' THEN NULL ELSE x.claim_expires END
    WHERE x.id = a.id;
    stops := (SELECT p.stop_on FROM lifecycle.playbooks p WHERE p.name = a.playbook);
    IF (outcome = 'clicked' AND 'click' = ANY (stops)) OR (outcome = 'replied' AND 'reply' = ANY (stops)) THEN
        UPDATE lifecycle.actions x SET status = 'canceled', updated_at = now()
        WHERE x.enrollment_id = a.enrollment_id AND x.id <> a.id AND x.kind = 'message'
          AND x.status IN ('due', 'claimed');
    END IF;
    RETURN a.status;
END
$$;

-- Records that customer `customer` of tracked `source` agreed (opt_in) to messages on
-- `channel`, with where it came from (`via`), in consent and its log.
CREATE FUNCTION lifecycle.opt_in(source regclass, customer text, channel text, via text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src integer := lifecycle._tracked_source_id(source);
BEGIN
    PERFORM lifecycle._check_customer(customer);
    PERFORM lifecycle._check_channel('argument "channel"', channel);
    PERFORM lifecycle._set_consent(src, customer, ARRAY[channel], true, via);
END
$$;

-- Opts customer `customer` out of `channel`, or of every channel when it is NULL: from
-- now on nothing is due there; actions not yet reported are cancelled at once, and the
-- customer's running series that stop on an opt-out (and use that channel) end before
-- their next step. Returns the number of actions cancelled.
CREATE FUNCTION lifecycle.opt_out(source regclass, customer text, channel text DEFAULT NULL,
                                  via text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src integer := lifecycle._tracked_source_id(source);
    canceled bigint;
BEGIN
    PERFORM lifecycle._check_customer(customer);
    IF channel IS NOT NULL THEN
        PERFORM lifecycle._check_channel('argument "channel"', channel);
    END IF;
    PERFORM lifecycle._set_consent(src, customer,
                                   CASE WHEN channel IS NULL
                                        THEN ARRAY(SELECT ch.channel FROM lifecycle.channels ch
                                                   ORDER BY ch.channel)
                                        ELSE ARRAY[channel] END,
                                   false, via);
    UPDATE lifecycle.actions a SET status = 'canceled', updated_at = now()
    WHERE a.source_id = src AND a.customer = opt_out.customer AND a.status IN ('due', 'claimed')
      AND (opt_out.channel IS NULL OR a.channel = opt_out.channel);
    GET DIAGNOSTICS canceled = ROW_COUNT;
    RETURN canceled;
END
$$;

-- Sets what the engine knows of a customer besides orders: time zone, birthday.
CREATE FUNCTION lifecycle.set_contact(source regclass, customer text, time_zone text DEFAULT NULL,
                                      birthday date DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src integer := lifecycle._tracked_source_id(source);
BEGIN
    PERFORM lifecycle._check_customer(customer);
    IF time_zone IS NOT NULL AND NOT lifecycle._valid_time_zone(time_zone) THEN
        RAISE EXCEPTION 'argument "time_zone": unknown time zone % (a name of '
                        'pg_timezone_names such as Europe/Berlin, not an abbreviation or offset)',
                        quote_literal(time_zone)
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO lifecycle.contacts AS k (source_id, customer, time_zone, birthday)
    VALUES (src, set_contact.customer, set_contact.time_zone, set_contact.birthday)
    ON CONFLICT ON CONSTRAINT contacts_pkey DO UPDATE
        SET time_zone = excluded.time_zone, birthday = excluded.birthday;
END
$$;

-- Records why a customer left (a reason code of lifecycle.churn_reasons, and a note).
CREATE FUNCTION lifecycle.record_churn_reason(source regclass, customer text, code text,
                                              note text DEFAULT NULL, via text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src integer := lifecycle._tracked_source_id(source);
    id bigint;
BEGIN
    PERFORM lifecycle._check_customer(customer);
    IF code IS NULL OR NOT EXISTS (SELECT FROM lifecycle.churn_reasons r WHERE r.code = $3) THEN
        RAISE EXCEPTION 'argument "code": unknown reason %  (see lifecycle.churn_reasons)',
            coalesce(quote_literal(code), 'NULL') USING ERRCODE = '22023';
    END IF;
    INSERT INTO lifecycle.customer_reasons (source_id, customer, code, note, via)
    VALUES (src, record_churn_reason.customer, record_churn_reason.code, record_churn_reason.note,
            record_churn_reason.via)
    RETURNING customer_reasons.id INTO id;
    RETURN id;
END
$$;
