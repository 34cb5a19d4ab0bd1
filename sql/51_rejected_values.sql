-- Values the engine cannot use (src/engine/capture.sql, lifecycle._reject_sql): NaN and
-- infinite amounts, numeric amounts beyond any double precision, amounts whose sums
-- would overflow, times outside the engine's calendar (1400-01-01 .. 9999-12-31, infinity
-- included) and customer ids too long for the stage table's index.
-- Each is legal for its column type. None may fail the writer's INSERT or UPDATE, nor a
-- refresh: they are left out of the computation the same way by the capture trigger,
-- the watermark capture and the recomputations, and listed in lifecycle.rejected_rows.
-- The oracle is plain SQL over the rows this test marks good itself (column `good`).
SET client_min_messages = warning;
SET lifecycle.as_of = '2026-03-01';
SET TimeZone = 'UTC';

-- A trigger source (numeric amounts, dates), a watermark source (double precision,
-- timestamptz) and a trigger source with bigint amounts; each with a history before
-- tracking that already holds a bad row.
CREATE TABLE rv_t (id bigserial PRIMARY KEY, customer_id text, ordered_at date,
                   amount numeric, good boolean NOT NULL);
CREATE TABLE rv_w (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id text,
                   ordered_at timestamptz, amount double precision, good boolean NOT NULL);
CREATE TABLE rv_b (id bigserial PRIMARY KEY, customer_id varchar, ordered_at date,
                   amount bigint, good boolean NOT NULL);
CREATE INDEX ON rv_t (customer_id);
CREATE INDEX ON rv_w (customer_id);
CREATE INDEX ON rv_b (customer_id);
INSERT INTO rv_t (customer_id, ordered_at, amount, good)
SELECT 'c' || (i % 7), date '2026-01-01' + i, 10 + i, true FROM generate_series(1, 30) AS i;
INSERT INTO rv_t (customer_id, ordered_at, amount, good) VALUES ('c1', '2026-01-20', 'NaN', false);
INSERT INTO rv_w (customer_id, ordered_at, amount, good)
SELECT customer_id, ordered_at + interval '13 hours', amount, good FROM rv_t ORDER BY id;
INSERT INTO rv_b (customer_id, ordered_at, amount, good)
SELECT customer_id, ordered_at, amount::bigint, true FROM rv_t WHERE good ORDER BY id;
SELECT lifecycle.track('rv_t', 'customer_id', 'ordered_at', 'amount', 'engine_test') > 0 AS tracked_t;
SELECT lifecycle.track('rv_w', 'customer_id', 'ordered_at', 'amount', 'engine_test',
                       watermark_column => 'id') > 0 AS tracked_w;
SELECT lifecycle.track('rv_b', 'customer_id', 'ordered_at', 'amount', 'engine_test') > 0 AS tracked_b;
-- track() recorded the bad row it found.
SELECT s.source, r.reason, r.customer, r.amount, r.row_count
FROM lifecycle.rejected_rows r JOIN lifecycle.sources s ON s.id = r.source_id ORDER BY r.id;

-- The oracle: the stage of every customer with a good row, from the good rows only, and
-- the stage table's rows that differ from it, both ways (none expected).
CREATE FUNCTION rv_differences(tab regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format(
        'WITH plain AS (
             SELECT customer_id::text AS customer, min(day) AS first_purchase,
                    max(day) AS last_purchase, count(DISTINCT day) AS purchases,
                    round(sum(amount)::numeric, 6) AS spend,
                    lifecycle.lifecycle_stage(min(day), max(day), count(DISTINCT day), $1,
                                              ''engine_test'') AS stage
             FROM (SELECT customer_id, (ordered_at AT TIME ZONE ''UTC'')::date AS day, amount
                   FROM %s WHERE good) o
             WHERE day <= $1 GROUP BY customer_id
         ), ours AS (
             SELECT c.customer, c.first_purchase, c.last_purchase, c.purchases,
                    round(c.spend::numeric, 6) AS spend, c.stage
             FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
             WHERE s.source = %L::regclass
         )
         SELECT (SELECT count(*) FROM (TABLE ours EXCEPT TABLE plain) a)
              + (SELECT count(*) FROM (TABLE plain EXCEPT TABLE ours) b)', tab, tab)
    INTO n USING lifecycle.engine_date();
    RETURN n;
END
$$;
SELECT rv_differences('rv_t') AS differ_t, rv_differences('rv_w') AS differ_w,
       rv_differences('rv_b') AS differ_b;

-- Every bad value in its own INSERT, with a good order of a new customer in the same
-- statement (kept), and as a role that may only INSERT: every INSERT succeeds.
CREATE ROLE rv_writer;
GRANT INSERT ON rv_t, rv_w, rv_b TO rv_writer;
GRANT USAGE ON SEQUENCE rv_t_id_seq, rv_b_id_seq TO rv_writer;
SET ROLE rv_writer;
INSERT INTO rv_t (customer_id, ordered_at, amount, good)
VALUES ('nan', '2026-02-01', 'NaN', false), ('n1', '2026-02-01', 5, true);
INSERT INTO rv_t (customer_id, ordered_at, amount, good)
VALUES ('inf', '2026-02-02', 'Infinity', false), ('n2', '2026-02-02', 6, true),
       ('c2', '2026-02-02', '-Infinity', false);
INSERT INTO rv_t (customer_id, ordered_at, amount, good)
VALUES ('huge', '2026-02-03', 1e400, false), ('n3', '2026-02-03', 7, true);
INSERT INTO rv_t (customer_id, ordered_at, amount, good)
VALUES ('big', '2026-02-04', 1e308, false), ('big', '2026-02-05', 1e308, false),
       ('n4', '2026-02-04', 8, true);
INSERT INTO rv_t (customer_id, ordered_at, amount, good)
VALUES (repeat('L', 3000), '2026-02-05', 9, false), ('n5', '2026-02-05', 9, true);
INSERT INTO rv_t (customer_id, ordered_at, amount, good)
VALUES ('never', '-infinity', 9, false), ('c3', 'infinity', 9, false),
       ('early', '1399-12-31', 9, false), ('c4', '1400-01-01', 3, true);
INSERT INTO rv_w (customer_id, ordered_at, amount, good)
VALUES ('nan', '2026-02-01', 'NaN', false), ('n1', '2026-02-01', 5, true);
INSERT INTO rv_w (customer_id, ordered_at, amount, good)
VALUES ('inf', '2026-02-02', 'Infinity', false), ('n2', '2026-02-02', 6, true),
       ('c2', '2026-02-02', '-Infinity', false);
INSERT INTO rv_w (customer_id, ordered_at, amount, good)
VALUES ('big', '2026-02-04', 1e308, false), ('big', '2026-02-05', 1e308, false),
       ('n4', '2026-02-04', 8, true);
INSERT INTO rv_w (customer_id, ordered_at, amount, good)
VALUES (repeat('L', 3000), '2026-02-05', 9, false), ('n5', '2026-02-05', 9, true);
INSERT INTO rv_w (customer_id, ordered_at, amount, good)
VALUES ('never', '-infinity', 9, false), ('c3', 'infinity', 9, false),
       ('early', '1400-01-01 12:00+00', 9, false), ('late', '9999-12-30 12:00+00', 9, false);
-- bigint: the smallest bigint (whose abs() fails) and one just beyond 1e15; 1e15 itself
-- is an amount like any other.
INSERT INTO rv_b (customer_id, ordered_at, amount, good)
VALUES ('min', '2026-02-01', -9223372036854775808, false),
       ('over', '2026-02-01', 1000000000000001, false),
       ('edge', '2026-02-01', 1000000000000000, true), ('n1', '2026-02-01', 5, true),
       (repeat('L', 1001), '2026-02-01', 5, false), (repeat('K', 1000), '2026-02-01', 5, true);
RESET ROLE;

-- The refresh succeeds, and the stage tables equal the oracle over the good rows.
SELECT sources, queued > 0 AS queued FROM lifecycle.refresh();
SELECT rv_differences('rv_t') AS differ_t, rv_differences('rv_w') AS differ_w,
       rv_differences('rv_b') AS differ_b;
-- No bad customer has a row, and none of the good customers is missing.
SELECT s.source, count(*) AS customers,
       count(*) FILTER (WHERE c.customer IN ('nan', 'inf', 'huge', 'big', 'never', 'early', 'late')
                           OR octet_length(c.customer) > 1000) AS bad_customers
FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
GROUP BY s.source ORDER BY 1;

-- The bad rows, per source and reason, with a sample and how many (the customer cut to
-- 100 characters, 1e400 in scientific notation); what lifecycle_reader sees.
SET ROLE lifecycle_reader;
SELECT s.source, r.reason, left(r.customer, 10) AS customer, length(r.customer) AS length,
       r.amount, r.row_count
FROM lifecycle.rejected_rows r JOIN lifecycle.sources s ON s.id = r.source_id
ORDER BY s.source, r.reason, r.id;
SELECT s.source, sum(r.row_count) AS rejected
FROM lifecycle.rejected_rows r JOIN lifecycle.sources s ON s.id = r.source_id
GROUP BY s.source ORDER BY 1;
RESET ROLE;
-- ... which are the rows this test marked bad, less those without a customer or time.
SELECT 'rv_t' AS source, count(*) AS bad FROM rv_t WHERE NOT good
UNION ALL SELECT 'rv_w', count(*) FROM rv_w WHERE NOT good
UNION ALL SELECT 'rv_b', count(*) FROM rv_b WHERE NOT good ORDER BY 1;

-- A recomputation leaves out what the capture left out: resync() corrects nothing.
SELECT lifecycle.resync('rv_t') AS corrections_t, lifecycle.resync('rv_w') AS corrections_w,
       lifecycle.resync('rv_b') AS corrections_b;

-- Updates that make rows bad (an amount NaN, a customer id too long) succeed too, and
-- are listed as the INSERTs' are; the customers recomputed leave those rows out.
UPDATE rv_t SET amount = 'NaN', good = false WHERE customer_id = 'n1';
UPDATE rv_t SET customer_id = repeat('M', 2000), good = false WHERE customer_id = 'n2';
UPDATE rv_w SET amount = 'NaN', good = false WHERE customer_id = 'n1';
UPDATE rv_w SET customer_id = repeat('M', 2000), good = false WHERE customer_id = 'n2';
DELETE FROM rv_t WHERE customer_id = 'big';
SELECT s.source, r.reason, left(r.customer, 10) AS customer, r.amount, r.row_count
FROM lifecycle.rejected_rows r JOIN lifecycle.sources s ON s.id = r.source_id
WHERE r.customer = 'n1' OR r.customer LIKE 'MMM%' ORDER BY 1, 2;
SELECT sources FROM lifecycle.refresh();
SELECT rv_differences('rv_t') AS differ_t, rv_differences('rv_w') AS differ_w,
       rv_differences('rv_b') AS differ_b;
SELECT lifecycle.resync('rv_t') AS corrections_t, lifecycle.resync('rv_w') AS corrections_w;

-- Kept bounded: many statements with bad rows (each writer only inserts its entry); the
-- refresh folds them into at most five entries per source and reason, the count kept.
SELECT count(*) AS entries_before FROM lifecycle.rejected_rows r
JOIN lifecycle.sources s ON s.id = r.source_id
WHERE s.source = 'rv_t'::regclass AND r.reason = 'amount_not_finite';
DO $$
BEGIN
    FOR i IN 1 .. 12 LOOP   -- twelve statements of two bad rows each
        INSERT INTO rv_t (customer_id, ordered_at, amount, good)
        VALUES ('flood' || i, '2026-02-10', 'NaN', false), ('flood' || i, '2026-02-11', 'NaN', false);
    END LOOP;
END
$$;
SELECT count(*) AS entries_unfolded, sum(row_count) AS rows_unfolded
FROM lifecycle.rejected_rows r JOIN lifecycle.sources s ON s.id = r.source_id
WHERE s.source = 'rv_t'::regclass AND r.reason = 'amount_not_finite';
SELECT sources FROM lifecycle.refresh();
SELECT count(*) AS entries_folded, sum(row_count) AS rows_folded,
       max(row_count) FILTER (WHERE rn = 5) AS fifth_counts
FROM (SELECT r.*, row_number() OVER (ORDER BY r.id) AS rn
      FROM lifecycle.rejected_rows r JOIN lifecycle.sources s ON s.id = r.source_id
      WHERE s.source = 'rv_t'::regclass AND r.reason = 'amount_not_finite') x;
SELECT rv_differences('rv_t') AS differ_t;

-- Untracking forgets a source's rejected rows with the rest.
SELECT lifecycle.untrack('rv_t'), lifecycle.untrack('rv_w'), lifecycle.untrack('rv_b');
SELECT count(*) AS rejected_left FROM lifecycle.rejected_rows;
DROP FUNCTION rv_differences(regclass);
DROP TABLE rv_t, rv_w, rv_b;
DROP ROLE rv_writer;
RESET TimeZone;
RESET lifecycle.as_of;
