-- The due index and HOT updates: customer_stage.wake_on is when refresh() next looks at a
-- customer, on or before next_change. A purchase moves next_change later and leaves
-- wake_on alone (the row's indexed columns do not change, so the update is HOT); on the
-- old day the time step finds nothing due, logs nothing and sets wake_on to next_change.
SET client_min_messages = warning;
INSERT INTO lifecycle.policies (name, onboarding_days, at_risk_days, inactive_days, lapsed_days,
                                rhythm_factor, description)
VALUES ('wake_test', 10, 20, 40, 60, 0, 'small windows for the wake tests');
CREATE TABLE wake_orders (id serial PRIMARY KEY, customer_id integer NOT NULL,
                          ordered_at date NOT NULL, amount numeric NOT NULL);
-- a: active, bought 2026-01-01 and 2026-02-25 (at risk on 03-18, more than 20 days
-- after the last purchase, if nothing more);
-- b: lapsed (bought once, 2025-06-01): no next change, so no wake day.
INSERT INTO wake_orders (customer_id, ordered_at, amount)
VALUES (1, '2026-01-01', 10), (1, '2026-02-25', 10), (2, '2025-06-01', 5);
SET lifecycle.as_of = '2026-03-01';
SELECT lifecycle.track('wake_orders', 'customer_id', 'ordered_at', 'amount', 'wake_test') > 0 AS tracked;
-- Room for the new row versions on each page.
SELECT reloptions FROM pg_class WHERE oid = 'lifecycle.customer_stage'::regclass;
CREATE VIEW wake AS
SELECT customer, stage, stage_since, next_change, wake_on FROM lifecycle.customer_stage
WHERE source_id = (SELECT id FROM lifecycle.sources WHERE source = 'wake_orders'::regclass)
ORDER BY customer;
TABLE wake;

-- A purchase on 03-05: next_change moves to 03-26, wake_on stays on 03-18, and the row is
-- updated in place (HOT). The statistics of this transaction count the updates.
SET lifecycle.as_of = '2026-03-05';
INSERT INTO wake_orders (customer_id, ordered_at, amount) VALUES (1, '2026-03-05', 10);
BEGIN;
SELECT (r).queued, (r).transitions FROM (SELECT lifecycle.refresh() AS r) x;
SELECT n_tup_upd >= 1 AS updated, n_tup_hot_upd = n_tup_upd AS all_hot
FROM pg_stat_xact_user_tables WHERE relid = 'lifecycle.customer_stage'::regclass;
COMMIT;
TABLE wake;

-- A second order on the same day (the last purchase day): written at once too, the day
-- counted once, the amount added, no transition, nothing recomputed.
INSERT INTO wake_orders (customer_id, ordered_at, amount) VALUES (1, '2026-03-05', 5);
SELECT (r).queued, (r).recomputed, (r).transitions FROM (SELECT lifecycle.refresh() AS r) x;
SELECT customer, purchases, spend, last_purchase, moved_from FROM lifecycle.customer_stage
WHERE customer = '1' AND source_id = (SELECT id FROM lifecycle.sources
                                      WHERE source = 'wake_orders'::regclass);

-- 03-18, the old wake day: nothing is due (no step, no transition); wake_on catches up
-- with next_change, and no work is left.
SET lifecycle.as_of = '2026-03-18';
SELECT (r).due, (r).transitions, (r).more FROM (SELECT lifecycle.refresh() AS r) x;
TABLE wake;
SELECT count(*) AS transitions_since_track FROM lifecycle.transitions t
JOIN lifecycle.sources s ON s.id = t.source_id
WHERE s.source = 'wake_orders'::regclass AND t.cause <> 'initial';

-- 03-26: the real change, logged on its day; the next wake day is the next change.
SET lifecycle.as_of = '2026-03-26';
SELECT (r).due, (r).transitions, (r).more FROM (SELECT lifecycle.refresh() AS r) x;
TABLE wake;
SELECT customer, from_stage, to_stage, effective, cause FROM lifecycle.transitions t
JOIN lifecycle.sources s ON s.id = t.source_id
WHERE s.source = 'wake_orders'::regclass AND t.cause <> 'initial' ORDER BY t.id;

-- The lapsed customer buys: a next change appears, and wake_on with it (this update
-- cannot be HOT: the indexed column goes from NULL to a day).
INSERT INTO wake_orders (customer_id, ordered_at, amount) VALUES (2, '2026-03-26', 5);
SELECT (r).transitions FROM (SELECT lifecycle.refresh() AS r) x;
TABLE wake;

-- A new customer's row is written with its wake day on its next change (new until 10
-- days after the first purchase).
INSERT INTO wake_orders (customer_id, ordered_at, amount) VALUES (3, '2026-03-20', 7);
SELECT (r).transitions FROM (SELECT lifecycle.refresh() AS r) x;
TABLE wake;

-- A randomized run: 300 customers, 40 days, purchases on random days and random jumps
-- of the date; after every refresh wake_on is on or before next_change (NULL together),
-- and the stages match a plain-SQL recomputation; at the end every customer's log chains.
SELECT setseed(0.12);
INSERT INTO wake_orders (customer_id, ordered_at, amount)
SELECT 100 + floor(random() * 300)::int, date '2026-01-01' + floor(random() * 84)::int, 1
FROM generate_series(1, 600);
CREATE TABLE wake_checks (step integer, broken bigint, differ bigint);
DO $$
DECLARE
    d date := '2026-03-26';
BEGIN
    FOR step IN 1 .. 40 LOOP
        d := d + floor(random() * 4)::int;
        PERFORM set_config('lifecycle.as_of', d::text, false);
        INSERT INTO wake_orders (customer_id, ordered_at, amount)
        SELECT 100 + floor(random() * 300)::int, d, 1 FROM generate_series(1, floor(random() * 12)::int);
        PERFORM lifecycle.refresh();
        INSERT INTO wake_checks
        SELECT step,
               (SELECT count(*) FROM lifecycle.customer_stage c
                WHERE (c.wake_on IS NULL) <> (c.next_change IS NULL) OR c.wake_on > c.next_change),
               (SELECT count(*) FROM (
                    (SELECT customer_id::text, lifecycle.lifecycle_stage(min(ordered_at), max(ordered_at),
                                count(DISTINCT ordered_at), d, 'wake_test')
                     FROM wake_orders WHERE ordered_at <= d GROUP BY customer_id
                     EXCEPT SELECT customer, stage FROM wake)
                    UNION ALL
                    (SELECT customer, stage FROM wake
                     EXCEPT SELECT customer_id::text, lifecycle.lifecycle_stage(min(ordered_at),
                                max(ordered_at), count(DISTINCT ordered_at), d, 'wake_test')
                     FROM wake_orders WHERE ordered_at <= d GROUP BY customer_id)) x);
    END LOOP;
END
$$;
SELECT count(*) AS steps, sum(broken) AS invariant_broken, sum(differ) AS stages_differ
FROM wake_checks;
-- Every customer's log chains, and ends in its stage now.
SELECT count(*) AS broken_chains FROM (
    SELECT t.customer, t.from_stage,
           lag(t.to_stage) OVER (PARTITION BY t.customer ORDER BY t.id) AS previous
    FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id
    WHERE s.source = 'wake_orders'::regclass) x
WHERE previous IS NOT NULL AND from_stage <> previous;
SELECT count(*) AS last_differs FROM wake w
JOIN LATERAL (SELECT t.to_stage FROM lifecycle.transitions t
              JOIN lifecycle.sources s ON s.id = t.source_id
              WHERE s.source = 'wake_orders'::regclass AND t.customer = w.customer
              ORDER BY t.id DESC LIMIT 1) l ON true
WHERE l.to_stage <> w.stage;
SELECT lifecycle.untrack('wake_orders');
RESET lifecycle.as_of;
