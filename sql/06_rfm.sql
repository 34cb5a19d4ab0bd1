-- RFM scores: score = 1 + floor(5 * (rank - 1) / N), rank() in ascending order of
-- goodness (recency: fewer days is better), ties share the lowest rank.

-- A hand-checkable population of 7 with ties (N = 7):
--   recency 10,10,20,30,30,30,90 -> ranks by DESC recency: 90->1, 30->2 (x3), 20->5, 10->6 (x2)
--   scores 1+floor(5*(rank-1)/7): rank 1->1, 2->1, 5->3, 6->4
CREATE TABLE rfm_small (id int, recency int, frequency int, monetary numeric, grp text);
INSERT INTO rfm_small VALUES
    (1, 10, 5, 500, 'a'), (2, 10, 1, 20, 'a'), (3, 20, 3, 120, 'a'), (4, 30, 3, 90, 'a'),
    (5, 30, 2, 90, 'a'), (6, 30, 8, 1000, 'a'), (7, 90, 1, 5, 'a'),
    (8, 1, 1, 1, 'b'), (9, 2, 2, 2, 'b');
SELECT id, recency, frequency, monetary, (s).*
FROM (SELECT *, lifecycle.rfm_score(recency, frequency, monetary) OVER (PARTITION BY grp) AS s
      FROM rfm_small) t
ORDER BY id;

-- Equal to three plain rank() windows, partitioned, on a random population with many ties.
CREATE TABLE rfm_pop AS
SELECT i AS id, i % 3 AS grp, (random() * 40)::int AS recency, 1 + (random() * 6)::int AS frequency,
       round((random() * 300)::numeric, 0) AS monetary
FROM generate_series(1, 5000) i;
SELECT setseed(0.42);
UPDATE rfm_pop SET recency = (random() * 40)::int, frequency = 1 + (random() * 6)::int,
                   monetary = round((random() * 300)::numeric, 0);
WITH ours AS (
    SELECT id, lifecycle.rfm_score(recency, frequency, monetary) OVER (PARTITION BY grp) AS s FROM rfm_pop
), plain AS (
    SELECT id,
           1 + 5 * (rank() OVER (PARTITION BY grp ORDER BY recency DESC) - 1) / count(*) OVER (PARTITION BY grp) AS r,
           1 + 5 * (rank() OVER (PARTITION BY grp ORDER BY frequency) - 1) / count(*) OVER (PARTITION BY grp) AS f,
           1 + 5 * (rank() OVER (PARTITION BY grp ORDER BY monetary) - 1) / count(*) OVER (PARTITION BY grp) AS m
    FROM rfm_pop
)
SELECT count(*) AS customers,
       count(*) FILTER (WHERE (o.s).r = p.r AND (o.s).f = p.f AND (o.s).m = p.m) AS equal,
       count(*) FILTER (WHERE (o.s).code = format('%s%s%s', p.r, p.f, p.m)) AS code_equal,
       count(DISTINCT (o.s).code) AS distinct_codes
FROM ours o JOIN plain p USING (id);

-- Equal values always get equal scores.
SELECT count(*) AS tie_groups_with_two_scores FROM (
    SELECT grp, recency FROM (
        SELECT grp, recency, lifecycle.rfm_score(recency, frequency, monetary) OVER (PARTITION BY grp) AS s FROM rfm_pop) t
    GROUP BY grp, recency HAVING count(DISTINCT (s).r) > 1) x;

-- NULL measures: that score (and the code and segment) is NULL; N counts the non-NULL values.
SELECT id, (s).* FROM (
    SELECT id, lifecycle.rfm_score(r, f, m) OVER () AS s
    FROM (VALUES (1, 5, 1, 10), (2, NULL, 2, 20), (3, 15, 3, NULL), (4, 20, 4, 40), (5, 25, 5, 50)) v(id, r, f, m)) t
ORDER BY id;

-- Breakpoints: capture a population, then score one customer at a time; a member gets
-- exactly the window function's score.
CREATE TABLE rfm_bp AS
SELECT grp, lifecycle.rfm_breakpoints(recency, frequency, monetary) AS bp FROM rfm_pop GROUP BY grp;
SELECT grp, (bp).n FROM rfm_bp ORDER BY grp;
SELECT (bp).* FROM rfm_bp WHERE grp = 0 AND false;  -- the shape
WITH w AS (
    SELECT id, grp, recency, frequency, monetary,
           lifecycle.rfm_score(recency, frequency, monetary) OVER (PARTITION BY grp) AS s FROM rfm_pop
)
SELECT count(*) AS customers,
       count(*) FILTER (WHERE lifecycle.rfm_score(w.recency, w.frequency, w.monetary, b.bp) = w.s) AS agree
FROM w JOIN rfm_bp b USING (grp);
-- And on the small population, where the cut values can be read by hand.
SELECT lifecycle.rfm_breakpoints(recency, frequency, monetary) FROM rfm_small WHERE grp = 'a';
SELECT lifecycle.rfm_score(25, 4, 100, (SELECT lifecycle.rfm_breakpoints(recency, frequency, monetary)
                                        FROM rfm_small WHERE grp = 'a'));
SELECT lifecycle.rfm_breakpoints(recency, frequency, monetary) IS NULL AS empty_population FROM rfm_small WHERE false;

-- The segment rules: total and non-overlapping (every one of the 125 cells named once).
SELECT count(*) AS bad_cells FROM lifecycle.rfm_segments_check();
SELECT segment, count(*) AS cells FROM (
    SELECT (SELECT s.segment FROM lifecycle.rfm_segment_rules s
            WHERE r BETWEEN r_low AND r_high AND f BETWEEN f_low AND f_high AND m BETWEEN m_low AND m_high) AS segment
    FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m) c
GROUP BY segment ORDER BY segment;

-- Your own rules start as a copy of the defaults; broken rules are found by the check
-- and refused by the functions.
SELECT count(*) AS own_rules FROM lifecycle.rfm_segments;
BEGIN;
INSERT INTO lifecycle.rfm_segments SELECT * FROM lifecycle.rfm_default_segments;
UPDATE lifecycle.rfm_segments SET r_high = 2 WHERE segment = 'lost';  -- overlaps hibernating
SELECT * FROM lifecycle.rfm_segments_check() LIMIT 3;
SELECT expect_error($$SELECT lifecycle.rfm_score(recency, frequency, monetary) OVER () FROM rfm_small$$);
ROLLBACK;
BEGIN;
INSERT INTO lifecycle.rfm_segments SELECT * FROM lifecycle.rfm_default_segments WHERE segment <> 'champions';
SELECT count(*) AS unnamed_cells FROM lifecycle.rfm_segments_check();
SELECT expect_error($$SELECT lifecycle.rfm_score(recency, frequency, monetary) OVER () FROM rfm_small$$);
ROLLBACK;

-- Replaceable: a user's own table (three segments by recency alone).
BEGIN;
INSERT INTO lifecycle.rfm_segments VALUES
    ('low', 1, 2, 1, 5, 1, 5), ('mid', 3, 4, 1, 5, 1, 5), ('top', 5, 5, 1, 5, 1, 5);
SELECT count(*) AS bad_cells FROM lifecycle.rfm_segments_check();
SELECT * FROM lifecycle.rfm_segment_rules ORDER BY r_low;
SELECT id, (s).segment FROM (
    SELECT id, lifecycle.rfm_score(recency, frequency, monetary) OVER (PARTITION BY grp) AS s FROM rfm_small) t
ORDER BY id;
ROLLBACK;

DROP TABLE rfm_small, rfm_pop, rfm_bp;
