-- The uplift view against a hand computation in plain SQL from the orders themselves,
-- on a seeded random population: 3000 customers with two purchases in January 2026
-- turn inactive 61 days after the second; a share of them buy again afterwards, more
-- often when contacted than when held out (30 %), some of them after the window.
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SELECT setseed(0.4242);
CREATE TABLE up_orders (customer text NOT NULL, ordered date NOT NULL, amount numeric NOT NULL);
CREATE TEMP TABLE up_people AS
SELECT 'u' || i AS customer, first, first + (1 + floor(random() * 20))::int AS second
FROM generate_series(1, 3000) i,
     LATERAL (SELECT '2026-01-01'::date + floor(random() * 31)::int AS first) f;
INSERT INTO up_orders
SELECT customer, first, 30 FROM up_people UNION ALL SELECT customer, second, 30 FROM up_people;
-- The playbook: two e-mails a week apart, then 14 days of attribution: a purchase up
-- to 21 days after entering inactive counts. Purchases on days 1 to 40 after it: about
-- half inside the window. Contacted customers buy with probability 0.35, held out 0.25.
INSERT INTO lifecycle.playbooks (name, trigger, to_stages, holdout_share, attribution_days)
VALUES ('up', 'stage', '{inactive}', 0.3, 14);
INSERT INTO lifecycle.playbook_steps (playbook, step, delay, channel, message_key) VALUES
    ('up', 1, '0 days', 'email', 'up_1'), ('up', 2, '7 days', 'email', 'up_2');
INSERT INTO up_orders
SELECT customer, second + 61 + (1 + floor(random() * 40))::int, round((10 + random() * 90)::numeric, 2)
FROM up_people
WHERE random() < CASE WHEN lifecycle._held_out('up', customer, 0.3) THEN 0.25 ELSE 0.35 END;
SELECT set_config('lifecycle.as_of', '2026-02-01', false) IS NOT NULL AS as_of_set;
SELECT lifecycle.track('up_orders', 'customer', 'ordered', 'amount');
SELECT count(*) FROM (SELECT lifecycle.opt_in('up_orders', customer, 'email') FROM up_people) x;
-- Day by day until every window has closed (the last inactive day is 2026-04-22).
DO $$
BEGIN
    FOR d IN 0 .. '2026-05-20'::date - '2026-02-02'::date LOOP
        PERFORM set_config('lifecycle.as_of', ('2026-02-02'::date + d)::text, false);
        PERFORM lifecycle.refresh();
    END LOOP;
END
$$;
-- Everyone was enrolled (those who bought and drifted off again, twice); the holdout is
-- the documented hash, about 30 %.
SELECT count(DISTINCT customer) AS enrolled, count(*) FILTER (WHERE holdout) AS held_out,
       bool_and(holdout = (('x' || left(md5('up/' || customer), 13))::bit(52)::bigint
                           / 4503599627370496.0 < 0.3)) AS holdout_is_the_hash
FROM lifecycle.enrollments WHERE playbook = 'up';
-- Held-out customers got no action; everyone else got both steps or stopped by buying.
SELECT count(*) AS actions_to_held_out FROM lifecycle.actions a
JOIN lifecycle.enrollments e ON e.id = a.enrollment_id WHERE e.holdout;

-- By hand: per customer, the day it entered inactive (second purchase + 61), whether it
-- bought within 21 days after, and what it spent then; per month of entry, the shares,
-- their difference with the normal-approximation 95 % interval, revenue per customer.
CREATE TEMP TABLE up_hand AS
WITH per_customer AS (
    SELECT p.customer, p.second + 61 AS entered,
           (('x' || left(md5('up/' || p.customer), 13))::bit(52)::bigint
            / 4503599627370496.0 < 0.3) AS holdout,
           coalesce(sum(o.amount) FILTER (WHERE o.ordered > p.second
                                            AND o.ordered <= p.second + 61 + 21), 0) AS revenue
    FROM up_people p JOIN up_orders o USING (customer)
    GROUP BY p.customer, p.second
), per_month AS (
    SELECT date_trunc('month', entered)::date AS month,
           count(*) FILTER (WHERE NOT holdout) AS n1,
           count(*) FILTER (WHERE NOT holdout AND revenue > 0) AS x1,
           count(*) FILTER (WHERE holdout) AS n0,
           count(*) FILTER (WHERE holdout AND revenue > 0) AS x0,
           avg(revenue) FILTER (WHERE NOT holdout) AS r1,
           avg(revenue) FILTER (WHERE holdout) AS r0
    FROM per_customer GROUP BY 1
)
SELECT month, n1, x1, n0, x0, x1::float8 / n1 AS p1, x0::float8 / n0 AS p0,
       x1::float8 / n1 - x0::float8 / n0 AS uplift,
       sqrt((x1::float8 / n1) * (1 - x1::float8 / n1) / n1
            + (x0::float8 / n0) * (1 - x0::float8 / n0) / n0) AS se,
       r1, r0
FROM per_month;
SELECT month, n1 AS treated, x1 AS reactivated, n0 AS held_out, x0 AS held_out_reactivated,
       round(uplift::numeric, 4) AS uplift, round((uplift - 1.96 * se)::numeric, 4) AS low,
       round((uplift + 1.96 * se)::numeric, 4) AS high
FROM up_hand ORDER BY month;
-- The view, column by column against the hand computation: no month differs.
SELECT count(*) AS months_that_differ
FROM up_hand h FULL JOIN (SELECT * FROM lifecycle.playbook_uplift WHERE playbook = 'up') v
  ON v.month = h.month
WHERE v.month IS NULL OR h.month IS NULL
   OR (v.treated, v.treated_reactivated, v.held_out, v.held_out_reactivated)
      IS DISTINCT FROM (h.n1, h.x1, h.n0, h.x0)
   OR abs(v.treated_rate - h.p1) > 1e-12 OR abs(v.held_out_rate - h.p0) > 1e-12
   OR abs(v.uplift - h.uplift) > 1e-12
   OR abs(v.uplift_low - (h.uplift - 1.959964 * h.se)) > 1e-9
   OR abs(v.uplift_high - (h.uplift + 1.959964 * h.se)) > 1e-9
   OR abs(v.revenue_per_treated - h.r1) > 1e-9 OR abs(v.revenue_per_held_out - h.r0) > 1e-9;
-- Over all months, the contacted bought more often, and the interval says so.
SELECT sum(treated_reactivated)::float8 / sum(treated) > sum(held_out_reactivated)::float8 / sum(held_out)
           AS treated_bought_more
FROM lifecycle.playbook_uplift WHERE playbook = 'up';

SELECT lifecycle.untrack('up_orders');
DELETE FROM lifecycle.playbooks WHERE name = 'up';
RESET lifecycle.as_of;
DROP TABLE up_orders;
