-- stage_differences(): the rows of lifecycle.customer_stage that differ from a
-- recomputation in plain SQL over the table `orders` (customer_id, ordered_at, amount)
-- as of lifecycle.as_of, counted both ways; 0 when the engine is right. Included by
-- test/crash_cycle.sh and test/pg_upgrade.sh (psql's \i, from the project's root).
CREATE FUNCTION stage_differences() RETURNS bigint LANGUAGE sql AS $$
    WITH ours AS (
        SELECT customer, first_purchase, last_purchase, purchases,
               round(spend::numeric, 6) AS spend, stage::text AS stage
        FROM lifecycle.customer_stage WHERE purchases > 0),
    plain AS (
        SELECT customer_id::text, min(ordered_at), max(ordered_at), count(DISTINCT ordered_at),
               round(sum(amount), 6),
               lifecycle.lifecycle_stage(min(ordered_at), max(ordered_at),
                                         count(DISTINCT ordered_at),
                                         current_setting('lifecycle.as_of')::date, 'default')::text
        FROM orders WHERE ordered_at <= current_setting('lifecycle.as_of')::date
        GROUP BY customer_id)
    SELECT (SELECT count(*) FROM (TABLE ours EXCEPT TABLE plain) a)
         + (SELECT count(*) FROM (TABLE plain EXCEPT TABLE ours) b)
$$;
