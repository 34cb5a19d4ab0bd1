-- lifecycle.policies: presets shipped with the extension, a user's own policies, and
-- what pg_dump keeps.
SELECT name, onboarding_days, at_risk_days, inactive_days, lapsed_days, rhythm_factor,
       rhythm_min_purchases, builtin
FROM lifecycle.policies ORDER BY name;

-- The table is a configuration table: pg_dump dumps the user's rows (NOT builtin).
SELECT c.relname, e.extcondition
FROM pg_extension x, unnest(x.extconfig) WITH ORDINALITY AS c_oid(oid, i)
JOIN pg_class c ON c.oid = c_oid.oid
LEFT JOIN LATERAL (SELECT x.extcondition[c_oid.i] AS extcondition) e ON true
WHERE x.extname = 'lifecycle' ORDER BY c.relname;

-- A user's own policy, used by name.
INSERT INTO lifecycle.policies (name, onboarding_days, at_risk_days, inactive_days, lapsed_days, description)
VALUES ('weekly_box', 7, 10, 20, 40, 'meal-kit subscribers');
SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-03-01', 9, date '2024-03-25', 'weekly_box');

-- Editing a preset makes it the user's (dumped from then on) ...
UPDATE lifecycle.policies SET lapsed_days = 120 WHERE name = 'default';
SELECT name, lapsed_days, builtin FROM lifecycle.policies WHERE name IN ('default', 'weekly_box') ORDER BY name;
-- ... and the stage follows the edit: 100 days idle is inactive, no longer lapsed.
SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01', 1, date '2024-04-10');

-- Inserting a row under a preset's name replaces the preset (this is how a restore
-- brings the user's version back over the one CREATE EXTENSION installs).
INSERT INTO lifecycle.policies (name, onboarding_days, at_risk_days, inactive_days, lapsed_days)
VALUES ('saas', 10, 20, 30, 40);
SELECT name, onboarding_days, lapsed_days, builtin FROM lifecycle.policies WHERE name = 'saas';

-- The rows pg_dump would write: exactly the user's.
SELECT name FROM lifecycle.policies WHERE NOT builtin ORDER BY name;

-- Constraints keep impossible policies out of the table.
SELECT expect_error(sql) FROM (VALUES
    ($$INSERT INTO lifecycle.policies (name, at_risk_days) VALUES ('bad', -1)$$),
    ($$INSERT INTO lifecycle.policies (name, at_risk_days, inactive_days) VALUES ('bad', 70, 60)$$),
    ($$INSERT INTO lifecycle.policies (name, rhythm_factor) VALUES ('bad', 'Infinity')$$),
    ($$INSERT INTO lifecycle.policies (name, rhythm_min_purchases) VALUES ('bad', 1)$$)
) AS cases(sql);

-- An edit takes effect from the next statement on, also inside a transaction.
BEGIN;
UPDATE lifecycle.policies SET lapsed_days = 50, inactive_days = 40, at_risk_days = 20 WHERE name = 'weekly_box';
SELECT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-03-01', 9, date '2024-04-25', 'weekly_box');
ROLLBACK;

-- Rows that alternate between more policies than a call site caches (8): each row still
-- gets its own policy's windows (checked against the windows form).
INSERT INTO lifecycle.policies (name, onboarding_days, at_risk_days, inactive_days, lapsed_days)
SELECT 'p' || i, 5 * i, 10 * i, 15 * i, 20 * i FROM generate_series(1, 12) i;
SELECT count(*) AS rows, count(*) FILTER (WHERE
           lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01' + g % 40, 1 + g % 4, date '2024-03-01', 'p' || (1 + g % 12))
         = lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01' + g % 40, 1 + g % 4, date '2024-03-01',
                                     5 * (1 + g % 12), 10 * (1 + g % 12), 15 * (1 + g % 12), 20 * (1 + g % 12), 2.0, 3)) AS equal,
       count(DISTINCT lifecycle.lifecycle_stage(date '2024-01-01', date '2024-01-01' + g % 40, 1 + g % 4,
                                                date '2024-03-01', 'p' || (1 + g % 12))) AS stages
FROM generate_series(1, 1000) g;
DELETE FROM lifecycle.policies WHERE name ~ '^p[0-9]+$';

-- Back to the shipped state for the tests that follow.
DELETE FROM lifecycle.policies WHERE name IN ('weekly_box');
UPDATE lifecycle.policies SET lapsed_days = 90 WHERE name = 'default';
UPDATE lifecycle.policies SET onboarding_days = 30, at_risk_days = 35, inactive_days = 45,
       lapsed_days = 60, rhythm_factor = 1.5 WHERE name = 'saas';
SELECT name, onboarding_days, at_risk_days, inactive_days, lapsed_days, rhythm_factor
FROM lifecycle.policies ORDER BY name;
