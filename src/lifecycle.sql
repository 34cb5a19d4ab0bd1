-- The extension's SQL, one source file: the Makefile turns it into
-- lifecycle--<version>.sql. Definitions follow DESIGN.md; docs/reference.md documents
-- every object.
\echo Use "CREATE EXTENSION lifecycle" to load this file. \quit

------------------------------------------------------------------------------------
-- Stages
------------------------------------------------------------------------------------

CREATE TYPE lifecycle.stage AS ENUM
    ('prospect', 'new', 'active', 'at_risk', 'inactive', 'lapsed');
COMMENT ON TYPE lifecycle.stage IS 'Lifecycle stage of a customer, in the order the stages are checked';

-- Policies: the windows that turn a purchase history into a stage. Rows shipped with the
-- extension are marked builtin and are not dumped; a user's own rows are (pg_dump keeps
-- them). Inserting a row with a builtin policy's name replaces it, and so does updating
-- one: the row becomes the user's and is dumped from then on.
CREATE TABLE lifecycle.policies (
    name                 text PRIMARY KEY,
    onboarding_days      integer NOT NULL DEFAULT 30 CHECK (onboarding_days >= 0),
    at_risk_days         integer NOT NULL DEFAULT 30 CHECK (at_risk_days >= 0),
    inactive_days        integer NOT NULL DEFAULT 60,
    lapsed_days          integer NOT NULL DEFAULT 90,
    rhythm_factor        double precision NOT NULL DEFAULT 2.0
                         CHECK (rhythm_factor >= 0 AND rhythm_factor < 'Infinity'),
    rhythm_min_purchases integer NOT NULL DEFAULT 3 CHECK (rhythm_min_purchases >= 2),
    description          text,
    builtin              boolean NOT NULL DEFAULT false,
    CONSTRAINT windows_in_order CHECK (at_risk_days <= inactive_days AND inactive_days <= lapsed_days)
);
COMMENT ON TABLE lifecycle.policies IS 'Stage windows by policy name; "default" plus industry presets';

INSERT INTO lifecycle.policies VALUES
    ('default', 30, 30, 60, 90, 2.0, 3,
     'The design brief''s default windows', true),
    ('daily_consumer_goods', 14, 14, 30, 60, 2.0, 3,
     'Groceries, drugstore, pet food: bought weekly to monthly', true),
    ('fashion_retail', 60, 90, 180, 365, 2.0, 3,
     'Clothing, shoes, accessories: bought a few times a year, seasonal', true),
    ('saas', 30, 35, 45, 60, 1.5, 3,
     'Subscriptions with monthly renewals as purchases: a missed renewal is a warning', true),
    ('high_value_goods', 180, 730, 1460, 2555, 2.0, 3,
     'Cars, real estate, furniture: years between purchases', true);

CREATE FUNCTION lifecycle._policies_user_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        DELETE FROM lifecycle.policies WHERE name = NEW.name AND builtin;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
CREATE TRIGGER policies_user_row BEFORE INSERT OR UPDATE ON lifecycle.policies
    FOR EACH ROW EXECUTE FUNCTION lifecycle._policies_user_row();

SELECT pg_catalog.pg_extension_config_dump('lifecycle.policies', 'WHERE NOT builtin');

-- The engine's today: the setting lifecycle.as_of when set, else the current date. The
-- stage engine judges by it, and so do the forms below that take no as_of (their
-- default): with lifecycle.as_of set, lifecycle_stage(first, last, n) agrees with the
-- stage table. (SQL, so a default argument inlines to a current_setting() call: no
-- PL/pgSQL call per row. STABLE: a setting may change between statements.)
CREATE FUNCTION lifecycle.engine_date() RETURNS date
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(nullif(current_setting('lifecycle.as_of', true), '')::date, CURRENT_DATE);

-- The IMMUTABLE form: every window is an argument (indexable, pushes down to Citus).
CREATE FUNCTION lifecycle.lifecycle_stage(
    first date, last date, n bigint, as_of date,
    onboarding_days integer, at_risk_days integer, inactive_days integer, lapsed_days integer,
    rhythm_factor double precision, rhythm_min_purchases integer)
RETURNS lifecycle.stage
AS 'MODULE_PATHNAME', 'lifecycle_stage_windows'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

-- The STABLE form: the windows of a named policy from lifecycle.policies.
CREATE FUNCTION lifecycle.lifecycle_stage(
    first date, last date, n bigint, as_of date DEFAULT lifecycle.engine_date(),
    policy text DEFAULT 'default')
RETURNS lifecycle.stage
AS 'MODULE_PATHNAME', 'lifecycle_stage_policy'
LANGUAGE C STABLE PARALLEL SAFE;

-- Timestamps are judged by their date in the session's TimeZone (the default as_of is
-- the engine's date, at midnight there).
CREATE FUNCTION lifecycle.lifecycle_stage(
    first timestamptz, last timestamptz, n bigint,
    as_of timestamptz DEFAULT lifecycle.engine_date(), policy text DEFAULT 'default')
RETURNS lifecycle.stage
LANGUAGE sql STABLE PARALLEL SAFE
RETURN lifecycle.lifecycle_stage(first::date, last::date, n, as_of::date, policy);

------------------------------------------------------------------------------------
-- RFM
------------------------------------------------------------------------------------

CREATE TYPE lifecycle.rfm AS (r integer, f integer, m integer, code text, segment text);
COMMENT ON TYPE lifecycle.rfm IS 'RFM scores 1..5, the three-digit code and the named segment';

-- Segment rules: each row names a box of (R, F, M) cells. The rules must cover each of
-- the 125 cells exactly once; lifecycle.rfm_segments_check() lists the cells that are
-- not, and the RFM functions refuse rules that fail it.
--
-- lifecycle.rfm_default_segments holds the shipped rules (part of the extension, not
-- dumped). lifecycle.rfm_segments holds a user's own rules, empty at first and dumped
-- by pg_dump; when it has any row, it replaces the defaults as a whole.
-- lifecycle.rfm_segment_rules shows the rules in force.
CREATE TABLE lifecycle.rfm_default_segments (
    segment text PRIMARY KEY,
    r_low   integer NOT NULL CHECK (r_low BETWEEN 1 AND 5),
    r_high  integer NOT NULL CHECK (r_high BETWEEN 1 AND 5),
    f_low   integer NOT NULL CHECK (f_low BETWEEN 1 AND 5),
    f_high  integer NOT NULL CHECK (f_high BETWEEN 1 AND 5),
    m_low   integer NOT NULL DEFAULT 1 CHECK (m_low BETWEEN 1 AND 5),
    m_high  integer NOT NULL DEFAULT 5 CHECK (m_high BETWEEN 1 AND 5),
    CHECK (r_low <= r_high AND f_low <= f_high AND m_low <= m_high)
);
COMMENT ON TABLE lifecycle.rfm_default_segments IS 'The shipped RFM segment rules: the classic R x F grid';

CREATE TABLE lifecycle.rfm_segments (LIKE lifecycle.rfm_default_segments INCLUDING ALL);
COMMENT ON TABLE lifecycle.rfm_segments IS
    'Your own RFM segment rules; when not empty they replace lifecycle.rfm_default_segments';
SELECT pg_catalog.pg_extension_config_dump('lifecycle.rfm_segments', '');

-- The classic R x F grid (M does not matter).
INSERT INTO lifecycle.rfm_default_segments (segment, r_low, r_high, f_low, f_high) VALUES
    ('champions',           5, 5, 4, 5),
    ('loyal customers',     3, 4, 4, 5),
    ('potential loyalists', 4, 5, 2, 3),
    ('new customers',       5, 5, 1, 1),
    ('promising',           4, 4, 1, 1),
    ('need attention',      3, 3, 3, 3),
    ('about to sleep',      3, 3, 1, 2),
    ('at risk',             1, 2, 3, 4),
    ('can''t lose them',    1, 2, 5, 5),
    ('hibernating',         2, 2, 1, 2),
    ('lost',                1, 1, 1, 2);

CREATE VIEW lifecycle.rfm_segment_rules AS
    SELECT segment, r_low, r_high, f_low, f_high, m_low, m_high FROM lifecycle.rfm_segments
    UNION ALL
    SELECT segment, r_low, r_high, f_low, f_high, m_low, m_high FROM lifecycle.rfm_default_segments
    WHERE NOT EXISTS (SELECT FROM lifecycle.rfm_segments);
COMMENT ON VIEW lifecycle.rfm_segment_rules IS 'The RFM segment rules in force';

CREATE FUNCTION lifecycle.rfm_segments_check()
RETURNS TABLE (r integer, f integer, m integer, segments text[])
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT cr.r, cf.f, cm.m, array_remove(array_agg(s.segment ORDER BY s.segment), NULL)
    FROM generate_series(1, 5) AS cr(r)
    CROSS JOIN generate_series(1, 5) AS cf(f)
    CROSS JOIN generate_series(1, 5) AS cm(m)
    LEFT JOIN lifecycle.rfm_segment_rules s
           ON cr.r BETWEEN s.r_low AND s.r_high
          AND cf.f BETWEEN s.f_low AND s.f_high
          AND cm.m BETWEEN s.m_low AND s.m_high
    GROUP BY cr.r, cf.f, cm.m
    HAVING count(s.segment) <> 1
    ORDER BY 1, 2, 3;
END;
COMMENT ON FUNCTION lifecycle.rfm_segments_check() IS
    'The (R, F, M) cells that no segment rule or more than one covers; empty when the rules are usable';

-- The window function: scores each row within its window partition.
CREATE FUNCTION lifecycle.rfm_score(recency double precision, frequency double precision,
                                    monetary double precision)
RETURNS lifecycle.rfm
AS 'MODULE_PATHNAME', 'lifecycle_rfm_window'
LANGUAGE C WINDOW STABLE PARALLEL SAFE;

CREATE TYPE lifecycle.rfm_breakpoints AS (
    n bigint, recency double precision[], frequency double precision[], monetary double precision[]);
COMMENT ON TYPE lifecycle.rfm_breakpoints IS
    'A population captured for RFM scoring: per measure, the 4 values to beat for scores 2..5';

CREATE FUNCTION lifecycle._rfm_breakpoints_transfn(internal, double precision, double precision,
                                                   double precision)
RETURNS internal
AS 'MODULE_PATHNAME', 'lifecycle_rfm_breakpoints_transfn'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;

CREATE FUNCTION lifecycle._rfm_breakpoints_final(internal)
RETURNS lifecycle.rfm_breakpoints
AS 'MODULE_PATHNAME', 'lifecycle_rfm_breakpoints_final'
LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE lifecycle.rfm_breakpoints(recency double precision, frequency double precision,
                                           monetary double precision) (
    SFUNC = lifecycle._rfm_breakpoints_transfn,
    STYPE = internal,
    FINALFUNC = lifecycle._rfm_breakpoints_final,
    FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);

-- One customer scored against stored breakpoints.
CREATE FUNCTION lifecycle.rfm_score(recency double precision, frequency double precision,
                                    monetary double precision, breakpoints lifecycle.rfm_breakpoints)
RETURNS lifecycle.rfm
AS 'MODULE_PATHNAME', 'lifecycle_rfm_score_against'
LANGUAGE C STABLE PARALLEL SAFE;

------------------------------------------------------------------------------------
-- Churn
------------------------------------------------------------------------------------

-- Step 1, per customer (GROUP BY customer): integer flags, 1 base, 2 churned,
-- 4 reactivated, 8 new. The state is a bigint packing the customer's idle times and the
-- windows (src/core/churn.hpp).
CREATE FUNCTION lifecycle._churn_status_transfn(bigint, date, date, date, integer, integer)
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_churn_status_transfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION lifecycle._churn_status_policy_transfn(bigint, date, date, date, text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_churn_status_policy_transfn'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION lifecycle._churn_status_default_transfn(bigint, date, date, date)
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_churn_status_default_transfn'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION lifecycle._churn_status_combine(bigint, bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_churn_status_combine'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION lifecycle._churn_status_final(bigint)
RETURNS integer
AS 'MODULE_PATHNAME', 'lifecycle_churn_status_final'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE lifecycle.churn_status(order_date date, period_start date, period_end date,
                                        inactive_days integer, lapsed_days integer) (
    SFUNC = lifecycle._churn_status_transfn,
    STYPE = bigint,
    INITCOND = '0',
    COMBINEFUNC = lifecycle._churn_status_combine,
    FINALFUNC = lifecycle._churn_status_final,
    PARALLEL = SAFE
);

CREATE AGGREGATE lifecycle.churn_status(order_date date, period_start date, period_end date,
                                        policy text) (
    SFUNC = lifecycle._churn_status_policy_transfn,
    STYPE = bigint,
    INITCOND = '0',
    COMBINEFUNC = lifecycle._churn_status_combine,
    FINALFUNC = lifecycle._churn_status_final,
    PARALLEL = SAFE
);

CREATE AGGREGATE lifecycle.churn_status(order_date date, period_start date, period_end date) (
    SFUNC = lifecycle._churn_status_default_transfn,
    STYPE = bigint,
    INITCOND = '0',
    COMBINEFUNC = lifecycle._churn_status_combine,
    FINALFUNC = lifecycle._churn_status_final,
    PARALLEL = SAFE
);

-- Step 2, over customers: the flags added up.
CREATE FUNCTION lifecycle._churn_counts_transfn(bigint[], integer)
RETURNS bigint[]
AS 'MODULE_PATHNAME', 'lifecycle_churn_counts_transfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION lifecycle._churn_counts_combine(bigint[], bigint[])
RETURNS bigint[]
AS 'MODULE_PATHNAME', 'lifecycle_churn_counts_combine'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION lifecycle._churn_rate_final(bigint[])
RETURNS double precision
AS 'MODULE_PATHNAME', 'lifecycle_churn_rate_final'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE lifecycle.churn_counts AS (
    base bigint, churned bigint, retained bigint, reactivated bigint, new bigint,
    churn_rate double precision, retention double precision);

CREATE FUNCTION lifecycle._churn_counts_final(bigint[])
RETURNS lifecycle.churn_counts
AS 'MODULE_PATHNAME', 'lifecycle_churn_counts_final'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE lifecycle.churn_rate(status integer) (
    SFUNC = lifecycle._churn_counts_transfn,
    STYPE = bigint[],
    INITCOND = '{0,0,0,0}',
    COMBINEFUNC = lifecycle._churn_counts_combine,
    FINALFUNC = lifecycle._churn_rate_final,
    PARALLEL = SAFE
);

CREATE AGGREGATE lifecycle.churn_counts(status integer) (
    SFUNC = lifecycle._churn_counts_transfn,
    STYPE = bigint[],
    INITCOND = '{0,0,0,0}',
    COMBINEFUNC = lifecycle._churn_counts_combine,
    FINALFUNC = lifecycle._churn_counts_final,
    PARALLEL = SAFE
);
