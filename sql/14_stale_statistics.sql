-- A tick's cost follows the customers it touches, whatever the planner's statistics say.
-- The stage table is analyzed before a new source is tracked, so its statistics know
-- nothing of that source's 4,000 customers (as after track() on a busy server, before
-- autovacuum comes round). A tick then takes 1,000 plain purchases of known customers,
-- 1,000 new customers and 100 late orders to recompute. Counted from this transaction's
-- table statistics: no table is read more than 20 rows per customer touched. (A plan
-- that joined the stage table to a scan of the scratch table per row read 1,000 x 1,000
-- scratch rows here, and made bench/latency.sh's p99 14 s.)
SET client_min_messages = warning;
SET lifecycle.as_of = '2026-06-30';
CREATE TABLE stale_orders (customer_id integer NOT NULL, ordered_at date NOT NULL,
                           amount numeric NOT NULL);
INSERT INTO stale_orders
SELECT i % 4000, '2026-01-01'::date + (i * 7) % 120, 10 FROM generate_series(0, 7999) i;
ANALYZE lifecycle.customer_stage;
ALTER TABLE lifecycle.customer_stage SET (autovacuum_enabled = false);
SELECT lifecycle.track('stale_orders', 'customer_id', 'ordered_at', 'amount') > 0 AS tracked;
SELECT (lifecycle.refresh()).queued AS settled;

INSERT INTO stale_orders SELECT i, '2026-06-29', 20 FROM generate_series(0, 999) i;
INSERT INTO stale_orders SELECT 10000 + i, '2026-06-29', 30 FROM generate_series(0, 999) i;
INSERT INTO stale_orders SELECT 2000 + i, '2026-01-02', 5 FROM generate_series(0, 99) i;
-- (pending counters of earlier statements flushed first: the xact views show them too)
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT r.queued, r.recomputed FROM lifecycle.refresh() r;
SELECT relname, seq_tup_read + coalesce(idx_tup_fetch, 0) AS rows_read
FROM pg_stat_xact_all_tables
WHERE seq_tup_read + coalesce(idx_tup_fetch, 0) > 20 * 2100
ORDER BY relname;
COMMIT;

-- The next day: the time step looks only at the customers due (the due index), not at
-- the whole source, on the same statistics.
SET lifecycle.as_of = '2026-07-01';
SELECT pg_stat_force_next_flush();
BEGIN;
SELECT r.due AS due, r.transitions AS moved FROM lifecycle.refresh() r \gset
SELECT :due > 0 AS some_due, :due < 1000 AS not_all_due;
SELECT relname, seq_tup_read + coalesce(idx_tup_fetch, 0) AS rows_read
FROM pg_stat_xact_all_tables
WHERE seq_tup_read + coalesce(idx_tup_fetch, 0) > 20 * :due
ORDER BY relname;
COMMIT;

-- The same answer as a recomputation from the orders (DESIGN.md's stage rules, through
-- lifecycle_stage() of each customer's history).
SELECT count(*) AS differing
FROM (SELECT customer_id::text AS customer, min(ordered_at) AS first_purchase,
             max(ordered_at) AS last_purchase, count(DISTINCT ordered_at) AS purchases,
             sum(amount)::double precision AS spend
      FROM stale_orders GROUP BY customer_id) o
FULL JOIN (SELECT c.* FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
           WHERE s.source = 'stale_orders'::regclass) c USING (customer)
WHERE c.customer IS NULL OR o.customer IS NULL
   OR (c.first_purchase, c.last_purchase, c.purchases, c.spend, c.stage)
      IS DISTINCT FROM (o.first_purchase, o.last_purchase, o.purchases, o.spend,
                        lifecycle.lifecycle_stage(o.first_purchase, o.last_purchase,
                                                  o.purchases, '2026-07-01'));

ALTER TABLE lifecycle.customer_stage RESET (autovacuum_enabled);
SELECT lifecycle.untrack('stale_orders');
DROP TABLE stale_orders;
