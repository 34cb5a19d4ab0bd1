------------------------------------------------------------------------------------
-- Checks of what users write into the playbook tables: an ERROR with SQLSTATE 22023
-- naming the column and the row, rather than a constraint's name. Shipped rows follow
-- the policies' rule: a user's row with a shipped row's key replaces it (and is then
-- dumped by pg_dump), and so does an update.
------------------------------------------------------------------------------------

CREATE FUNCTION lifecycle._bad_argument(what text, detail text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '%: %', what, detail USING ERRCODE = '22023';
END
$$;

-- Whether `channel` is one of lifecycle.channels; an ERROR naming `what` if not.
CREATE FUNCTION lifecycle._check_channel(what text, channel text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF channel IS NULL OR NOT EXISTS (SELECT FROM lifecycle.channels c WHERE c.channel = $2) THEN
        PERFORM lifecycle._bad_argument(what, format('unknown channel %L (see lifecycle.channels)',
                                                     channel));
    END IF;
END
$$;

CREATE FUNCTION lifecycle._check_stage(what text, stage text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF stage IS NULL OR stage NOT IN (SELECT unnest(enum_range(NULL::lifecycle.stage))::text) THEN
        PERFORM lifecycle._bad_argument(what, format(
            'unknown stage %L (prospect, new, active, at_risk, inactive or lapsed)', stage));
    END IF;
END
$$;

CREATE FUNCTION lifecycle._check_value_tier(what text, tier text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF tier IS NULL OR tier NOT IN ('low', 'mid', 'high') THEN
        PERFORM lifecycle._bad_argument(what, format('unknown value tier %L (low, mid or high)', tier));
    END IF;
END
$$;

-- Whether `name` is a lower-case name (letters, digits, _) as channels and reason codes
-- are; an ERROR naming `what` if not.
CREATE FUNCTION lifecycle._check_code(what text, name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        PERFORM lifecycle._bad_argument(what, format(
            '%L: must be a lower-case name (letters, digits, _)', name));
    END IF;
END
$$;

CREATE FUNCTION lifecycle._check_playbook() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    what text := format('playbook %L', NEW.name);
    x text;
BEGIN
    IF NEW.trigger IS NULL OR NEW.trigger NOT IN ('stage', 'birthday', 'anniversary') THEN
        PERFORM lifecycle._bad_argument(what || ', trigger',
            format('%L is not a trigger (stage, birthday or anniversary)', NEW.trigger));
    END IF;
    IF NEW.trigger = 'stage' AND coalesce(cardinality(NEW.to_stages), 0) = 0 THEN
        PERFORM lifecycle._bad_argument(what || ', to_stages', 'a stage trigger needs at least one stage');
    END IF;
    IF NEW.trigger <> 'stage' AND NEW.to_stages IS NOT NULL THEN
        PERFORM lifecycle._bad_argument(what || ', to_stages', 'only a stage trigger has stages');
    END IF;
    FOREACH x IN ARRAY coalesce(NEW.to_stages, '{}') LOOP
        PERFORM lifecycle._check_stage(what || ', to_stages', x);
    END LOOP;
    FOREACH x IN ARRAY coalesce(NEW.value_tiers, '{}') LOOP
        PERFORM lifecycle._check_value_tier(what || ', value_tiers', x);
    END LOOP;
    FOREACH x IN ARRAY coalesce(NEW.segments, '{}') LOOP
        IF x IS NULL OR NOT EXISTS (SELECT FROM lifecycle.rfm_segments s WHERE s.segment = x) THEN
            PERFORM lifecycle._bad_argument(what || ', segments',
                format('unknown RFM segment %L (see lifecycle.rfm_segments)', x));
        END IF;
    END LOOP;
    FOREACH x IN ARRAY coalesce(NEW.stop_on, '{}') LOOP
        IF x IS NULL OR x NOT IN ('purchase', 'reply', 'click', 'opt_out') THEN
            PERFORM lifecycle._bad_argument(what || ', stop_on',
                format('%L is not a stop condition (purchase, reply, click or opt_out)', x));
        END IF;
    END LOOP;
    IF NEW.stop_on IS NULL THEN
        PERFORM lifecycle._bad_argument(what || ', stop_on', 'must not be NULL (''{}'': none)');
    END IF;
    IF NEW.min_churn_risk < 0 OR NEW.min_churn_risk > 1 OR NEW.min_churn_risk = 'NaN' THEN
        PERFORM lifecycle._bad_argument(what || ', min_churn_risk',
            format('must be between 0 and 1, got %s', NEW.min_churn_risk));
    END IF;
    IF NEW.holdout_share IS NULL OR NOT (NEW.holdout_share >= 0 AND NEW.holdout_share < 1) THEN
        PERFORM lifecycle._bad_argument(what || ', holdout_share',
            format('must be at least 0 and less than 1, got %s', coalesce(NEW.holdout_share::text, 'NULL')));
    END IF;
    IF NEW.attribution_days IS NULL OR NEW.attribution_days < 1 THEN
        PERFORM lifecycle._bad_argument(what || ', attribution_days',
            format('must be at least 1, got %s', coalesce(NEW.attribution_days::text, 'NULL')));
    END IF;
    IF NEW.enabled IS NULL THEN
        PERFORM lifecycle._bad_argument(what || ', enabled', 'must not be NULL');
    END IF;
    -- A user's row with a shipped playbook's name takes its place (its steps stay).
    IF TG_OP = 'INSERT' AND EXISTS (SELECT FROM lifecycle.playbooks p
                                    WHERE p.name = NEW.name AND p.builtin) THEN
        UPDATE lifecycle.playbooks p
        SET trigger = NEW.trigger, to_stages = NEW.to_stages, segments = NEW.segments,
            value_tiers = NEW.value_tiers, min_churn_risk = NEW.min_churn_risk,
            stop_on = NEW.stop_on, holdout_share = NEW.holdout_share,
            attribution_days = NEW.attribution_days, enabled = NEW.enabled,
            description = NEW.description
        WHERE p.name = NEW.name;
        RETURN NULL;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
CREATE TRIGGER playbooks_check BEFORE INSERT OR UPDATE ON lifecycle.playbooks
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_playbook();

CREATE FUNCTION lifecycle._check_playbook_step() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    what text := format('step %s of playbook %L', NEW.step, NEW.playbook);
BEGIN
    IF NEW.step IS NULL OR NEW.step < 1 THEN
        PERFORM lifecycle._bad_argument(format('playbook %L, step', NEW.playbook),
            format('must be at least 1, got %s', coalesce(NEW.step::text, 'NULL')));
    END IF;
    IF NEW.delay IS NULL OR NEW.delay < interval '0' THEN
        PERFORM lifecycle._bad_argument(what || ', delay',
            format('must not be negative, got %s', coalesce(NEW.delay::text, 'NULL')));
    END IF;
    PERFORM lifecycle._check_channel(what || ', channel', NEW.channel);
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('message', 'sunset') THEN
        PERFORM lifecycle._bad_argument(what || ', kind',
            format('%L is not a kind of step (message or sunset)', NEW.kind));
    END IF;
    IF NEW.when_capped IS NULL OR NEW.when_capped NOT IN ('wait', 'skip') THEN
        PERFORM lifecycle._bad_argument(what || ', when_capped',
            format('must be wait or skip, got %L', NEW.when_capped));
    END IF;
    IF NEW.message_key IS NULL OR NEW.message_key = '' THEN
        PERFORM lifecycle._bad_argument(what || ', message_key', 'must not be empty');
    END IF;
    IF TG_OP = 'INSERT' THEN
        DELETE FROM lifecycle.playbook_steps s
        WHERE s.playbook = NEW.playbook AND s.step = NEW.step AND s.builtin;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
CREATE TRIGGER playbook_steps_check BEFORE INSERT OR UPDATE ON lifecycle.playbook_steps
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_playbook_step();

CREATE FUNCTION lifecycle._check_contact_policy() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    what text := format('contact policy %L', NEW.name);
BEGIN
    IF NEW.channel IS NOT NULL THEN
        PERFORM lifecycle._check_channel(what || ', channel', NEW.channel);
    END IF;
    IF NEW.stage IS NOT NULL THEN
        PERFORM lifecycle._check_stage(what || ', stage', NEW.stage);
    END IF;
    IF NEW.value_tier IS NOT NULL THEN
        PERFORM lifecycle._check_value_tier(what || ', value_tier', NEW.value_tier);
    END IF;
    IF NEW.max_messages < 1 THEN
        PERFORM lifecycle._bad_argument(what || ', max_messages',
            format('must be at least 1, got %s (to stop a channel, take away consent or the steps)',
                   NEW.max_messages));
    END IF;
    IF (NEW.max_messages IS NULL) <> (NEW.per IS NULL) THEN
        PERFORM lifecycle._bad_argument(what || ', per', 'max_messages and per go together');
    END IF;
    IF NEW.per <= interval '0' THEN
        PERFORM lifecycle._bad_argument(what || ', per', format('must be positive, got %s', NEW.per));
    END IF;
    IF NEW.min_gap <= interval '0' THEN
        PERFORM lifecycle._bad_argument(what || ', min_gap',
            format('must be positive, got %s', NEW.min_gap));
    END IF;
    IF NEW.max_messages IS NULL AND NEW.min_gap IS NULL THEN
        PERFORM lifecycle._bad_argument(what, 'sets neither max_messages nor min_gap');
    END IF;
    IF TG_OP = 'INSERT' THEN
        DELETE FROM lifecycle.contact_policy p WHERE p.name = NEW.name AND p.builtin;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
CREATE TRIGGER contact_policy_check BEFORE INSERT OR UPDATE ON lifecycle.contact_policy
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_contact_policy();

CREATE FUNCTION lifecycle._check_channel_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM lifecycle._check_code('channel', NEW.channel);
    IF (NEW.quiet_from IS NULL) <> (NEW.quiet_until IS NULL) THEN
        PERFORM lifecycle._bad_argument(format('channel %L, quiet_until', NEW.channel),
                                        'quiet_from and quiet_until go together');
    END IF;
    IF NEW.quiet_from = NEW.quiet_until THEN
        PERFORM lifecycle._bad_argument(format('channel %L, quiet_until', NEW.channel),
                                        'an empty quiet window: leave both NULL');
    END IF;
    IF TG_OP = 'INSERT' AND EXISTS (SELECT FROM lifecycle.channels c
                                    WHERE c.channel = NEW.channel AND c.builtin) THEN
        UPDATE lifecycle.channels c
        SET quiet_from = NEW.quiet_from, quiet_until = NEW.quiet_until, description = NEW.description
        WHERE c.channel = NEW.channel;
        RETURN NULL;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
CREATE TRIGGER channels_check BEFORE INSERT OR UPDATE ON lifecycle.channels
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_channel_row();

CREATE FUNCTION lifecycle._check_churn_reason() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM lifecycle._check_code('code', NEW.code);
    IF TG_OP = 'INSERT' AND EXISTS (SELECT FROM lifecycle.churn_reasons r
                                    WHERE r.code = NEW.code AND r.builtin) THEN
        UPDATE lifecycle.churn_reasons r SET description = NEW.description WHERE r.code = NEW.code;
        RETURN NULL;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
CREATE TRIGGER churn_reasons_check BEFORE INSERT OR UPDATE ON lifecycle.churn_reasons
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_churn_reason();

-- Stored time zones must mean the same in every session, the worker's included
-- (src/pg/time_zones.cpp): `AT TIME ZONE` reads a value as an abbreviation of the
-- session's timezone_abbreviations first, so 'WST' accepted under SET
-- timezone_abbreviations = 'Australia' would fail in the worker, every tick.
-- _zone_name: the tzdata spelling of a zone name of pg_timezone_names, in any case;
-- NULL for anything else (abbreviations, POSIX specifications such as 'UTC+3' (three
-- hours west of UTC), offsets).
CREATE FUNCTION lifecycle._zone_name(zone text) RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_zone_name' LANGUAGE C STABLE STRICT PARALLEL SAFE;
-- _usable_zone: `zone` if it can be used now (a zone PostgreSQL loads, whatever the
-- session's abbreviations), NULL if not: a stored zone that went away (a tzdata
-- upgrade) or was stored before 0.3.0 checked names.
CREATE FUNCTION lifecycle._usable_zone(zone text) RETURNS text
AS 'MODULE_PATHNAME', 'lifecycle_usable_zone' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- Whether `zone` is a full time zone name (see _zone_name): checked the same way
-- whatever the caller's session settings.
CREATE FUNCTION lifecycle._valid_time_zone(zone text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN lifecycle._zone_name(zone) IS NOT NULL;

-- A contact's time zone must be a full zone name; it is stored as tzdata spells it.
CREATE FUNCTION lifecycle._check_contact() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.time_zone IS NOT NULL THEN
        IF NOT lifecycle._valid_time_zone(NEW.time_zone) THEN
            PERFORM lifecycle._bad_argument('time_zone', format(
                'unknown time zone %L (a name of pg_timezone_names such as Europe/Berlin, '
                'not an abbreviation or offset)', NEW.time_zone));
        END IF;
        NEW.time_zone := lifecycle._zone_name(NEW.time_zone);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER contacts_check BEFORE INSERT OR UPDATE ON lifecycle.contacts
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_contact();
