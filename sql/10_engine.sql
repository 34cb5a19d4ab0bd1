-- The stage engine driven by hand: track(), refresh() (the code path the worker runs),
-- the transitions log and the views, checked against a full recomputation in plain SQL.
-- Time is moved with the setting lifecycle.as_of.
SET client_min_messages = warning;
INSERT INTO lifecycle.policies (name, onboarding_days, at_risk_days, inactive_days, lapsed_days,
                                rhythm_factor, description)
VALUES ('engine_test', 10, 20, 40, 60, 0, 'small windows for the engine tests');

-- The oracle: each customer's stage recomputed from the orders with lifecycle_stage,
-- as of the engine's date, in plain SQL (distinct purchase days up to that date).
CREATE FUNCTION full_recomputation(source regclass, policy text)
RETURNS TABLE (customer text, first_purchase date, last_purchase date, purchases bigint,
               spend double precision, stage lifecycle.stage)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT customer_id::text, min(day), max(day), count(DISTINCT day), sum(amount)::float8,
                lifecycle.lifecycle_stage(min(day), max(day), count(DISTINCT day), $1, $2)
         FROM (SELECT customer_id, ordered_at::date AS day, amount FROM %s) o
         WHERE day <= $1 GROUP BY customer_id', source)
    USING lifecycle.engine_date(), policy;
END
$$;
-- Rows of customer_stage that differ from the oracle, both ways (none expected).
CREATE FUNCTION stage_differences(source regclass, policy text) RETURNS bigint
LANGUAGE sql AS $$
    WITH ours AS (
        SELECT c.customer, c.first_purchase, c.last_purchase, c.purchases,
               round(c.spend::numeric, 6), c.stage
        FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
        WHERE s.source = $1 AND c.purchases > 0),
    -- (sums of doubles in another order may differ in the last bits: compare 6 decimals)
    plain AS (SELECT customer, first_purchase, last_purchase, purchases,
                     round(spend::numeric, 6), stage
              FROM full_recomputation($1, $2))
    SELECT (SELECT count(*) FROM (TABLE ours EXCEPT TABLE plain) a)
         + (SELECT count(*) FROM (TABLE plain EXCEPT TABLE ours) b)
$$;
-- Transitions that do not chain (from_stage is not the previous to_stage, starting from
-- prospect) or whose last to_stage is not the customer's stage now (none expected).
CREATE FUNCTION broken_chains(source regclass) RETURNS bigint
LANGUAGE sql AS $$
    WITH t AS (
        SELECT t.customer, t.from_stage, t.to_stage,
               lag(t.to_stage, 1, 'prospect') OVER w AS previous,
               row_number() OVER w = count(*) OVER (PARTITION BY t.customer) AS is_last
        FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id
        WHERE s.source = $1
        WINDOW w AS (PARTITION BY t.customer ORDER BY t.id))
    SELECT count(*) FROM t
    LEFT JOIN (SELECT c.customer, c.stage FROM lifecycle.customer_stage c
               JOIN lifecycle.sources s ON s.id = c.source_id WHERE s.source = $1) c
           USING (customer)
    WHERE t.from_stage <> t.previous OR (t.is_last AND t.to_stage <> coalesce(c.stage, 'prospect'))
$$;

-- Bad input: every argument named, with a SQLSTATE.
CREATE TABLE shop_orders (id serial PRIMARY KEY, customer_id integer, ordered_at date,
                          amount numeric, note text);
CREATE INDEX ON shop_orders (customer_id);
SELECT expect_error($$SELECT lifecycle.track('shop_orders', 'nope', 'ordered_at')$$);
SELECT expect_error($$SELECT lifecycle.track('shop_orders', 'customer_id', 'note')$$);
SELECT expect_error($$SELECT lifecycle.track('shop_orders', 'customer_id', 'ordered_at', 'note')$$);
SELECT expect_error($$SELECT lifecycle.track('shop_orders', 'customer_id', 'ordered_at', 'amount', 'no_such')$$);
SELECT expect_error($$SELECT lifecycle.track('shop_orders_seq', 'customer_id', 'ordered_at')$$);
SELECT expect_error($$SELECT lifecycle.untrack('shop_orders')$$);
SELECT expect_error($$SELECT lifecycle.refresh(0)$$);
SELECT expect_error($$SET lifecycle.as_of = 'yesterday-ish'$$);
SELECT expect_error($$SET lifecycle.notify_channel = 'two words'$$);

-- One customer's whole life, new -> active -> at_risk -> inactive -> lapsed -> back,
-- under engine_test (onboarding 10, at_risk 20, inactive 40, lapsed 60, no rhythm).
SET lifecycle.as_of = '2026-01-01';
SELECT lifecycle.track('shop_orders', 'customer_id', 'ordered_at', 'amount', 'engine_test');
CREATE FUNCTION buy(customer integer, amount numeric DEFAULT 10) RETURNS void LANGUAGE sql AS $$
    INSERT INTO shop_orders (customer_id, ordered_at, amount)
    VALUES (customer, lifecycle.engine_date(), amount)
$$;
CREATE FUNCTION day_of(d date) RETURNS lifecycle.refresh_result LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lifecycle.as_of', d::text, false);
    RETURN lifecycle.refresh();
END
$$;
SELECT buy(1);                                       -- day 0: first purchase, new
SELECT queued, due, transitions FROM lifecycle.refresh();
SELECT queued, due, transitions FROM day_of('2026-01-08');
SELECT buy(1);                                       -- day 7: second purchase, still new
SELECT queued, transitions FROM lifecycle.refresh();
-- Nothing until the next change: 2026-01-12 (first + 11 days), then 2026-01-29 (last + 21).
SELECT stage, next_change FROM lifecycle.customer_stage WHERE customer = '1';
SELECT queued, due, transitions FROM day_of('2026-01-11');
SELECT queued, due, transitions FROM day_of('2026-01-12');
-- A long jump logs every step, each with the day it took effect.
SELECT queued, due, transitions FROM day_of('2026-04-01');
SELECT buy(1);                                       -- back after lapsing
SELECT queued, due, transitions FROM lifecycle.refresh();
SELECT id, customer, from_stage, to_stage, effective, cause FROM lifecycle.transitions ORDER BY id;
SELECT customer, first_purchase, last_purchase, purchases, spend, stage, stage_since, next_change
FROM lifecycle.customer_stage;

-- Corrections: a refund (DELETE) takes the lapsed customer back; deleting every order
-- removes the customer; an UPDATE that moves an order to another customer moves both.
DELETE FROM shop_orders WHERE customer_id = 1 AND ordered_at = '2026-04-01';
SELECT queued, transitions FROM lifecycle.refresh();
SELECT buy(2);
SELECT buy(3);
SELECT transitions FROM lifecycle.refresh();
UPDATE shop_orders SET customer_id = 3 WHERE customer_id = 2;
SELECT queued, transitions FROM lifecycle.refresh();
SELECT customer, stage, purchases, spend FROM lifecycle.customer_stage ORDER BY customer;
SELECT id, customer, from_stage, to_stage, effective, cause FROM lifecycle.transitions
WHERE id > 6 ORDER BY id;
-- TRUNCATE: everyone goes.
TRUNCATE shop_orders;
SELECT queued, transitions FROM lifecycle.refresh();
SELECT count(*) AS customers_left FROM lifecycle.customer_stage;
SELECT broken_chains('shop_orders');
SELECT lifecycle.untrack('shop_orders');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'shop_orders'::regclass;

-- An INSERT's orders are queued in rows of up to 1,000, and a refresh's budget counts
-- orders. One that stops after an UPDATE recomputes that customer from the source, its
-- orders still queued beyond the budget included: they leave the queue (a row of only
-- theirs goes, a row shared with others keeps the others'), so nothing counts twice.
SET lifecycle.as_of = '2026-06-01';
CREATE TABLE batch_orders (customer_id integer, ordered_at date, amount numeric);
INSERT INTO batch_orders SELECT c, '2026-04-01', 10 FROM generate_series(1, 5) c;
SELECT lifecycle.track('batch_orders', 'customer_id', 'ordered_at', 'amount') AS batch_source \gset
INSERT INTO batch_orders SELECT 1 + c % 2500, '2026-05-01', 2 FROM generate_series(1, 2500) c;
UPDATE batch_orders SET amount = 11 WHERE customer_id = 1 AND ordered_at = '2026-04-01';
INSERT INTO batch_orders VALUES (1, '2026-05-02', 3), (2, '2026-05-02', 3), (3, '2026-05-02', 3);
INSERT INTO batch_orders VALUES (1, '2026-05-03', 4);
SELECT cardinality(customers) AS orders, customer FROM lifecycle.change_queue
WHERE source_id = :batch_source ORDER BY id;
SELECT queued, recomputed FROM lifecycle.refresh(2501);
SELECT customers FROM lifecycle.change_queue WHERE source_id = :batch_source ORDER BY id;
SELECT customer, purchases, spend FROM lifecycle.customer_stage
WHERE source_id = :batch_source AND customer IN ('1', '2', '3') ORDER BY customer;
SELECT queued, recomputed FROM lifecycle.refresh();
SELECT count(*) AS left_in_queue FROM lifecycle.change_queue WHERE source_id = :batch_source;
SELECT stage_differences('batch_orders', 'default') AS differences;
SELECT lifecycle.untrack('batch_orders');

-- The capture trigger runs as the extension's owner, so it trusts only lifecycle.sources:
-- attached by a user to a table of their own, it queues nothing.
CREATE ROLE engine_intruder;
GRANT USAGE ON SCHEMA lifecycle TO engine_intruder;
CREATE SCHEMA intruder AUTHORIZATION engine_intruder;
SET ROLE engine_intruder;
CREATE TABLE intruder.orders (customer_id text, ordered_at date, amount numeric);
CREATE TRIGGER sneaky AFTER INSERT ON intruder.orders REFERENCING NEW TABLE AS lifecycle_new
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle._capture();
INSERT INTO intruder.orders VALUES ('x', '2026-01-01', 1);
SELECT expect_error($$SELECT lifecycle.track('intruder.orders', 'customer_id', 'ordered_at')$$);
SELECT expect_error($$SELECT lifecycle.refresh()$$);
RESET ROLE;
SELECT count(*) AS queued_by_intruder FROM lifecycle.change_queue;
DROP SCHEMA intruder CASCADE;
REVOKE USAGE ON SCHEMA lifecycle FROM engine_intruder;
DROP ROLE engine_intruder;

-- A randomized workload: two thousand operations (inserts, backdated inserts, amount and
-- date updates, customer moves, deletes, time jumps) over a text-keyed, timestamptz
-- source, refreshed by hand in small batches in between. customer_stage must equal the
-- full recomputation at every check, and the log must chain.
CREATE TABLE web_orders (id serial PRIMARY KEY, customer_id text, ordered_at timestamptz,
                         amount double precision);
CREATE INDEX ON web_orders (customer_id);
SET lifecycle.as_of = '2025-06-01';
SET TimeZone = 'UTC';
INSERT INTO web_orders (customer_id, ordered_at, amount)
SELECT 'c' || (i % 300), timestamptz '2025-01-01' + (i * 7 % 150) * interval '1 day', i % 50
FROM generate_series(1, 3000) AS i;
SELECT lifecycle.track('web_orders', 'customer_id', 'ordered_at', 'amount', 'engine_test');
SELECT stage_differences('web_orders', 'engine_test') AS differences_after_track;
CREATE TABLE workload_checks (step integer, differences bigint, broken bigint);
DO $$
DECLARE
    today date := '2025-06-01';
    r double precision;
BEGIN
    PERFORM setseed(0.42);
    FOR step IN 1 .. 2000 LOOP
        r := random();
        IF r < 0.40 THEN        -- a purchase today
            INSERT INTO web_orders (customer_id, ordered_at, amount)
            VALUES ('c' || floor(random() * 400)::int, today + interval '12 hours', random() * 100);
        ELSIF r < 0.50 THEN     -- a purchase entered late, dated up to 60 days back
            INSERT INTO web_orders (customer_id, ordered_at, amount)
            VALUES ('c' || floor(random() * 400)::int,
                    today - floor(random() * 60)::int * interval '1 day', random() * 100);
        ELSIF r < 0.58 THEN     -- an amount corrected
            UPDATE web_orders SET amount = amount + 1
            WHERE id = (SELECT min(id) FROM web_orders WHERE id >= floor(random() * 4000));
        ELSIF r < 0.64 THEN     -- an order's date corrected
            UPDATE web_orders SET ordered_at = ordered_at - interval '9 days'
            WHERE id = (SELECT min(id) FROM web_orders WHERE id >= floor(random() * 4000));
        ELSIF r < 0.68 THEN     -- an order moved to another customer
            UPDATE web_orders SET customer_id = 'c' || floor(random() * 400)::int
            WHERE id = (SELECT min(id) FROM web_orders WHERE id >= floor(random() * 4000));
        ELSIF r < 0.78 THEN     -- a refund
            DELETE FROM web_orders
            WHERE id = (SELECT min(id) FROM web_orders WHERE id >= floor(random() * 4000));
        ELSIF r < 0.80 THEN     -- a customer's whole history deleted
            DELETE FROM web_orders WHERE customer_id = 'c' || floor(random() * 400)::int;
        ELSIF r < 0.90 THEN     -- time passes
            today := today + floor(random() * 12)::int;
            PERFORM set_config('lifecycle.as_of', today::text, false);
        ELSE
            PERFORM lifecycle.refresh(floor(1 + random() * 50)::int);
        END IF;
        IF step % 500 = 0 THEN  -- catch up completely, then compare
            WHILE (lifecycle.refresh(100)).more LOOP END LOOP;
            INSERT INTO workload_checks
            VALUES (step, stage_differences('web_orders', 'engine_test'), broken_chains('web_orders'));
        END IF;
    END LOOP;
END
$$;
SELECT * FROM workload_checks ORDER BY step;
SELECT count(*) > 250 AS many_customers, count(DISTINCT stage) >= 4 AS several_stages
FROM lifecycle.customer_stage;
SELECT count(*) FILTER (WHERE cause = 'time') > 100 AS time_steps,
       count(*) FILTER (WHERE cause = 'purchase') > 100 AS purchases,
       count(*) FILTER (WHERE cause = 'correction') > 10 AS corrections
FROM lifecycle.transitions;
-- next_change is exact: the stage on next_change - 1 is today's, on next_change it differs.
SELECT count(*) AS wrong_next_change
FROM lifecycle.customer_stage c
WHERE c.purchases > 0 AND c.next_change IS NOT NULL AND c.next_order IS NULL
  AND (lifecycle.lifecycle_stage(c.first_purchase, c.last_purchase, c.purchases,
                                 c.next_change - 1, 'engine_test') <> c.stage
       OR lifecycle.lifecycle_stage(c.first_purchase, c.last_purchase, c.purchases,
                                    c.next_change, 'engine_test') = c.stage);
SELECT lifecycle.untrack('web_orders');

-- Churn per month from the log agrees with the churn aggregate over the orders. Orders
-- arrive on their day (as a shop's do) and the engine refreshes every day.
INSERT INTO lifecycle.policies (name, onboarding_days, at_risk_days, inactive_days, lapsed_days,
                                rhythm_factor)
VALUES ('churn_test', 10, 15, 25, 35, 0);
CREATE TABLE daily_orders (customer_id integer, ordered_at date, amount numeric);
CREATE INDEX ON daily_orders (customer_id);
SET lifecycle.as_of = '2025-01-20';
INSERT INTO daily_orders SELECT i % 80, date '2024-12-01' + i % 50, 1 FROM generate_series(1, 400) i;
SELECT lifecycle.track('daily_orders', 'customer_id', 'ordered_at', 'amount', 'churn_test');
DO $$
BEGIN
    PERFORM setseed(0.7);
    FOR d IN 1 .. 165 LOOP
        PERFORM set_config('lifecycle.as_of', (date '2025-01-20' + d)::text, false);
        INSERT INTO daily_orders
        SELECT floor(random() * 120)::int, date '2025-01-20' + d, 1
        FROM generate_series(1, floor(random() * 6)::int);
        PERFORM lifecycle.refresh();
    END LOOP;
END
$$;
SELECT lifecycle.engine_date();
CREATE TEMP TABLE churn_from_orders AS
SELECT m::date AS month, (lifecycle.churn_counts(status)).*
FROM generate_series(date '2025-02-01', date '2025-06-01', interval '1 month') AS m,
     LATERAL (SELECT lifecycle.churn_status(ordered_at, m::date, (m + interval '1 month')::date,
                                            'churn_test') AS status
              FROM daily_orders GROUP BY customer_id) AS per_customer
GROUP BY m;
SELECT v.month, v.base, v.churned, v.reactivated, v.new, v.churn_rate,
       (o.base, o.churned, o.reactivated, o.new) = (v.base, v.churned, v.reactivated, v.new)
           AS agrees
FROM lifecycle.churn_per_month v JOIN churn_from_orders o USING (month)
WHERE v.source = 'daily_orders' ORDER BY month;
SELECT count(*) AS months FROM lifecycle.churn_per_month WHERE source = 'daily_orders';
SELECT stage, customers FROM lifecycle.stage_counts WHERE source = 'daily_orders' ORDER BY stage;
SELECT sum(transitions) = (SELECT count(*) FROM lifecycle.transitions WHERE cause <> 'initial')
    AS per_day_adds_up FROM lifecycle.transitions_per_day;
SELECT sum(customers) = (SELECT count(*) FROM lifecycle.customer_stage WHERE segment IS NOT NULL)
    AS segments_add_up FROM lifecycle.rfm_segment_counts;
SELECT stage_differences('daily_orders', 'churn_test') AS differences;
-- The worker's check between ticks (lifecycle.poll_interval): nothing queued, an order
-- queued, the queue taken by a refresh.
SELECT lifecycle._work_waiting() AS waiting_when_idle;
INSERT INTO daily_orders VALUES (1, lifecycle.engine_date(), 1);
SELECT lifecycle._work_waiting() AS waiting_after_an_order;
SELECT queued FROM lifecycle.refresh();
SELECT lifecycle._work_waiting() AS waiting_after_refresh;
-- Without the worker, worker_status says so.
SELECT database = current_database() AS here, running, ticks FROM lifecycle.worker_status;
SELECT lifecycle.untrack('daily_orders');
RESET lifecycle.as_of;
RESET TimeZone;
