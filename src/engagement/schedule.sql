------------------------------------------------------------------------------------
-- The playbook scheduler: refresh() enrols customers from the transitions it logged and
-- from the day's dates, records purchases against enrolments, turns due steps into
-- actions and announces them (docs/playbooks.md).
------------------------------------------------------------------------------------

-- The engine's clock for playbooks: now(), or with lifecycle.as_of set (tests, replays)
-- the last moment of that day in the session's time zone, so that everything due on
-- the engine's day is due.
CREATE FUNCTION lifecycle.engine_time() RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    PERFORM lifecycle._load();
    IF current_setting('lifecycle.as_of') = '' THEN
        RETURN now();
    END IF;
    RETURN (current_setting('lifecycle.as_of')::date + 1)::timestamp::timestamptz
           - interval '1 microsecond';
END
$$;

-- A customer's value tier from the RFM monetary score: 4-5 high, 3 mid, 1-2 low.
CREATE FUNCTION lifecycle.value_tier(m integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN m >= 4 THEN 'high' WHEN m = 3 THEN 'mid' WHEN m >= 1 THEN 'low' END;

-- Whether `customer` is in the holdout of `playbook`: a hash of both, as a fraction in
-- [0, 1), below `share`. The same customer gets the same answer on every run and
-- machine (md5, not PostgreSQL's internal hash, which depends on the platform).
CREATE FUNCTION lifecycle._held_out(playbook text, customer text, share double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN share > 0 AND ('x' || left(md5(playbook || '/' || customer), 13))::bit(52)::bigint
                     / 4503599627370496.0 < share;

-- Whether a customer (segment, monetary score, churn risk) meets playbook `p`'s
-- restrictions; a customer with no stage row (NULLs) meets only an unrestricted one.
CREATE FUNCTION lifecycle._playbook_admits(p lifecycle.playbooks, segment text, m integer,
                                           churn_risk double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (p.segments IS NULL OR segment = ANY (p.segments))
   AND (p.value_tiers IS NULL OR lifecycle.value_tier(m) = ANY (p.value_tiers))
   AND (p.min_churn_risk IS NULL OR churn_risk >= p.min_churn_risk);

-- Whether contact rule `rule` applies to a message on `channel` to a customer in
-- `stage` and value tier `tier`.
CREATE FUNCTION lifecycle._rule_applies(rule lifecycle.contact_policy, channel text, stage text,
                                        tier text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (rule.channel IS NULL OR rule.channel = channel) AND (rule.stage IS NULL OR rule.stage = stage)
   AND (rule.value_tier IS NULL OR rule.value_tier = tier);

-- The first moment at or after `t` outside the quiet window [quiet_from, quiet_until) of
-- local time in `zone` (the window may wrap past midnight).
CREATE FUNCTION lifecycle._after_quiet(t timestamptz, zone text, quiet_from time,
                                       quiet_until time)
RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    local timestamp := t AT TIME ZONE zone;
    clock time := local::time;
BEGIN
    IF quiet_from IS NULL OR quiet_until IS NULL THEN
        RETURN t;
    ELSIF quiet_from < quiet_until AND clock >= quiet_from AND clock < quiet_until THEN
        RETURN (local::date + quiet_until) AT TIME ZONE zone;
    ELSIF quiet_from > quiet_until AND clock >= quiet_from THEN
        RETURN (local::date + 1 + quiet_until) AT TIME ZONE zone;
    ELSIF quiet_from > quiet_until AND clock < quiet_until THEN
        RETURN (local::date + quiet_until) AT TIME ZONE zone;
    END IF;
    RETURN t;
END
$$;

-- The earliest time at or after `t` at which a message on `channel` to this customer
-- breaks no contact policy that applies to it (its stage and value tier) and falls
-- outside the channel's quiet hours; why it moved, and whether a policy (not only quiet
-- hours) moved it. Moves only forward, so a few rounds settle it.
CREATE FUNCTION lifecycle._allowed_at(src integer, who text, channel text, stage text,
                                      tier text, t timestamptz, zone text, quiet_from time,
                                      quiet_until time, OUT at timestamptz, OUT reason text,
                                      OUT capped boolean)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rule lifecycle.contact_policy;
    later timestamptz;
    moved boolean;
BEGIN
    at := t;
    capped := false;
    FOR round IN 1 .. 50 LOOP
        moved := false;
        later := lifecycle._after_quiet(at, zone, quiet_from, quiet_until);
        IF later > at THEN
            at := later;
            moved := true;
            reason := concat_ws('; ', nullif(reason, 'quiet hours'), 'quiet hours');
        END IF;
        FOR rule IN
            SELECT * FROM lifecycle.contact_policy p
            WHERE lifecycle._rule_applies(p, $3, $4, tier)
            ORDER BY p.name
        LOOP
            IF rule.min_gap IS NOT NULL THEN
                SELECT max(a.due_at) + rule.min_gap INTO later
                FROM lifecycle.actions a
                WHERE a.source_id = src AND a.customer = who AND a.kind = 'message'
                  AND a.status <> 'canceled' AND (rule.channel IS NULL OR a.channel = rule.channel)
                  AND a.due_at > at - rule.min_gap;
            ELSE
                later := NULL;
            END IF;
            IF rule.max_messages IS NOT NULL THEN
                -- the max_messages-th latest message in the window: one period after it
                -- the window holds one message fewer than the cap
                SELECT greatest(later, x.due_at + rule.per) INTO later
                FROM (SELECT a.due_at FROM lifecycle.actions a
                      WHERE a.source_id = src AND a.customer = who AND a.kind = 'message'
                        AND a.status <> 'canceled'
                        AND (rule.channel IS NULL OR a.channel = rule.channel)
                        AND a.due_at > at - rule.per
                      ORDER BY a.due_at DESC OFFSET rule.max_messages - 1 LIMIT 1) AS x;
            END IF;
            IF later > at THEN
                at := later;
                moved := true;
                capped := true;
                reason := concat_ws('; ', nullif(reason, 'contact policy ' || rule.name),
                                    'contact policy ' || rule.name);
            END IF;
        END LOOP;
        EXIT WHEN NOT moved;
    END LOOP;
END
$$;

-- Enrols the customers that entered a playbook's stages in the transitions after
-- `after_id` (not the 'initial' ones of track()), if they are still in one of them and
-- match its segments, value tiers and churn risk; at most once per playbook and episode
-- (the last purchase). Returns the number enrolled (held out included).
CREATE FUNCTION lifecycle._enroll(after_id bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    upto bigint;
BEGIN
    -- Nothing to enrol without an enabled stage playbook or a new transition: said at
    -- once, without planning the statement below (refresh() plans every statement anew:
    -- about 1 ms a tick for this one).
    IF NOT EXISTS (SELECT FROM lifecycle.playbooks p WHERE p.enabled AND p.trigger = 'stage') THEN
        RETURN 0;
    END IF;
    -- the log read between two ids, by its key whatever its statistics (see _announce)
    upto := (SELECT max(t.id) FROM lifecycle.transitions t);
    IF NOT coalesce(upto > after_id, false) THEN
        RETURN 0;
    END IF;
    WITH plans AS MATERIALIZED (
        -- per playbook, once: its first step and the series' length
        SELECT p.name, f.step AS first_step, f.delay AS first_delay,
               coalesce((SELECT sum(st.delay) FROM lifecycle.playbook_steps st
                         WHERE st.playbook = p.name), interval '0') AS length
        FROM lifecycle.playbooks p
        LEFT JOIN LATERAL (SELECT st.step, st.delay FROM lifecycle.playbook_steps st
                           WHERE st.playbook = p.name ORDER BY st.step LIMIT 1) f ON true
        WHERE p.enabled AND p.trigger = 'stage'
    ), entered AS (
        SELECT DISTINCT ON (p.name, t.source_id, t.customer)
               p.name AS playbook, p.holdout_share, p.attribution_days, t.id AS transition_id,
               t.source_id, t.customer, t.effective,
               coalesce(c.last_purchase, '-infinity') AS episode,
               -- a stored zone PostgreSQL cannot load (any more) counts as none: its
               -- customer is timed in the source's zone, the others are unaffected
               coalesce(lifecycle._usable_zone(k.time_zone), lifecycle._usable_zone(s.time_zone),
                        'UTC') AS zone,
               pl.first_step, pl.first_delay, pl.length
        FROM lifecycle.transitions t
        JOIN lifecycle.playbooks p
          ON p.enabled AND p.trigger = 'stage' AND t.to_stage::text = ANY (p.to_stages)
        JOIN plans pl ON pl.name = p.name
        -- primary-key probes per transition, whatever the statistics say (LIMIT 1 keeps
        -- the planner from scanning a source it takes for small and joining by a filter)
        JOIN LATERAL (SELECT x.* FROM lifecycle.customer_stage x
                      WHERE x.source_id = t.source_id AND x.customer = t.customer LIMIT 1) c ON true
        JOIN lifecycle.sources s ON s.id = t.source_id
        LEFT JOIN LATERAL (SELECT x.time_zone FROM lifecycle.contacts x
                           WHERE x.source_id = t.source_id AND x.customer = t.customer LIMIT 1) k
          ON true
        WHERE t.id > after_id AND t.id <= upto AND t.cause <> 'initial'
          AND c.stage::text = ANY (p.to_stages)
          AND lifecycle._playbook_admits(p, c.segment, c.m, c.churn_risk)
        ORDER BY p.name, t.source_id, t.customer, t.id DESC
    )
    INSERT INTO lifecycle.enrollments AS e
        (playbook, source_id, customer, episode, started_on, transition_id, holdout, status,
         next_step, step_time, next_due_at, counts_after, attribution_until)
    SELECT x.playbook, x.source_id, x.customer, x.episode, x.effective, x.transition_id, x.holdout,
           CASE WHEN x.holdout THEN 'held_out' ELSE 'running' END,
           x.first_step, x.first_time, x.first_time, x.episode, x.attribution_until
    FROM (SELECT en.*, lifecycle._held_out(en.playbook, en.customer, en.holdout_share) AS holdout,
                 (en.effective::timestamp AT TIME ZONE en.zone) + en.first_delay AS first_time,
                 -- as _attribution_until(): the series' length plus the window
                 (en.effective + en.length)::date + en.attribution_days AS attribution_until
          FROM entered en) x
    ON CONFLICT (source_id, customer, playbook, episode) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The last day a purchase counts for a playbook started on `started`: the series' full
-- length (all delays) plus its attribution window.
CREATE FUNCTION lifecycle._attribution_until(playbook text, started date, attribution_days integer)
RETURNS date
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (started + coalesce((SELECT sum(st.delay) FROM lifecycle.playbook_steps st
                            WHERE st.playbook = _attribution_until.playbook), interval '0'))::date
       + attribution_days;

-- Enrols customers in date-triggered playbooks (birthday, anniversary of the first
-- purchase) for the days after each playbook's last look, up to `as_of` (at most three
-- days back: a greeting a week late is worse than none). 29 February counts on 28
-- February in other years. Returns the number enrolled.
CREATE FUNCTION lifecycle._enroll_dates(as_of date) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p lifecycle.playbooks;
    day date;
    days integer[];
    n bigint;
    total bigint := 0;
BEGIN
    FOR p IN SELECT * FROM lifecycle.playbooks
             WHERE enabled AND trigger IN ('birthday', 'anniversary') ORDER BY name LOOP
        day := greatest(coalesce((SELECT d.done_upto FROM lifecycle.playbook_dates d
                                  WHERE d.playbook = p.name), as_of - 1), as_of - 3) + 1;
        CONTINUE WHEN day > as_of;   -- this day is done
        WHILE day <= as_of LOOP
            days := ARRAY[extract(month FROM day) * 100 + extract(day FROM day)];
            IF extract(month FROM day) = 2 AND extract(day FROM day) = 28
               AND extract(day FROM day + 1) = 1 THEN
                days := days || 229;
            END IF;
            WITH due AS (
                SELECT k.source_id, k.customer, k.time_zone
                FROM lifecycle.contacts k
                WHERE p.trigger = 'birthday' AND k.birthday IS NOT NULL
                  AND k.source_id IN (SELECT id FROM lifecycle.sources)
                  AND extract(month FROM k.birthday) * 100 + extract(day FROM k.birthday) = ANY (days)
                UNION ALL
                SELECT c.source_id, c.customer, NULL
                FROM lifecycle.customer_stage c
                WHERE p.trigger = 'anniversary' AND c.first_purchase < day
                  AND extract(month FROM c.first_purchase) * 100
                      + extract(day FROM c.first_purchase) = ANY (days)
            ), matching AS (
                -- (an unusable stored zone counts as none, as in _enroll)
                SELECT d.*, coalesce(lifecycle._usable_zone(coalesce(
                                         d.time_zone, (SELECT k.time_zone FROM lifecycle.contacts k
                                                       WHERE k.source_id = d.source_id
                                                         AND k.customer = d.customer))),
                                     lifecycle._usable_zone(s.time_zone), 'UTC') AS zone,
                       lifecycle._held_out(p.name, d.customer, p.holdout_share) AS holdout
                FROM due d
                JOIN lifecycle.sources s ON s.id = d.source_id
                LEFT JOIN lifecycle.customer_stage c
                  ON c.source_id = d.source_id AND c.customer = d.customer
                WHERE lifecycle._playbook_admits(p, c.segment, c.m, c.churn_risk)
            )
            INSERT INTO lifecycle.enrollments
                (playbook, source_id, customer, episode, started_on, holdout, status, next_step,
                 step_time, next_due_at, counts_after, attribution_until)
            SELECT p.name, m.source_id, m.customer, day, day, m.holdout,
                   CASE WHEN m.holdout THEN 'held_out' ELSE 'running' END, f.step,
                   (day::timestamp AT TIME ZONE m.zone) + f.delay,
                   (day::timestamp AT TIME ZONE m.zone) + f.delay, day - 1,
                   lifecycle._attribution_until(p.name, day, p.attribution_days)
            FROM matching m
            LEFT JOIN LATERAL (SELECT st.step, st.delay FROM lifecycle.playbook_steps st
                               WHERE st.playbook = p.name ORDER BY st.step LIMIT 1) f ON true
            ON CONFLICT (source_id, customer, playbook, episode) DO NOTHING;
            GET DIAGNOSTICS n = ROW_COUNT;
            total := total + n;
            day := day + 1;
        END LOOP;
        INSERT INTO lifecycle.playbook_dates VALUES (p.name, as_of)
        ON CONFLICT (playbook) DO UPDATE SET done_upto = greatest(playbook_dates.done_upto, as_of);
    END LOOP;
    RETURN total;
END
$$;

-- Ends enrolments: status `status`, their messages not yet reported cancelled, `event`
-- logged. An action an application holds locked (claiming or reporting it in an open
-- transaction) is left as it is rather than waited for: the worker never waits on a
-- lock a sender can take.
CREATE FUNCTION lifecycle._end_enrollments(ids bigint[], status text, event text, detail text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE lifecycle.enrollments e
    SET status = _end_enrollments.status, next_step = NULL, step_time = NULL,
        next_due_at = NULL, waiting = NULL, ended_at = now()
    WHERE e.id = ANY (ids) AND e.status = 'running';
    UPDATE lifecycle.actions a SET status = 'canceled', updated_at = now()
    WHERE a.id IN (SELECT x.id FROM lifecycle.actions x
                   WHERE x.enrollment_id = ANY (ids) AND x.status IN ('due', 'claimed')
                     AND x.kind = 'message'
                   FOR UPDATE SKIP LOCKED);
    INSERT INTO lifecycle.playbook_log (enrollment_id, event, detail)
    SELECT unnest(ids), event, detail;
END
$$;

-- Purchases the last refresh of source `s` saw against the enrolments they count for:
-- the customers written at once (lifecycle_bought: orders on or after their last
-- purchase day, the day of the last counted) and those of the general path whose last
-- purchase moved forward (lifecycle_work). The first
-- sets converted_on, each adds its amount to revenue, and a running series that stops on
-- a purchase ends 'converted'.
CREATE FUNCTION lifecycle._record_purchases(s lifecycle.sources) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    stopped bigint[];
BEGIN
    -- (no enrolment of this source's customers, none to count for: skip the probes)
    IF NOT EXISTS (SELECT FROM lifecycle.enrollments WHERE source_id = s.id) THEN
        RETURN;
    END IF;
    WITH bought AS (
        UPDATE lifecycle.enrollments e
        SET converted_on = coalesce(e.converted_on, w.last_purchase),
            revenue = coalesce(e.revenue, 0) + greatest(coalesce(w.spend_added, 0), 0)
        FROM (SELECT w.*, x.id AS enrollment_id
              FROM (SELECT b.customer, b.last_purchase, b.spend_added
                    FROM pg_temp.lifecycle_bought b
                    UNION ALL
                    SELECT w.customer, w.last_purchase,
                           coalesce(w.spend, 0) - coalesce(w.old_spend, 0)
                    FROM pg_temp.lifecycle_work w
                    WHERE NOT w.gone AND w.last_purchase > coalesce(w.old_last, '-infinity')) w
              -- index probes per customer who bought, whatever the statistics say (OFFSET
              -- 0 keeps the subquery from being flattened into a join by a filter)
              CROSS JOIN LATERAL (SELECT y.id FROM lifecycle.enrollments y
                                  WHERE y.source_id = s.id AND y.customer = w.customer
                                  OFFSET 0) x) w
        WHERE e.id = w.enrollment_id
          AND w.last_purchase > e.counts_after AND w.last_purchase <= e.attribution_until
        RETURNING e.id, e.status, e.playbook
    )
    SELECT array_agg(b.id) INTO stopped
    FROM bought b JOIN lifecycle.playbooks p ON p.name = b.playbook
    WHERE b.status = 'running' AND 'purchase' = ANY (p.stop_on);
    IF stopped IS NOT NULL THEN
        PERFORM lifecycle._end_enrollments(stopped, 'converted', 'stopped', 'purchase');
    END IF;
END
$$;

-- The scratch table of one scheduling pass: per due enrolment, its step and what the
-- pass decided. Used only when it is the engine's own (lifecycle._scratch_ready, as for
-- the refresh's), open to the worker's role only: a table owner's code that runs while
-- the engine reads a source (a forced RLS policy) runs in the engine's session.
CREATE FUNCTION lifecycle._due_table() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF lifecycle._scratch_ready('lifecycle_due') THEN
        RETURN;
    END IF;
    CREATE TEMP TABLE lifecycle_due (
        enrollment_id bigint PRIMARY KEY, source_id integer, customer text COLLATE "C",
        playbook text, step integer, step_time timestamptz, look_at timestamptz,
        channel text, kind text, message_key text, when_capped text,
        next_no integer, next_delay interval, zone text, quiet_from time, quiet_until time,
        granted boolean, stage text, tier text, waited text,
        at timestamptz, reason text, capped boolean, verdict text)
        ON COMMIT DELETE ROWS;
    -- (No index on (source_id, customer): "no other step of the customer's is due in this
    -- pass" is a window count in _schedule_pass's INSERT, not an anti-join, which with
    -- hash and merge joins off was quadratic: 9 s for 9k steps, bench/playbooks.sh.)
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON pg_temp.lifecycle_due TO lifecycle_worker;
END
$$;

-- One scheduling pass over at most `budget` enrolments whose next step is due by `now`:
-- each step becomes an action, waits (contact policy, quiet hours), is skipped (no
-- consent, or capped with when_capped = 'skip'), or ends the series (sunset, no step
-- left). Customers with no message in any policy's window are decided in bulk; the
-- others one at a time, so that each sees the actions just made. The enrolments of the
-- sources in `skipped` (which the refresh skipped: being untracked or dropped) are left
-- alone. Returns the number of enrolments looked at.
CREATE FUNCTION lifecycle._schedule_pass(now_ timestamptz, budget bigint,
                                         skipped integer[] DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    d record;
    taken bigint;
BEGIN
    PERFORM lifecycle._due_table();
    TRUNCATE pg_temp.lifecycle_due;
    -- Every due step with what decides it, and the decision where it can be made in
    -- bulk, in one statement (each rewrite of the scratch table costs as much again).
    INSERT INTO pg_temp.lifecycle_due
    -- (MATERIALIZED: `fixed` and `verdict` are used several times below, and their
    -- subqueries would run once per use)
    WITH due AS MATERIALIZED (
        SELECT e.id, e.source_id, e.customer, e.playbook, e.next_step, e.step_time,
               e.next_due_at, st.channel, st.kind, st.message_key, st.when_capped,
               nx.step AS next_no, nx.delay AS next_delay,
               -- (an unusable stored zone counts as none, as in _enroll)
               coalesce(lifecycle._usable_zone(k.time_zone), lifecycle._usable_zone(s.time_zone),
                        'UTC') AS zone, ch.quiet_from, ch.quiet_until,
               coalesce(cs.granted, false) AS granted, c.stage::text AS stage,
               lifecycle.value_tier(c.m) AS tier, e.waiting AS waited,
               -- stops reported since the last step (applications record them without
               -- touching enrolments): a click or reply on one of its actions, an
               -- opt-out of one of its channels since it began
               CASE WHEN EXISTS (
                        SELECT FROM lifecycle.actions a
                        JOIN lifecycle.action_outcomes o ON o.action_id = a.id
                        WHERE a.enrollment_id = e.id
                          AND ((o.outcome = 'clicked' AND 'click' = ANY (p.stop_on))
                               OR (o.outcome = 'replied' AND 'reply' = ANY (p.stop_on))))
                    THEN 'engaged'
                    WHEN 'opt_out' = ANY (p.stop_on) AND EXISTS (
                        SELECT FROM lifecycle.consent x
                        WHERE x.source_id = e.source_id AND x.customer = e.customer
                          AND NOT x.granted AND x.changed_at >= e.enrolled_at
                          AND x.channel IN (SELECT y.channel FROM lifecycle.playbook_steps y
                                            WHERE y.playbook = e.playbook))
                    THEN 'opted_out'
                    WHEN st.channel IS NULL THEN 'finished'  -- the step was deleted
                    WHEN NOT coalesce(cs.granted, false) THEN 'no_consent'
                    WHEN st.kind = 'sunset' THEN 'sunset' END AS fixed
        FROM (SELECT * FROM lifecycle.enrollments
              WHERE status = 'running' AND next_due_at <= now_ AND source_id <> ALL (skipped)
              ORDER BY next_due_at, id LIMIT budget) AS e
        JOIN lifecycle.playbooks p ON p.name = e.playbook AND p.enabled
        JOIN lifecycle.sources s ON s.id = e.source_id
        LEFT JOIN lifecycle.playbook_steps st ON st.playbook = e.playbook AND st.step = e.next_step
        LEFT JOIN lifecycle.channels ch ON ch.channel = st.channel
        -- primary-key probes per due step, whatever the statistics say (as in _enroll)
        LEFT JOIN LATERAL (SELECT x.time_zone FROM lifecycle.contacts x
                           WHERE x.source_id = e.source_id AND x.customer = e.customer LIMIT 1) k
          ON true
        LEFT JOIN LATERAL (SELECT x.granted FROM lifecycle.consent x
                           WHERE x.source_id = e.source_id AND x.customer = e.customer
                             AND x.channel = st.channel LIMIT 1) cs ON true
        LEFT JOIN LATERAL (SELECT x.stage, x.m FROM lifecycle.customer_stage x
                           WHERE x.source_id = e.source_id AND x.customer = e.customer LIMIT 1) c
          ON true
        LEFT JOIN LATERAL (SELECT x.step, x.delay FROM lifecycle.playbook_steps x
                           WHERE x.playbook = e.playbook AND x.step > e.next_step
                           ORDER BY x.step LIMIT 1) AS nx ON true
    ), timed AS MATERIALIZED (
        -- a message's time after quiet hours, and whether another message of the
        -- customer's is due in this pass
        SELECT w.*,
               CASE WHEN w.fixed IS NULL AND w.quiet_from IS NOT NULL
                    THEN lifecycle._after_quiet(w.next_due_at, w.zone, w.quiet_from, w.quiet_until)
                    ELSE w.next_due_at END AS at,
               count(*) FILTER (WHERE w.fixed IS NULL)
                   OVER (PARTITION BY w.source_id, w.customer) > 1 AS crowded
        FROM due w
    ), decided AS MATERIALIZED (
        -- In bulk: a message alone in the pass that breaks no policy that applies at its
        -- time after quiet hours (a later time only shortens every policy's window, so
        -- nothing else can move it). The others are left (NULL) to _allowed_at.
        SELECT t.*,
               CASE WHEN t.fixed IS NOT NULL THEN t.fixed
                    WHEN t.crowded OR EXISTS (
                        SELECT FROM lifecycle.contact_policy p
                        WHERE lifecycle._rule_applies(p, t.channel, t.stage, t.tier)
                          AND (SELECT count(*) FROM lifecycle.actions a
                               WHERE a.source_id = t.source_id AND a.customer = t.customer
                                 AND a.kind = 'message' AND a.status <> 'canceled'
                                 AND (p.channel IS NULL OR a.channel = p.channel)
                                 AND a.due_at > t.at - greatest(p.per, p.min_gap))
                              >= CASE WHEN p.min_gap IS NOT NULL THEN 1 ELSE p.max_messages END)
                    THEN NULL
                    WHEN t.at <= now_ THEN 'send'
                    ELSE 'wait' END AS verdict
        FROM timed t
    )
    SELECT id, source_id, customer, playbook, next_step, step_time, next_due_at, channel, kind,
           message_key, when_capped, next_no, next_delay, zone, quiet_from, quiet_until, granted,
           stage, tier, waited, at,
           CASE WHEN verdict IN ('send', 'wait') AND at > next_due_at THEN 'quiet hours' END,
           CASE WHEN verdict IN ('send', 'wait') THEN false END, verdict
    FROM decided;
    GET DIAGNOSTICS taken = ROW_COUNT;
    IF taken = 0 THEN
        RETURN 0;
    END IF;
    -- A sunset changes consent: if an application holds the customer's consent row
    -- locked (an open transaction after opt_in or opt_out), try again a minute later
    -- rather than wait.
    UPDATE pg_temp.lifecycle_due u SET verdict = 'busy', at = now_ + interval '1 minute'
    WHERE u.verdict = 'sunset'
      AND NOT EXISTS (SELECT FROM (SELECT 1 FROM lifecycle.consent c
                                   WHERE c.source_id = u.source_id AND c.customer = u.customer
                                     AND c.channel = u.channel
                                   FOR UPDATE SKIP LOCKED) AS locked);
    -- One at a time, each action made at once so the next sees it.
    FOR d IN SELECT * FROM pg_temp.lifecycle_due WHERE verdict IS NULL
             ORDER BY look_at, enrollment_id LOOP
        SELECT x.at, x.reason, x.capped INTO d.at, d.reason, d.capped
        FROM lifecycle._allowed_at(d.source_id, d.customer, d.channel, d.stage, d.tier,
                                   d.look_at, d.zone, d.quiet_from, d.quiet_until) AS x;
        UPDATE pg_temp.lifecycle_due u
        SET at = d.at, reason = d.reason, capped = d.capped,
            verdict = CASE WHEN d.capped AND d.when_capped = 'skip' THEN 'capped'
                           WHEN d.at <= now_ THEN 'send' ELSE 'wait' END
        WHERE u.enrollment_id = d.enrollment_id;
        IF d.at <= now_ AND NOT (d.capped AND d.when_capped = 'skip') THEN
            PERFORM lifecycle._make_actions(d.enrollment_id);
        END IF;
    END LOOP;
    PERFORM lifecycle._make_actions(NULL);
    PERFORM lifecycle._apply_verdicts();
    RETURN taken;
END
$$;

-- Makes the actions of lifecycle_due's 'send' and 'sunset' rows: of one enrolment
-- (the one-at-a-time path, which then marks it 'made_send' so the bulk call skips it),
-- or when `enrollment` is NULL of all of them at once.
CREATE FUNCTION lifecycle._make_actions(enrollment bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO lifecycle.actions (enrollment_id, playbook, step, source_id, customer, channel,
                                   message_key, kind, scheduled_for, due_at, reason)
    SELECT m.enrollment_id, m.playbook, m.step, m.source_id, m.customer, m.channel,
           m.message_key, m.kind, m.step_time, coalesce(m.at, m.look_at),
           -- why it waited before (a cap), and why now (quiet hours)
           nullif(concat_ws('; ', m.waited, CASE WHEN m.reason IS DISTINCT FROM m.waited
                                                 THEN m.reason END), '')
    FROM pg_temp.lifecycle_due m
    WHERE m.verdict IN ('send', 'sunset') AND (enrollment IS NULL OR m.enrollment_id = enrollment)
    ORDER BY m.look_at, m.enrollment_id;
    IF enrollment IS NOT NULL THEN
        UPDATE pg_temp.lifecycle_due u SET verdict = 'made_send'
        WHERE u.enrollment_id = enrollment AND u.verdict = 'send';
    END IF;
END
$$;

-- What a scheduling pass decided, written to the enrolments: the next step (its own time
-- is this step's time plus its delay), a wait, a skip logged, a sunset, an end.
CREATE FUNCTION lifecycle._apply_verdicts() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    sunsets bigint[];
BEGIN
    INSERT INTO lifecycle.playbook_log (enrollment_id, step, event, detail)
    SELECT u.enrollment_id, u.step,
           CASE u.verdict WHEN 'wait' THEN 'postponed' ELSE 'skipped' END,
           CASE u.verdict WHEN 'no_consent' THEN 'no consent on ' || u.channel
                          WHEN 'capped' THEN u.reason || ' (allowed from ' || u.at || ')'
                          ELSE u.reason || ' (until ' || u.at || ')' END
    FROM pg_temp.lifecycle_due u JOIN lifecycle.enrollments e ON e.id = u.enrollment_id
    WHERE u.verdict IN ('no_consent', 'capped')
       OR (u.verdict = 'wait' AND e.waiting IS DISTINCT FROM u.reason);
    -- Sunsets: the channel suppressed (an opt-out logged with via 'sunset').
    PERFORM lifecycle._set_consent(u.source_id, u.customer, ARRAY[u.channel], false, 'sunset')
    FROM pg_temp.lifecycle_due u WHERE u.verdict = 'sunset';
    SELECT array_agg(u.enrollment_id) INTO sunsets FROM pg_temp.lifecycle_due u
    WHERE u.verdict = 'sunset';
    IF sunsets IS NOT NULL THEN
        PERFORM lifecycle._end_enrollments(sunsets, 'sunset', 'sunset', 'silent after the last step');
    END IF;
    PERFORM lifecycle._end_enrollments(array_agg(u.enrollment_id), u.verdict, 'stopped',
                                       CASE u.verdict WHEN 'engaged' THEN 'clicked or replied'
                                                      ELSE 'opted out' END)
    FROM pg_temp.lifecycle_due u WHERE u.verdict IN ('engaged', 'opted_out')
    GROUP BY u.verdict;
    UPDATE lifecycle.enrollments e
    SET next_due_at = u.at, waiting = CASE WHEN u.verdict = 'wait' THEN u.reason ELSE e.waiting END
    FROM pg_temp.lifecycle_due u
    WHERE e.id = u.enrollment_id AND u.verdict IN ('wait', 'busy');
    -- On to the next step, or the end of the series.
    UPDATE lifecycle.enrollments e
    SET next_step = u.next_no,
        step_time = CASE WHEN u.next_no IS NOT NULL
                         THEN coalesce(CASE WHEN u.verdict IN ('send', 'made_send') THEN u.at END,
                                       u.step_time) + u.next_delay END,
        next_due_at = CASE WHEN u.next_no IS NOT NULL
                           THEN coalesce(CASE WHEN u.verdict IN ('send', 'made_send') THEN u.at END,
                                         u.step_time) + u.next_delay END,
        waiting = NULL,
        status = CASE WHEN u.next_no IS NULL THEN 'finished' ELSE 'running' END,
        ended_at = CASE WHEN u.next_no IS NULL THEN now() END
    FROM pg_temp.lifecycle_due u
    WHERE e.id = u.enrollment_id
      AND u.verdict IN ('send', 'made_send', 'no_consent', 'capped', 'finished');
END
$$;

-- Every step due by the engine's time, in passes of at most `budget` enrolments (a step
-- made now can make the next one due at once, when its delay is 0), but none of the
-- sources in `skipped` (see _schedule_pass). Returns the number of actions made.
CREATE FUNCTION lifecycle._schedule(budget bigint, skipped integer[] DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    now_ timestamptz := lifecycle.engine_time();
    before bigint;
    looked bigint;
    total bigint := 0;
BEGIN
    -- No step due: said by the due index, without planning _schedule_pass's statement
    -- (refresh() plans every statement anew: about 1.5 ms a tick for it and the max below).
    IF NOT EXISTS (SELECT FROM lifecycle.enrollments e
                   WHERE e.status = 'running' AND e.next_due_at <= now_) THEN
        RETURN 0;
    END IF;
    before := (SELECT coalesce(max(id), 0) FROM lifecycle.actions);
    FOR pass IN 1 .. 10 LOOP
        looked := lifecycle._schedule_pass(now_, budget - total, skipped);
        total := total + looked;
        EXIT WHEN looked = 0 OR total >= budget;
    END LOOP;
    -- (between two ids, read by the key whatever the statistics: see _announce)
    RETURN (SELECT count(*) FROM lifecycle.actions
            WHERE id > before AND id <= (SELECT max(x.id) FROM lifecycle.actions x));
END
$$;

-- What a NOTIFY says of the actions with id > after_id: the range of ids and the count
-- per channel, never a customer id (any role can LISTEN). NULL when there are none. (The
-- actions read between two ids, by the key whatever the statistics: see _announce.)
CREATE FUNCTION lifecycle._actions_payload(after_id bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT json_build_object('first_id', min(first_id), 'last_id', max(last_id),
                                 'actions', sum(n),
                                 'channels', json_object_agg(channel, n ORDER BY channel))::text
        FROM (SELECT a.channel, count(*) AS n, min(a.id) AS first_id, max(a.id) AS last_id
              FROM lifecycle.actions a
              WHERE a.id > after_id AND a.id <= (SELECT max(x.id) FROM lifecycle.actions x)
              GROUP BY a.channel) AS per_channel
        HAVING count(*) > 0);

-- Announces the actions with id > after_id on the channel lifecycle.actions_channel, in
-- one NOTIFY. Returns the number of NOTIFYs (0 or 1).
CREATE FUNCTION lifecycle._announce_actions(after_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    payload text := lifecycle._actions_payload(after_id);
BEGIN
    IF payload IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM pg_notify(current_setting('lifecycle.actions_channel'), payload);
    RETURN 1;
END
$$;
