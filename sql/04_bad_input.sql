-- Impossible input: a clean ERROR with SQLSTATE 22023 (or 22008 for dates) whose
-- message names the argument. Never a crash, never a silent answer.
SELECT expect_error(sql) FROM (VALUES
    -- a purchase after as_of
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-02-01', 2, date '2024-01-15')$$),
    -- last < first
    ($$SELECT lifecycle.lifecycle_stage(date '2024-02-01', date '2024-01-01', 2, date '2024-03-01')$$),
    -- count < 1 with dates
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 0, date '2024-03-01')$$),
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', -5, date '2024-03-01')$$),
    -- only one of the dates
    ($$SELECT lifecycle.lifecycle_stage(NULL::date, date '2024-01-01', 1, date '2024-03-01')$$),
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', NULL::date, 1, date '2024-03-01')$$),
    -- negative windows
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '2024-03-01', -1, 30, 60, 90, 2, 3)$$),
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '2024-03-01', 30, -30, 60, 90, 2, 3)$$),
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '2024-03-01', 30, 30, 60, -90, 2, 3)$$),
    -- windows out of order
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '2024-03-01', 30, 70, 60, 90, 2, 3)$$),
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '2024-03-01', 30, 30, 95, 90, 2, 3)$$),
    -- rhythm
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '2024-03-01', 30, 30, 60, 90, -1, 3)$$),
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '2024-03-01', 30, 30, 60, 90, 'NaN', 3)$$),
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '2024-03-01', 30, 30, 60, 90, 'Infinity', 3)$$),
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '2024-03-01', 30, 30, 60, 90, 2, 1)$$),
    -- unknown policy
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '2024-03-01', 'no such policy')$$),
    -- infinite and out-of-range dates (22008)
    ($$SELECT lifecycle.lifecycle_stage(date '-infinity', date '2024-01-01', 1, date '2024-03-01')$$),
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date 'infinity', 1, date '2024-03-01')$$),
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date 'infinity')$$),
    ($$SELECT lifecycle.lifecycle_stage(timestamptz '2024-01-01', timestamptz '2024-01-01', 1, timestamptz 'infinity')$$),
    ($$SELECT lifecycle.lifecycle_stage(date '1200-01-01', date '2024-01-01', 1, date '2024-03-01')$$),
    ($$SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '10000-01-01')$$)
) AS cases(sql);

-- RFM: NaN or infinite money, negative recency or frequency.
SELECT expect_error(sql) FROM (VALUES
    ($$SELECT lifecycle.rfm_score(r, f, m) OVER () FROM (VALUES (1.0, 1.0, 'NaN'::float8)) v(r, f, m)$$),
    ($$SELECT lifecycle.rfm_score(r, f, m) OVER () FROM (VALUES (1.0, 1.0, '-Infinity'::float8)) v(r, f, m)$$),
    ($$SELECT lifecycle.rfm_score(r, f, m) OVER () FROM (VALUES (-1.0, 1.0, 5.0)) v(r, f, m)$$),
    ($$SELECT lifecycle.rfm_score(r, f, m) OVER () FROM (VALUES (1.0, -2.0, 5.0)) v(r, f, m)$$),
    ($$SELECT lifecycle.rfm_breakpoints(r, f, m) FROM (VALUES (1.0, 1.0, 'Infinity'::float8)) v(r, f, m)$$),
    ($$SELECT lifecycle.rfm_score(1, 1, 'NaN', (10, '{1,2,3,4}', '{1,2,3,4}', '{1,2,3,4}')::lifecycle.rfm_breakpoints)$$),
    ($$SELECT lifecycle.rfm_score(1, 1, 1, (10, '{1,2,3}', '{1,2,3,4}', '{1,2,3,4}')::lifecycle.rfm_breakpoints)$$),
    ($$SELECT lifecycle.rfm_score(1, 1, 1, (10, '{1,2,3,NaN}', '{1,2,3,4}', '{1,2,3,4}')::lifecycle.rfm_breakpoints)$$)
) AS cases(sql);

-- Churn: an empty or reversed period, bad windows, infinite order dates, unknown policy,
-- and states that lifecycle did not make.
SELECT expect_error(sql) FROM (VALUES
    ($$SELECT lifecycle.churn_status(d, date '2024-02-01', date '2024-02-01', 60, 90) FROM (VALUES (date '2024-01-01')) v(d)$$),
    ($$SELECT lifecycle.churn_status(d, date '2024-02-01', date '2024-01-01', 60, 90) FROM (VALUES (date '2024-01-01')) v(d)$$),
    ($$SELECT lifecycle.churn_status(d, date '2024-01-01', date '2024-02-01', -1, 90) FROM (VALUES (date '2024-01-01')) v(d)$$),
    ($$SELECT lifecycle.churn_status(d, date '2024-01-01', date '2024-02-01', 95, 90) FROM (VALUES (date '2024-01-01')) v(d)$$),
    ($$SELECT lifecycle.churn_status(d, date '2024-01-01', date '2024-02-01', 60, 90) FROM (VALUES (date 'infinity')) v(d)$$),
    ($$SELECT lifecycle.churn_status(d, date '-infinity', date '2024-02-01', 60, 90) FROM (VALUES (date '2024-01-01')) v(d)$$),
    ($$SELECT lifecycle.churn_status(d, date '2024-01-01', date '2024-02-01', 'nope') FROM (VALUES (date '2024-01-01')) v(d)$$),
    ($$SELECT lifecycle.churn_rate(s) FROM (VALUES (2), (1)) v(s)$$),
    ($$SELECT lifecycle.churn_counts(s) FROM (VALUES (16)) v(s)$$),
    ($$SELECT lifecycle.churn_status(d, date '2024-01-01', date '2024-02-01', 60, 40000) FROM (VALUES (date '2024-01-01')) v(d)$$),
    ($$SELECT lifecycle._churn_status_combine(lifecycle._churn_status_transfn(0, date '2024-01-01', date '2024-01-01', date '2024-02-01', 60, 90),
                                             lifecycle._churn_status_transfn(0, date '2024-01-01', date '2024-01-01', date '2024-02-01', 30, 90))$$),
    ($$SELECT lifecycle._churn_counts_combine('{1,2,3,4}', '{}')$$),
    ($$SELECT lifecycle._churn_rate_final('{1,2,3}')$$)
) AS cases(sql);

-- Step 1's state is a bigint: any value decodes to in-range fields, so a forged one
-- gives some answer, never a crash.
SELECT s, lifecycle._churn_status_final(s) IS NOT NULL AS answered
FROM (VALUES (-1::bigint), (9223372036854775807), (-9223372036854775808), (1)) v(s);

-- NULL arguments of the churn aggregates skip the row (like every strict aggregate).
SELECT lifecycle.churn_status(d, date '2024-01-01', date '2024-02-01', 60, 90) AS all_rows_null
FROM (VALUES (NULL::date), (NULL)) v(d);

-- The extension's result types altered by hand: an ERROR, not a write past their end.
BEGIN;
ALTER TYPE lifecycle.churn_counts ALTER ATTRIBUTE base TYPE text;
ALTER TYPE lifecycle.rfm ADD ATTRIBUTE extra integer;
ALTER TYPE lifecycle.rfm_breakpoints DROP ATTRIBUTE monetary;
SELECT expect_error(sql) FROM (VALUES
    ($$SELECT lifecycle.churn_counts(1)$$),
    ($$SELECT lifecycle.rfm_score(1, 2, 3) OVER () FROM generate_series(1, 3)$$),
    ($$SELECT lifecycle.rfm_breakpoints(g, g, g) FROM generate_series(1, 10) g$$)
) AS cases(sql);
ROLLBACK;
