-- Playbooks on a scripted history (docs/playbooks.md). Every date below is worked out
-- by hand from DESIGN.md's default windows: a customer whose last purchase is on
-- 2026-01-10 (two purchases) is at_risk from 2026-02-10 (d > 30) and inactive from
-- 2026-03-12 (d > 60: 21 days of January, 28 of February, 12 of March).
SET client_min_messages = warning;
SET TimeZone = 'UTC';
CREATE TABLE pb_orders (customer text NOT NULL, ordered date NOT NULL, amount numeric);
-- a, b, c, f, h: the same history; b buys again between steps; c has no SMS consent;
-- f opted out of everything; h opts out while a step is pending.
INSERT INTO pb_orders
SELECT c, d, 20 FROM unnest('{a,b,c,f,h,k}'::text[]) c, unnest('{2026-01-01,2026-01-10}'::date[]) d;
-- e: two months later (inactive from 2026-05-10: 21 days of March, 30 of April, 10 of
-- May), for the contact cap.
INSERT INTO pb_orders VALUES ('e', '2026-03-01', 20), ('e', '2026-03-10', 20);
SELECT set_config('lifecycle.as_of', '2026-01-15', false) IS NOT NULL AS as_of_set;
SELECT lifecycle.track('pb_orders', 'customer', 'ordered', 'amount');

-- The test's own playbook; the shipped ones stay disabled. The shipped contact policy
-- (a day between any two messages, 3 e-mails a week, 2 SMS a month) binds no one here.
INSERT INTO lifecycle.playbooks (name, trigger, to_stages, holdout_share, attribution_days)
VALUES ('wb', 'stage', '{inactive}', 0, 30);
INSERT INTO lifecycle.playbook_steps (playbook, step, delay, channel, message_key, kind) VALUES
    ('wb', 1, '0 days', 'email', 'wb_1', 'message'),
    ('wb', 2, '7 days', 'email', 'wb_2', 'message'),
    ('wb', 3, '7 days', 'sms', 'wb_3', 'message'),
    ('wb', 4, '10 days', 'email', 'wb_sunset', 'sunset');
SELECT lifecycle.opt_in('pb_orders', c, ch, 'signup')
FROM unnest('{a,b,c,e,f,h,k}'::text[]) c, unnest('{email,sms}'::text[]) ch
WHERE (c, ch) <> ('c', 'sms');
SELECT lifecycle.opt_out('pb_orders', 'f', NULL, 'unsubscribe link') AS canceled;
SELECT channel, granted, via FROM lifecycle.consent WHERE customer = 'f' ORDER BY channel;
SELECT count(*) AS consent_log_rows_of_f FROM lifecycle.consent_log WHERE customer = 'f';

-- Runs the engine day by day, as the worker would, through `last`; each day an
-- application sends what is due (claims it and reports it sent).
CREATE FUNCTION pb_days(first date, last date) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR d IN 0 .. last - first LOOP
        PERFORM set_config('lifecycle.as_of', (first + d)::text, false);
        PERFORM lifecycle.refresh();
        PERFORM lifecycle.report_action(a.id, 'sent') FROM lifecycle.claim_actions('app', 1000) a;
    END LOOP;
END
$$;
-- The actions so far, as (customer, step, channel, kind, due at, reason, status).
CREATE VIEW pb_actions AS
SELECT customer, step, channel, message_key, to_char(due_at, 'YYYY-MM-DD HH24:MI') AS due_at,
       to_char(scheduled_for, 'MM-DD HH24:MI') AS own_time, reason, status
FROM lifecycle.actions ORDER BY customer, step, id;

SELECT pb_days('2026-01-16', '2026-03-11');
SELECT count(*) AS actions_before_inactive FROM lifecycle.actions;
-- 2026-03-12: everyone (but e) inactive; step 1 by email that day.
SELECT set_config('lifecycle.as_of', '2026-03-12', false) IS NOT NULL AS as_of_set;
SELECT (lifecycle.refresh()).actions;
SELECT customer, playbook, started_on, status, next_step, to_char(next_due_at, 'MM-DD HH24:MI') AS next_due
FROM lifecycle.enrollments ORDER BY customer;
SELECT * FROM pb_actions;
-- h opts out of everything while its step 1 is pending: cancelled at once, series ended.
SELECT lifecycle.opt_out('pb_orders', 'h', NULL, 'support call') AS canceled;
SELECT customer, status FROM lifecycle.actions WHERE customer = 'h';
-- The application takes the due actions and reports on them; a second report of the
-- same outcome changes nothing. k clicks: its series stops (stop_on has click).
SELECT customer, step, status, attempts FROM lifecycle.claim_actions('app', 10) ORDER BY customer;
SELECT lifecycle.report_action(id, 'sent') FROM lifecycle.actions WHERE status = 'claimed' ORDER BY id;
SELECT lifecycle.report_action(id, 'sent') AS again FROM lifecycle.actions WHERE customer = 'a';
SELECT lifecycle.report_action(id, 'clicked') FROM lifecycle.actions WHERE customer = 'k';
SELECT count(*) AS outcomes_of_a FROM lifecycle.action_outcomes o
JOIN lifecycle.actions a ON a.id = o.action_id WHERE a.customer = 'a';
-- Outcomes only move forward: c's message bounces, and a late 'delivered' or 'failed'
-- does not undo that (both are still kept as reported).
SELECT lifecycle.report_action(id, 'bounced') AS c_bounced,
       lifecycle.report_action(id, 'delivered') AS late_delivered,
       lifecycle.report_action(id, 'failed', retry_after => '1 hour') AS late_failed
FROM lifecycle.actions WHERE customer = 'c';
SELECT string_agg(o.outcome, ',' ORDER BY o.outcome) AS outcomes_of_c FROM lifecycle.action_outcomes o
JOIN lifecycle.actions a ON a.id = o.action_id WHERE a.customer = 'c';
-- b buys on 2026-03-20, after step 2 (2026-03-19) and before step 3: the series stops.
SELECT pb_days('2026-03-13', '2026-03-19');
INSERT INTO pb_orders VALUES ('b', '2026-03-20', 35);
-- Through the sunset of a (2026-03-26 09:00 + 10 days).
SELECT pb_days('2026-03-20', '2026-04-06');
SELECT * FROM pb_actions;
SELECT customer, status, converted_on, revenue FROM lifecycle.enrollments ORDER BY customer;
SELECT e.customer, l.step, l.event, l.detail
FROM lifecycle.playbook_log l JOIN lifecycle.enrollments e ON e.id = l.enrollment_id
ORDER BY e.customer, l.id;
-- Sunset: a is suppressed on email, and that is logged; c likewise.
SELECT customer, channel, granted, via FROM lifecycle.consent
WHERE via = 'sunset' ORDER BY customer;
SELECT customer, channel, granted, via FROM lifecycle.consent_log
WHERE via = 'sunset' ORDER BY customer;
-- f (opted out of everything) never got an action, on any channel.
SELECT count(*) AS actions_of_f FROM lifecycle.actions WHERE customer = 'f';
-- Nothing is ever due without consent: no action on a channel the customer had not
-- agreed to when it was made.
SELECT count(*) AS actions_without_consent
FROM lifecycle.actions a
WHERE a.kind = 'message' AND NOT EXISTS (
    SELECT FROM lifecycle.consent_log l
    WHERE l.customer = a.customer AND l.channel = a.channel AND l.granted
      AND l.changed_at <= a.created_at
      AND NOT EXISTS (SELECT FROM lifecycle.consent_log l2
                      WHERE l2.customer = l.customer AND l2.channel = l.channel
                        AND l2.id > l.id AND NOT l2.granted AND l2.changed_at <= a.created_at));

-- A cap moves a step: at most one email per 10 days. e is inactive from 2026-05-10:
-- step 1 then, step 2 wanted on 05-17 but allowed on 05-20 (10 days after step 1),
-- step 3 (SMS) 7 days after that, 05-27, at 09:00 after the quiet hours.
INSERT INTO lifecycle.contact_policy (name, channel, max_messages, per)
VALUES ('email_cap', 'email', 1, '10 days');
SELECT pb_days('2026-04-07', '2026-05-18');
SELECT customer, status, waiting FROM lifecycle.enrollments WHERE customer = 'e';
SELECT pb_days('2026-05-19', '2026-05-30');
SELECT * FROM pb_actions WHERE customer = 'e';
SELECT l.step, l.event, l.detail FROM lifecycle.playbook_log l
JOIN lifecycle.enrollments e ON e.id = l.enrollment_id WHERE e.customer = 'e' ORDER BY l.id;
-- A step set to skip when capped is skipped instead (logged), and the next one keeps
-- its own time.
UPDATE lifecycle.playbook_steps SET when_capped = 'skip' WHERE playbook = 'wb' AND step = 2;
INSERT INTO pb_orders VALUES ('e', '2026-06-01', 20);
SELECT set_config('lifecycle.as_of', '2026-06-01', false) IS NOT NULL AS as_of_set;
SELECT (lifecycle.refresh()).transitions AS e_bought;
-- d > 60 after 2026-06-01: inactive on 2026-08-01.
SELECT pb_days('2026-07-31', '2026-08-16');
SELECT * FROM pb_actions WHERE customer = 'e' AND due_at >= '2026-08';
SELECT l.step, l.event, l.detail FROM lifecycle.playbook_log l
JOIN lifecycle.enrollments e ON e.id = l.enrollment_id
WHERE e.customer = 'e' AND e.started_on >= '2026-08-01' ORDER BY l.id;

-- Birthdays: once a year, on the day (29 February on 28 February in other years).
UPDATE lifecycle.playbooks SET enabled = true, holdout_share = 0 WHERE name = 'birthday';
SELECT lifecycle.set_contact('pb_orders', 'a', 'Europe/Berlin', '1990-08-20');
SELECT lifecycle.set_contact('pb_orders', 'k', NULL, '1992-02-29');
SELECT lifecycle.opt_in('pb_orders', 'a', 'email', 'birthday form');
SELECT pb_days('2026-08-17', '2026-08-20');
SELECT pb_days('2026-08-20', '2026-08-20');  -- the same day again: nothing twice
SELECT pb_days('2026-08-21', '2026-08-21');  -- (the engine's date never goes back)
SELECT set_config('lifecycle.as_of', '2027-02-28', false) IS NOT NULL AS as_of_set;
SELECT (lifecycle.refresh()).actions IS NOT NULL AS refreshed;
SELECT count(*) AS birthday_actions_2027_02_28 FROM lifecycle.actions
WHERE playbook = 'birthday' AND due_at >= '2027-02-27';
SELECT set_config('lifecycle.as_of', '2027-08-20', false) IS NOT NULL AS as_of_set;
SELECT (lifecycle.refresh()).actions IS NOT NULL AS refreshed;
SELECT count(*) AS birthday_actions_2027_08_20 FROM lifecycle.actions
WHERE playbook = 'birthday' AND due_at >= '2027-08-19';
-- a's greeting at midnight in Berlin (22:00 UTC the day before in summer).
SELECT customer, message_key, due_at AT TIME ZONE 'Europe/Berlin' AS local_due
FROM lifecycle.actions WHERE playbook = 'birthday' ORDER BY due_at;

-- Bad input names the argument (SQLSTATE 22023).
SELECT expect_error($$INSERT INTO lifecycle.playbooks (name, trigger, to_stages) VALUES ('x', 'stage', '{gone}')$$);
SELECT expect_error($$INSERT INTO lifecycle.playbooks (name, trigger, to_stages) VALUES ('x', 'weather', NULL)$$);
SELECT expect_error($$INSERT INTO lifecycle.playbooks (name, trigger, to_stages, holdout_share) VALUES ('x', 'stage', '{lapsed}', 1)$$);
SELECT expect_error($$INSERT INTO lifecycle.playbooks (name, trigger, to_stages, holdout_share) VALUES ('x', 'stage', '{lapsed}', -0.1)$$);
SELECT expect_error($$INSERT INTO lifecycle.playbook_steps (playbook, step, delay, channel, message_key) VALUES ('wb', 9, '-1 day', 'email', 'k')$$);
SELECT expect_error($$INSERT INTO lifecycle.playbook_steps (playbook, step, delay, channel, message_key) VALUES ('wb', 9, '1 day', 'fax', 'k')$$);
SELECT expect_error($$INSERT INTO lifecycle.contact_policy (name, channel, max_messages, per) VALUES ('z', 'email', 0, '1 day')$$);
SELECT expect_error($$INSERT INTO lifecycle.contact_policy (name, channel, stage, min_gap) VALUES ('z', 'email', 'sleeping', '1 day')$$);
SELECT expect_error($$INSERT INTO lifecycle.contact_policy (name, channel, min_gap) VALUES ('z', 'pigeon', '1 day')$$);
SELECT expect_error($$SELECT lifecycle.opt_in('pb_orders', 'a', 'fax')$$);
SELECT expect_error($$SELECT lifecycle.opt_out('pb_orders', NULL)$$);
SELECT expect_error($$SELECT lifecycle.opt_in('pg_class', 'a', 'email')$$);
SELECT expect_error($$SELECT lifecycle.claim_actions('app', 0)$$);
SELECT expect_error($$SELECT lifecycle.claim_actions('app', 1, '-1 minute')$$);
SELECT expect_error($$SELECT lifecycle.report_action(-1, 'sent')$$);
SELECT expect_error($$SELECT lifecycle.report_action(1, 'teleported')$$);
SELECT expect_error($$SELECT lifecycle.set_contact('pb_orders', 'a', 'Mars/Olympus')$$);
SELECT expect_error($$SELECT lifecycle.record_churn_reason('pb_orders', 'a', 'aliens')$$);

-- Churn reasons, and the lapsed customers by reason and value.
SELECT lifecycle.record_churn_reason('pb_orders', 'a', 'price', 'found it cheaper', 'survey') > 0 AS recorded;
SELECT lifecycle.record_churn_reason('pb_orders', 'c', 'delivery', NULL, 'support call') > 0 AS recorded;
SELECT reason, value_tier, customers, spend FROM lifecycle.lapsed_by_reason ORDER BY reason, value_tier;

DELETE FROM lifecycle.contact_policy WHERE name = 'email_cap';
DELETE FROM lifecycle.playbooks WHERE name = 'wb';
UPDATE lifecycle.playbooks SET enabled = false WHERE name = 'birthday';
SELECT lifecycle.untrack('pb_orders');
SELECT count(*) AS left_behind FROM lifecycle.enrollments;
RESET lifecycle.as_of;
DROP TABLE pb_orders;
DROP FUNCTION pb_days(date, date);
DROP VIEW pb_actions;
