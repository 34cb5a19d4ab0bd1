-- Pareto/NBD in SQL: the fit on CDNOW reproduces the published figures (Fader & Hardie
-- 2005: r = 0.553, alpha = 10.58, s = 0.606, beta = 11.67, LL = -9594.98), splits across
-- parallel workers, the scores behave, bad input is an ERROR naming the argument, and
-- P(no purchase in the 39-week holdout) ranks the holdout's non-buyers (AUC in plain SQL).
-- Needs cdnow_orders (08_cdnow) and expect_error (01_install).
SET datestyle = 'ISO';
SET client_min_messages = warning;
CREATE TABLE pnbd_summary AS
SELECT * FROM lifecycle.model_summary('cdnow_orders', 'customer_id', 'order_date', 'amount',
                                      '1997-09-30', 'week');

CREATE TABLE pnbd_fit AS
SELECT lifecycle.pareto_nbd_fit(frequency, recency, t) AS m FROM pnbd_summary;
SELECT round((m).r::numeric, 3) AS r, round((m).alpha::numeric, 2) AS alpha,
       round((m).s::numeric, 3) AS s, round((m).beta::numeric, 2) AS beta,
       round((m).log_likelihood::numeric, 2) AS log_likelihood, (m).customers, (m).converged,
       abs((m).r - 0.553) < 0.02 AND abs((m).alpha - 10.58) < 0.02
           AND abs((m).s - 0.606) < 0.02 AND abs((m).beta - 11.67) < 0.02 AS within_002,
       (m).log_likelihood >= -9594.98 AS at_least_published
FROM pnbd_fit;

-- The per-customer log-likelihood summed at the published parameters, and spot values.
SELECT round(sum(lifecycle.pareto_nbd_log_likelihood(0.553, 10.58, 0.606, 11.67,
                                                     frequency, recency, t))::numeric, 1) AS ll_published,
       abs(sum(lifecycle.pareto_nbd_log_likelihood(0.553, 10.58, 0.606, 11.67,
                                                   frequency, recency, t)) + 9594.98) < 0.05 AS within_005
FROM pnbd_summary;
SELECT round(lifecycle.pareto_nbd_log_likelihood(0.553, 10.58, 0.606, 11.67, 0, 0, 38.86)::numeric, 6) AS ll_0,
       round(lifecycle.pareto_nbd_log_likelihood(0.553, 10.58, 0.606, 11.67, 2, 30.43, 38.86)::numeric, 6) AS ll_2,
       round(lifecycle.pareto_nbd_log_likelihood(0.553, 10.58, 0.606, 11.67, 4, 20, 20)::numeric, 6) AS ll_recency_t,
       -- alpha = beta: the hypergeometric argument is 0, and nearby values agree
       round(lifecycle.pareto_nbd_log_likelihood(0.553, 11, 0.606, 11, 2, 30.43, 38.86)::numeric, 6) AS ll_equal,
       round(lifecycle.pareto_nbd_log_likelihood(0.553, 11 + 1e-7, 0.606, 11, 2, 30.43, 38.86)::numeric, 6) AS ll_near,
       lifecycle.pareto_nbd_log_likelihood(0.553, 10.58, 0.606, 11.67, 5000, 38, 39) > -1e6 AS ll_5000_finite;
SELECT round(lifecycle.p_alive(m, 2, 30.43, 38.86)::numeric, 4) AS p_alive_recent,
       round(lifecycle.p_alive(m, 2, 5, 38.86)::numeric, 4) AS p_alive_long_ago,
       round(lifecycle.p_alive(m, 0, 0, 38.86)::numeric, 4) AS p_alive_one_time,
       lifecycle.p_alive(m, 3, 10, 10) AS bought_at_t,
       round(lifecycle.expected_purchases(m, 39, 2, 30.43, 38.86)::numeric, 4) AS expected_39,
       round(lifecycle.probability_no_purchase(m, 39, 2, 30.43, 38.86)::numeric, 4) AS no_purchase_39,
       round(lifecycle.probability_no_purchase(m, 39, 0, 0, 38.86)::numeric, 4) AS no_purchase_39_one_time,
       lifecycle.probability_no_purchase(m, 0, 2, 30.43, 38.86) AS no_purchase_now,
       lifecycle.p_alive(m, 5000, 38.99, 39) BETWEEN 0 AND 1
           AND lifecycle.expected_purchases(m, 39, 5000, 38.99, 39) > 0 AS frequent_finite
FROM pnbd_fit;

-- Bad or degenerate input: an ERROR naming the argument (22023), never a NaN.
SELECT expect_error($$SELECT lifecycle.pareto_nbd_fit(0, 0, t) FROM generate_series(1, 5) t$$);
SELECT expect_error($$SELECT lifecycle.pareto_nbd_fit(2, 3, 4)$$);
SELECT expect_error($$SELECT lifecycle.pareto_nbd_fit(1.5, 1, 4) FROM generate_series(1, 3)$$);
SELECT expect_error($$SELECT lifecycle.pareto_nbd_fit(1, 1, 4, -1) FROM generate_series(1, 3)$$);
SELECT expect_error($$SELECT lifecycle.p_alive(m, 3, 50, 40) FROM pnbd_fit$$);
SELECT expect_error($$SELECT lifecycle.p_alive(ROW(0.5, 1, 0, 1, NULL, NULL, NULL, NULL)::lifecycle.pareto_nbd_model, 1, 1, 2)$$);
SELECT expect_error($$SELECT lifecycle.expected_purchases(m, -1, 1, 1, 2) FROM pnbd_fit$$);
SELECT expect_error($$SELECT lifecycle.probability_no_purchase(m, 'NaN', 1, 1, 2) FROM pnbd_fit$$);
SELECT expect_error($$SELECT lifecycle.pareto_nbd_log_likelihood(0.5, 1, 1, -1, 0, 0, 1)$$);
SELECT lifecycle.p_alive(NULL::lifecycle.pareto_nbd_model, 1, 1, 2) IS NULL AS null_in_null_out,
       (SELECT lifecycle.pareto_nbd_fit(x, x, x) FROM generate_series(1, 0) x) IS NULL AS no_rows_null;

-- The fit split across parallel workers gives exactly the serial answer.
CREATE TABLE pnbd_summary_x20 AS SELECT s.* FROM pnbd_summary s, generate_series(1, 20);
ANALYZE pnbd_summary_x20;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT lifecycle.pareto_nbd_fit(frequency, recency, t) FROM pnbd_summary_x20;
CREATE TABLE pnbd_parallel AS
SELECT lifecycle.pareto_nbd_fit(frequency, recency, t) AS m FROM pnbd_summary_x20;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE pnbd_serial AS
SELECT lifecycle.pareto_nbd_fit(frequency, recency, t) AS m FROM pnbd_summary_x20;
RESET max_parallel_workers_per_gather;
SELECT (p.m).customers, (p.m).r = (s.m).r AND (p.m).alpha = (s.m).alpha AND (p.m).s = (s.m).s
           AND (p.m).beta = (s.m).beta AS parallel_same,
       round((p.m).r::numeric, 3) = round((f.m).r::numeric, 3) AS same_as_cdnow
FROM pnbd_parallel p, pnbd_serial s, pnbd_fit f;

-- How P(no purchase in the 39-week holdout, 1997-09-30 .. 1998-06-30) ranks the customers
-- who did not buy then: the AUC by Mann-Whitney with ties (as lifecycle.churn_auc), and
-- the same by counting (non-buyer, buyer) pairs.
CREATE TABLE pnbd_scored AS
SELECT lifecycle.probability_no_purchase(f.m, (date '1998-06-30' - date '1997-09-30') / 7.0,
                                         s.frequency, s.recency, s.t) AS score,
       NOT EXISTS (SELECT FROM cdnow_orders o WHERE o.customer_id = s.customer::int
                   AND o.order_date > '1997-09-30' AND o.order_date <= '1998-06-30') AS churned
FROM pnbd_summary s, pnbd_fit f;
WITH ranked AS (
    SELECT churned, rank() OVER (ORDER BY score) AS low, count(*) OVER (PARTITION BY score) AS ties
    FROM pnbd_scored
)
SELECT count(*) FILTER (WHERE churned) AS non_buyers, count(*) FILTER (WHERE NOT churned) AS buyers,
       round(((sum(low + (ties - 1) / 2.0) FILTER (WHERE churned)
               - count(*) FILTER (WHERE churned) * (count(*) FILTER (WHERE churned) + 1) / 2.0)
              / (count(*) FILTER (WHERE churned) * count(*) FILTER (WHERE NOT churned)))::numeric, 3) AS auc,
       (SELECT round(avg(CASE WHEN c.score > k.score THEN 1 WHEN c.score = k.score THEN 0.5 ELSE 0 END), 3)
        FROM pnbd_scored c, pnbd_scored k WHERE c.churned AND NOT k.churned) AS auc_by_pairs
FROM ranked;

DROP TABLE pnbd_summary, pnbd_fit, pnbd_summary_x20, pnbd_parallel, pnbd_serial, pnbd_scored;
