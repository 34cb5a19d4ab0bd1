-- logistic_fit / logistic_score: the fit matches the closed form of a single binary
-- feature (the slope is the log odds ratio, the intercept the baseline's log odds) and
-- the score equations written out in SQL; parallel and serial fits are identical; bad
-- input is an ERROR naming the argument (22023); scores lie in (0, 1).
SET client_min_messages = warning;

-- One binary feature: 30 of 100 rows true at x = 0, 45 of 60 at x = 1.
CREATE TABLE two_groups AS
SELECT x, i <= CASE WHEN x = 0 THEN 30 ELSE 45 END AS y
FROM (SELECT 0 AS x, i FROM generate_series(1, 100) i
      UNION ALL SELECT 1, i FROM generate_series(1, 60) i) g;
WITH fit AS (SELECT lifecycle.logistic_fit(y, ARRAY[x::float8]) AS m FROM two_groups),
odds AS (SELECT ln(count(*) FILTER (WHERE y AND x = 0)::float8 / count(*) FILTER (WHERE NOT y AND x = 0)) AS base,
                ln(count(*) FILTER (WHERE y AND x = 1)::float8 / count(*) FILTER (WHERE NOT y AND x = 1)) AS treated,
                sum(CASE WHEN y THEN ln(CASE WHEN x = 0 THEN 0.3 ELSE 0.75 END)
                         ELSE ln(CASE WHEN x = 0 THEN 0.7 ELSE 0.25 END) END) AS log_likelihood
         FROM two_groups)
SELECT round((m).coefficients[1]::numeric, 6) AS intercept, round(base::numeric, 6) AS log_odds_x0,
       round((m).coefficients[2]::numeric, 6) AS slope, round((treated - base)::numeric, 6) AS log_odds_ratio,
       round((m).log_likelihood::numeric, 6) AS log_likelihood, round(log_likelihood::numeric, 6) AS closed_form,
       (m).rows, (m).converged,
       round(lifecycle.logistic_score(m, '{0}')::numeric, 6) AS p_x0,
       round(lifecycle.logistic_score(m, '{1}')::numeric, 6) AS p_x1
FROM fit, odds;

-- With a penalty the slope shrinks towards 0; rows with a NULL outcome or NULL features
-- are skipped; no rows left: NULL.
SELECT round((lifecycle.logistic_fit(y, ARRAY[x::float8], 0.05)).coefficients[2]::numeric, 6) AS penalized_slope
FROM two_groups;
SELECT (lifecycle.logistic_fit(y, f)).rows AS rows_without_nulls
FROM (SELECT y, ARRAY[x::float8] AS f FROM two_groups
      UNION ALL VALUES (NULL, '{1}'::float8[]), (true, NULL)) v(y, f);
SELECT lifecycle.logistic_fit(y, ARRAY[1.0]) IS NULL AS no_rows_null
FROM (VALUES (NULL::boolean)) v(y);
SELECT lifecycle.logistic_fit(true, ARRAY[x]) IS NULL AS empty_null FROM generate_series(1, 0) x;

-- Three features over 100,000 rows, outcomes from a fixed pseudo-random sequence with
-- P = 1 / (1 + exp(-(-1 + 0.8 x1 - 0.05 x2 + 0.5 x3))).
CREATE TABLE simulated AS
SELECT i, x1, x2, x3,
       ((i::bigint * 2654435761) % 1000003) / 1000003.0 < 1 / (1 + exp(-(-1 + 0.8 * x1 - 0.05 * x2 + 0.5 * x3))) AS y
FROM (SELECT i, ((i * 37) % 101) / 50.0 - 1 AS x1, ((i * 13) % 41)::float8 AS x2,
             (i % 3 = 0)::int::float8 AS x3
      FROM generate_series(1, 100000) i) g;
ANALYZE simulated;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE fit_serial AS
SELECT lifecycle.logistic_fit(y, ARRAY[x1, x2, x3]) AS m FROM simulated;
RESET max_parallel_workers_per_gather;
-- Near the truth, converged, and the score equations Σ (y - p)·x = 0 hold, p written out.
SELECT (m).rows, (m).converged, array_length((m).coefficients, 1) AS coefficients,
       abs((m).coefficients[1] + 1) < 0.1 AS intercept_near, abs((m).coefficients[2] - 0.8) < 0.05 AS x1_near,
       abs((m).coefficients[3] + 0.05) < 0.005 AS x2_near, abs((m).coefficients[4] - 0.5) < 0.05 AS x3_near
FROM fit_serial;
WITH p AS (
    SELECT s.*, 1 / (1 + exp(-((m).coefficients[1] + (m).coefficients[2] * x1 + (m).coefficients[3] * x2
                               + (m).coefficients[4] * x3))) AS p,
           lifecycle.logistic_score(m, ARRAY[x1, x2, x3]) AS score
    FROM simulated s, fit_serial)
SELECT abs(avg(y::int - p)) < 1e-6 AS intercept_eq, abs(avg((y::int - p) * x1)) < 1e-6 AS x1_eq,
       abs(avg((y::int - p) * x2)) < 1e-5 AS x2_eq, abs(avg((y::int - p) * x3)) < 1e-6 AS x3_eq,
       max(abs(score - p)) < 1e-12 AS score_is_formula, min(score) > 0 AND max(score) < 1 AS scores_in_0_1
FROM p;

-- Across parallel workers (partial states serialized and combined): the same bits.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT lifecycle.logistic_fit(y, ARRAY[x1, x2, x3]) FROM simulated;
CREATE TABLE fit_parallel AS
SELECT lifecycle.logistic_fit(y, ARRAY[x1, x2, x3]) AS m FROM simulated;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT (p.m).coefficients = (s.m).coefficients AS same_coefficients,
       (p.m).log_likelihood = (s.m).log_likelihood AS same_log_likelihood, (p.m).rows
FROM fit_parallel p, fit_serial s;

-- Perfect separation: finite with a penalty; without one, not converged (and finite).
SELECT (m).converged, (SELECT bool_and(c::text NOT IN ('NaN', 'Infinity', '-Infinity')) FROM unnest((m).coefficients) c) AS finite
FROM (SELECT lifecycle.logistic_fit(x >= 10, ARRAY[x::float8]) AS m FROM generate_series(0, 19) x) f;
SELECT (m).converged, (m).coefficients[2] > 0 AS positive_slope
FROM (SELECT lifecycle.logistic_fit(x >= 10, ARRAY[x::float8], 0.01) AS m FROM generate_series(0, 19) x) f;

-- Bad input.
SELECT expect_error($$SELECT lifecycle.logistic_fit(x > 1, CASE WHEN x = 1 THEN ARRAY[1.0, 2.0] ELSE ARRAY[x::float8] END) FROM generate_series(1, 3) x$$);
SELECT expect_error($$SELECT lifecycle.logistic_fit(x > 1, ARRAY['NaN'::float8]) FROM generate_series(1, 3) x$$);
SELECT expect_error($$SELECT lifecycle.logistic_fit(x > 1, ARRAY['Infinity'::float8]) FROM generate_series(1, 3) x$$);
SELECT expect_error($$SELECT lifecycle.logistic_fit(x > 1, ARRAY[x, NULL]::float8[]) FROM generate_series(1, 3) x$$);
SELECT expect_error($$SELECT lifecycle.logistic_fit(x > 1, ARRAY[[x, 1]]::float8[]) FROM generate_series(1, 3) x$$);
SELECT expect_error($$SELECT lifecycle.logistic_fit(true, ARRAY[x::float8]) FROM generate_series(1, 3) x$$);
SELECT expect_error($$SELECT lifecycle.logistic_fit(false, ARRAY[x::float8]) FROM generate_series(1, 3) x$$);
SELECT expect_error($$SELECT lifecycle.logistic_fit(x > 1, ARRAY[x::float8], -1) FROM generate_series(1, 3) x$$);
SELECT expect_error($$SELECT lifecycle.logistic_fit(x > 1, ARRAY[x::float8], 'NaN') FROM generate_series(1, 3) x$$);
SELECT expect_error($$SELECT lifecycle.logistic_fit(x > 1, ARRAY[x::float8], x) FROM generate_series(1, 3) x$$);
SELECT expect_error($$SELECT lifecycle.logistic_score(ROW('{1, 2}', 0, 1, 1, true), '{1, 2}')$$);
SELECT expect_error($$SELECT lifecycle.logistic_score(ROW(NULL, 0, 1, 1, true), '{1}')$$);
SELECT expect_error($$SELECT lifecycle.logistic_score(ROW('{1, NULL}', 0, 1, 1, true), '{1}')$$);
SELECT expect_error($$SELECT lifecycle.logistic_score(ROW('{1, 2}', 0, 1, 1, true), '{NaN}')$$);
SELECT lifecycle.logistic_score(NULL, '{1}') IS NULL AS null_model_null,
       lifecycle.logistic_score(ROW('{0.5}', 0, 1, 1, true), '{}') = 1 / (1 + exp(-0.5)) AS intercept_only;

DROP TABLE two_groups, simulated, fit_serial, fit_parallel;
