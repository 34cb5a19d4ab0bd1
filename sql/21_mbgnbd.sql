-- MBG/NBD (Batislam, Denizel & Filiztekin 2007) in SQL: the fit on the CDNOW summary
-- reproduces the published figures, splits across parallel workers, the closed forms are
-- checked against plain SQL written out here, bad input is an ERROR naming the argument,
-- and P(no purchase in the 39-week holdout) of MBG/NBD and BG/NBD ranks the holdout's
-- non-buyers (AUC computed in plain SQL).
SET datestyle = 'ISO';
SET client_min_messages = warning;
CREATE TABLE cdnow_summary AS
SELECT * FROM lifecycle.model_summary('cdnow_orders', 'customer_id', 'order_date', 'amount',
                                      '1997-09-30', 'week');

-- Published: r = 0.525, alpha = 6.183, a = 0.891, b = 1.614; LL about -9582.13.
CREATE TABLE mbg_fit AS
SELECT lifecycle.mbgnbd_fit(frequency, recency, t) AS mbgnbd,
       lifecycle.bgnbd_fit(frequency, recency, t) AS bgnbd
FROM cdnow_summary;
SELECT round((mbgnbd).r::numeric, 3) AS r, round((mbgnbd).alpha::numeric, 3) AS alpha,
       round((mbgnbd).a::numeric, 3) AS a, round((mbgnbd).b::numeric, 3) AS b,
       round((mbgnbd).log_likelihood::numeric, 1) AS log_likelihood, (mbgnbd).customers,
       (mbgnbd).converged
FROM mbg_fit;
-- The log-likelihood at the published parameters, summed per customer, and the fit's
-- maximum is not below it.
SELECT round(sum(lifecycle.mbgnbd_log_likelihood(0.525, 6.183, 0.891, 1.614, frequency, recency, t))::numeric, 1)
           AS ll_published,
       (SELECT (mbgnbd).log_likelihood FROM mbg_fit)
           >= sum(lifecycle.mbgnbd_log_likelihood(0.525, 6.183, 0.891, 1.614, frequency, recency, t))
           AS fit_at_least_as_good
FROM cdnow_summary;

-- The closed forms at the published parameters against plain SQL: the likelihood
-- L = B(a,b+x+1)/B(a,b) G(r+x)/G(r) alpha^r [(alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x)]
-- (for a whole x, G(r+x)/G(r) = prod_{k<x} (r+k) and B(a,b+x+1)/B(a,b) = prod_{k<=x} (b+k)/(a+b+k)),
-- P(alive) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)), and P(no purchase in h)
-- as the joint probability (alive term at alpha+T+h) over L.
CREATE TABLE spot (x float8, t_x float8, t float8);
INSERT INTO spot VALUES (0, 0, 38.86), (0, 0, 1), (2, 30.43, 38.86), (2, 5, 38.86), (7, 35.5, 38);
CREATE TABLE spot_check AS
SELECT x, t_x, t,
       lifecycle.mbgnbd_log_likelihood(0.525, 6.183, 0.891, 1.614, x, t_x, t) AS ll,
       (SELECT coalesce(sum(ln(0.525 + k)), 0) FROM generate_series(0, x::int - 1) k)
           + (SELECT sum(ln((1.614 + k) / (0.891 + 1.614 + k))) FROM generate_series(0, x::int) k)
           + 0.525 * ln(6.183)
           + ln(power(6.183 + t, -(0.525 + x)) + 0.891 / (1.614 + x) * power(6.183 + t_x, -(0.525 + x)))
           AS ll_sql,
       lifecycle.p_alive(ROW(0.525, 6.183, 0.891, 1.614, NULL, NULL, NULL, NULL)::lifecycle.mbgnbd_model,
                         x, t_x, t) AS p_alive,
       1 / (1 + 0.891 / (1.614 + x) * power((6.183 + t) / (6.183 + t_x), 0.525 + x)) AS p_alive_sql,
       lifecycle.probability_no_purchase(ROW(0.525, 6.183, 0.891, 1.614, NULL, NULL, NULL, NULL)::lifecycle.mbgnbd_model,
                                         39, x, t_x, t) AS none,
       (power(6.183 + t + 39, -(0.525 + x)) + 0.891 / (1.614 + x) * power(6.183 + t_x, -(0.525 + x)))
       / (power(6.183 + t, -(0.525 + x)) + 0.891 / (1.614 + x) * power(6.183 + t_x, -(0.525 + x))) AS none_sql,
       lifecycle.probability_no_purchase(ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL, NULL)::lifecycle.bgnbd_model,
                                         39, x, t_x, t) AS bg_none,
       (power(4.414 + t + 39, -(0.243 + x))
        + CASE WHEN x > 0 THEN 0.793 / (2.426 + x - 1) * power(4.414 + t_x, -(0.243 + x)) ELSE 0 END)
       / (power(4.414 + t, -(0.243 + x))
          + CASE WHEN x > 0 THEN 0.793 / (2.426 + x - 1) * power(4.414 + t_x, -(0.243 + x)) ELSE 0 END)
           AS bg_none_sql,
       lifecycle.expected_purchases(ROW(0.525, 6.183, 0.891, 1.614, NULL, NULL, NULL, NULL)::lifecycle.mbgnbd_model,
                                    39, x, t_x, t) AS expected
FROM spot;
SELECT x, t_x, t, round(ll::numeric, 6) AS ll, abs(ll - ll_sql) < 1e-9 AS ll_same,
       round(p_alive::numeric, 4) AS p_alive, abs(p_alive - p_alive_sql) < 1e-12 AS p_alive_same,
       round(none::numeric, 4) AS p_none_39, abs(none - none_sql) < 1e-12 AS none_same,
       round(bg_none::numeric, 4) AS bg_p_none_39, abs(bg_none - bg_none_sql) < 1e-12 AS bg_none_same,
       round(expected::numeric, 3) AS expected_39
FROM spot_check ORDER BY x, t_x, t;
-- One-time buyers are not certainly alive under MBG/NBD (they are under BG/NBD); a very
-- frequent buyer stays finite.
SELECT lifecycle.p_alive(mbgnbd, 0, 0, 38) < 1 AS one_timer_maybe_gone,
       lifecycle.p_alive(bgnbd, 0, 0, 38) = 1 AS bgnbd_one_timer_alive,
       lifecycle.p_alive(mbgnbd, 5000, 38, 40) BETWEEN 0 AND 1 AS frequent_finite,
       lifecycle.probability_no_purchase(mbgnbd, 39, 5000, 38, 40) BETWEEN 0 AND 1 AS frequent_none_finite,
       lifecycle.probability_no_purchase(mbgnbd, 0, 2, 30.43, 38.86) = 1 AS zero_horizon_sure
FROM mbg_fit;

-- Bad or degenerate input: an ERROR naming the argument (22023), never a NaN.
SELECT expect_error($$SELECT lifecycle.mbgnbd_fit(0, 0, t) FROM generate_series(1, 5) t$$);
SELECT expect_error($$SELECT lifecycle.mbgnbd_fit(2, 3, 4)$$);
SELECT expect_error($$SELECT lifecycle.mbgnbd_fit(x, 5, 4) FROM (VALUES (1), (2)) v(x)$$);
SELECT expect_error($$SELECT lifecycle.mbgnbd_fit(1, 1, 4, -1)$$);
SELECT expect_error($$SELECT lifecycle.p_alive(mbgnbd, 3, 50, 40) FROM mbg_fit$$);
SELECT expect_error($$SELECT lifecycle.p_alive(ROW(0.5, 6, 0, 1.6, NULL, NULL, NULL, NULL)::lifecycle.mbgnbd_model, 1, 1, 2)$$);
SELECT expect_error($$SELECT lifecycle.expected_purchases(mbgnbd, -1, 1, 1, 2) FROM mbg_fit$$);
SELECT expect_error($$SELECT lifecycle.probability_no_purchase(mbgnbd, -1, 1, 1, 2) FROM mbg_fit$$);
SELECT expect_error($$SELECT lifecycle.probability_no_purchase(bgnbd, 'NaN', 1, 1, 2) FROM mbg_fit$$);
SELECT expect_error($$SELECT lifecycle.probability_no_purchase(bgnbd, 39, 1.5, 1, 2) FROM mbg_fit$$);
SELECT expect_error($$SELECT lifecycle.mbgnbd_log_likelihood(0.5, -6, 0.9, 1.6, 1, 1, 2)$$);
SELECT lifecycle.probability_no_purchase(NULL::lifecycle.mbgnbd_model, 39, 1, 1, 2) IS NULL AS null_in_null_out,
       (SELECT lifecycle.mbgnbd_fit(x, x, x) FROM generate_series(1, 0) x) IS NULL AS no_rows_null;

-- The fit split across parallel workers gives exactly the serial answer.
CREATE TABLE cdnow_summary_x40 AS SELECT s.* FROM cdnow_summary s, generate_series(1, 40);
ANALYZE cdnow_summary_x40;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT lifecycle.mbgnbd_fit(frequency, recency, t) FROM cdnow_summary_x40;
CREATE TABLE fit_parallel AS
SELECT lifecycle.mbgnbd_fit(frequency, recency, t) AS m FROM cdnow_summary_x40;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE fit_serial AS
SELECT lifecycle.mbgnbd_fit(frequency, recency, t) AS m FROM cdnow_summary_x40;
RESET max_parallel_workers_per_gather;
SELECT (p.m).customers, (p.m).r = (s.m).r AND (p.m).alpha = (s.m).alpha AND (p.m).a = (s.m).a
           AND (p.m).b = (s.m).b AS same,
       round((p.m).r::numeric, 3) = round((f.mbgnbd).r::numeric, 3) AS same_as_cdnow
FROM fit_parallel p, fit_serial s, mbg_fit f;

-- How P(no purchase in the 39-week holdout, 1997-09-30 .. 1998-06-30) ranks the
-- customers who did not buy in it: the area under the ROC curve by Mann-Whitney ranks,
-- ties counted half, as lifecycle.churn_auc does.
CREATE TABLE holdout AS
SELECT s.customer,
       lifecycle.probability_no_purchase(f.mbgnbd, 39, s.frequency, s.recency, s.t) AS mbg_none,
       lifecycle.probability_no_purchase(f.bgnbd, 39, s.frequency, s.recency, s.t) AS bg_none,
       NOT EXISTS (SELECT FROM cdnow_orders o WHERE o.customer_id = s.customer::int
                   AND o.order_date > '1997-09-30' AND o.order_date <= '1998-06-30') AS churned
FROM cdnow_summary s, mbg_fit f;
SELECT count(*) AS customers, count(*) FILTER (WHERE churned) AS no_holdout_purchase,
       round(avg(mbg_none)::numeric, 3) AS mbg_mean_p_none,
       round(avg(bg_none)::numeric, 3) AS bg_mean_p_none,
       round(avg(churned::int)::numeric, 3) AS actual_share
FROM holdout;
WITH scores AS (
    SELECT 'MBG/NBD' AS model, mbg_none AS score, churned FROM holdout
    UNION ALL
    SELECT 'BG/NBD', bg_none, churned FROM holdout
), ranked AS (
    SELECT model, churned, rank() OVER (PARTITION BY model ORDER BY score) AS low,
           count(*) OVER (PARTITION BY model, score) AS ties
    FROM scores
)
SELECT model,
       round(((sum(low + (ties - 1) / 2.0) FILTER (WHERE churned)
               - count(*) FILTER (WHERE churned) * (count(*) FILTER (WHERE churned) + 1) / 2.0)
              / (count(*) FILTER (WHERE churned) * count(*) FILTER (WHERE NOT churned)))::numeric, 3) AS auc
FROM ranked GROUP BY model ORDER BY model DESC;
-- The same by counting (non-buyer, buyer) pairs ordered right.
SELECT round(avg(CASE WHEN c.mbg_none > k.mbg_none THEN 1 WHEN c.mbg_none = k.mbg_none THEN 0.5 ELSE 0 END), 3)
           AS mbg_auc_by_pairs,
       round(avg(CASE WHEN c.bg_none > k.bg_none THEN 1 WHEN c.bg_none = k.bg_none THEN 0.5 ELSE 0 END), 3)
           AS bg_auc_by_pairs
FROM holdout c, holdout k WHERE c.churned AND NOT k.churned;

DROP TABLE cdnow_summary, mbg_fit, spot, spot_check, cdnow_summary_x40, fit_parallel, fit_serial, holdout;
