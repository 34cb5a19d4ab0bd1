-- lifecycle_stage: each of the brief's rules, at and just past each boundary, with the
-- default windows (30/30/60/90, rhythm 2.0 from 3 purchases).
SET datestyle = 'ISO';

-- Rules 2-5: d = as_of - last against 90/60/30, and the onboarding window.
SELECT d, lifecycle.lifecycle_stage(date '2024-01-01', date '2024-06-01', 2, date '2024-06-01' + d) AS stage
FROM unnest(ARRAY[0, 30, 31, 60, 61, 90, 91, 5000]) AS d ORDER BY d;

-- Rule 5: first purchase within 30 days of as_of is new (unless already at risk by d).
SELECT as_of - date '2024-03-01' AS since_first,
       lifecycle.lifecycle_stage(date '2024-03-01', date '2024-03-01', 1, as_of) AS stage
FROM unnest(ARRAY[date '2024-03-01', date '2024-03-31', date '2024-04-01']) AS as_of ORDER BY 1;

-- Rule 6, the rhythm: 3 purchases over 20 days (every 10 days), factor 2: at risk when
-- d > 20. With 2 purchases the rhythm is not trusted; factor 0 turns it off.
SELECT d, lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-21', 3, date '2024-01-21' + d) AS three,
          lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-21', 2, date '2024-01-21' + d) AS two,
          lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-21', 3, date '2024-01-21' + d,
                                    30, 30, 60, 90, 0, 3) AS factor_zero
FROM unnest(ARRAY[10, 20, 21, 30]) AS d ORDER BY d;

-- Rhythm against onboarding: rule 5 comes first.
SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-03', 3, date '2024-01-20');

-- Rule 1: no purchase yet.
SELECT lifecycle.lifecycle_stage(NULL::date, NULL::date, 0, date '2024-01-01') AS no_dates,
       lifecycle.lifecycle_stage(NULL::date, NULL::date, NULL, NULL::date) AS all_null,
       lifecycle.lifecycle_stage(NULL::date, NULL::date, 0, date '2024-01-01', 1, 2, 3, 4, 1, 2) AS windows_form;

-- NULLs: with dates, a NULL count, as_of, window or policy gives NULL.
SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-02', NULL, date '2024-02-01') IS NULL AS null_n,
       lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-02', 2, NULL::date) IS NULL AS null_as_of,
       lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-02', 2, date '2024-02-01', NULL) IS NULL AS null_policy,
       lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-02', 2, date '2024-02-01',
                                 30, NULL, 60, 90, 2, 3) IS NULL AS null_window;

-- Over a grid of histories and every preset: the explicit-windows form, the policy form
-- and the brief's rules written out as a plain SQL CASE all agree.
CREATE FUNCTION plain_sql_stage(first date, last date, n bigint, as_of date, p lifecycle.policies)
RETURNS text LANGUAGE sql IMMUTABLE RETURN
    CASE
        WHEN first IS NULL THEN 'prospect'
        WHEN as_of - last > p.lapsed_days THEN 'lapsed'
        WHEN as_of - last > p.inactive_days THEN 'inactive'
        WHEN as_of - last > p.at_risk_days THEN 'at_risk'
        WHEN as_of - first <= p.onboarding_days THEN 'new'
        WHEN n >= p.rhythm_min_purchases AND p.rhythm_factor > 0
             AND as_of - last > p.rhythm_factor * (last - first) / (n - 1) THEN 'at_risk'
        ELSE 'active'
    END;

SELECT p.name, count(*) AS cases,
       count(*) FILTER (WHERE lifecycle.lifecycle_stage(c.first, c.last, c.n, c.as_of, p.name)::text
                              = plain_sql_stage(c.first, c.last, c.n, c.as_of, p)) AS policy_form_agrees,
       count(*) FILTER (WHERE lifecycle.lifecycle_stage(c.first, c.last, c.n, c.as_of, p.onboarding_days,
                              p.at_risk_days, p.inactive_days, p.lapsed_days, p.rhythm_factor,
                              p.rhythm_min_purchases)::text
                              = plain_sql_stage(c.first, c.last, c.n, c.as_of, p)) AS windows_form_agrees,
       count(DISTINCT plain_sql_stage(c.first, c.last, c.n, c.as_of, p)) AS stages_seen
FROM lifecycle.policies p
CROSS JOIN LATERAL (
    SELECT date '2020-01-01' + a AS first, date '2020-01-01' + a + b AS last, n,
           date '2020-01-01' + a + b + d AS as_of
    FROM generate_series(0, 400, 37) a, generate_series(0, 700, 53) b,
         generate_series(1, 7, 3) n, generate_series(0, 3000, 41) d
    WHERE n > 1 OR b = 0
) c
GROUP BY p.name ORDER BY p.name;

-- The presets differ where they should: 45 days idle, 10 purchases over 2 years.
SELECT name, lifecycle.lifecycle_stage(date '2022-01-01', date '2024-01-01', 10, date '2024-02-15', name)
FROM lifecycle.policies ORDER BY name;

-- as_of defaults to today, policy to 'default'.
SELECT lifecycle.lifecycle_stage(current_date - 400, current_date - 100, 4) AS defaulted,
       lifecycle.lifecycle_stage(current_date - 400, current_date - 100, 4, current_date, 'default') AS explicit;

-- With lifecycle.as_of set, the forms without as_of judge by the engine's date, as the
-- stage engine does (lifecycle.engine_date()); checked against the explicit forms and
-- the day by hand: last purchase 2024-06-01, 29 days before 2024-06-30 (active), far
-- more than 90 days before today (lapsed).
SET lifecycle.as_of = '2024-06-30';
SELECT lifecycle.engine_date() AS engine_date,
       lifecycle.lifecycle_stage(date '2024-01-01', date '2024-06-01', 3) AS defaulted,
       lifecycle.lifecycle_stage(date '2024-01-01', date '2024-06-01', 3, date '2024-06-30') AS explicit,
       lifecycle.lifecycle_stage(date '2024-01-01', date '2024-06-01', 3, current_date) AS today,
       lifecycle.lifecycle_stage(timestamptz '2024-01-01 10:00+00', timestamptz '2024-06-01 10:00+00', 3) AS defaulted_tstz,
       lifecycle.next_stage_change(date '2024-01-01', date '2024-06-01', 3) AS next_change,
       lifecycle.next_stage_change(date '2024-01-01', date '2024-06-01', 3, date '2024-06-30') AS next_change_explicit;
-- In Tokyo the engine's date is the same day (a date has no zone).
SET TimeZone = 'Asia/Tokyo';
SELECT lifecycle.lifecycle_stage(timestamptz '2024-01-01 10:00+00', timestamptz '2024-06-01 10:00+00', 3) AS tokyo;
RESET TimeZone;
-- The boundary: the at_risk window (30 days) ends on 2024-07-01, the engine's date moved.
SET lifecycle.as_of = '2024-07-02';
SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-06-01', 3) AS a_day_later;
RESET lifecycle.as_of;
SELECT lifecycle.engine_date() = current_date AS engine_date_is_today;
-- No function of the extension defaults to CURRENT_DATE or now() any more: every
-- defaulted day is the engine's.
SELECT p.oid::regprocedure AS function, pg_get_expr(p.proargdefaults, 0) AS defaults
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'lifecycle'
WHERE pg_get_expr(p.proargdefaults, 0) ~* 'current_date|now\(\)|engine_date'
ORDER BY 1::text;

-- timestamptz: judged by the date in the session's TimeZone (as_of is May 31 in both;
-- the last purchase is March 1 in UTC, 91 days before, and March 2 in Tokyo, 90 days).
SET TimeZone = 'UTC';
SELECT lifecycle.lifecycle_stage(timestamptz '2024-01-01 23:30+00', timestamptz '2024-03-01 23:30+00', 3,
                                 timestamptz '2024-05-31 12:00+00') AS utc;
SET TimeZone = 'Asia/Tokyo';
SELECT lifecycle.lifecycle_stage(timestamptz '2024-01-01 23:30+00', timestamptz '2024-03-01 23:30+00', 3,
                                 timestamptz '2024-05-31 12:00+00') AS tokyo;
RESET TimeZone;

-- The IMMUTABLE form can back an expression index.
CREATE TABLE customer_summary (id int PRIMARY KEY, first date, last date, n bigint);
INSERT INTO customer_summary
SELECT i, date '2023-01-01' + (i % 300), date '2023-01-01' + (i % 300) + (i % 97), 1 + i % 5
FROM generate_series(1, 2000) i;
CREATE INDEX customer_summary_stage ON customer_summary
    (lifecycle.lifecycle_stage(first, last, n, date '2024-02-01', 30, 30, 60, 90, 2.0, 3));
ANALYZE customer_summary;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM customer_summary
WHERE lifecycle.lifecycle_stage(first, last, n, date '2024-02-01', 30, 30, 60, 90, 2.0, 3) = 'lapsed';
RESET enable_seqscan;
SELECT lifecycle.lifecycle_stage(first, last, n, date '2024-02-01', 30, 30, 60, 90, 2.0, 3) AS stage, count(*)
FROM customer_summary GROUP BY 1 ORDER BY 1;
DROP TABLE customer_summary;
