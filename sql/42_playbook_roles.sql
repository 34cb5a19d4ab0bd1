-- Who may do what with playbooks (docs/security.md): editors edit playbooks and the
-- contact policy; the sending application (lifecycle_sender) claims actions, reports
-- outcomes and records consent, contact details and churn reasons, only through the
-- functions; readers read; nobody else touches any of it. As in 31_non_superuser,
-- each rule is checked both ways.
SET client_min_messages = warning;
SET TimeZone = 'UTC';
CREATE ROLE lp_nobody LOGIN;
CREATE ROLE lp_reader LOGIN IN ROLE lifecycle_reader;
CREATE ROLE lp_editor LOGIN IN ROLE lifecycle_editor;
CREATE ROLE lp_sender LOGIN IN ROLE lifecycle_sender;
CREATE TABLE lp_orders (customer text NOT NULL, ordered date NOT NULL);
INSERT INTO lp_orders VALUES ('x', '2026-01-01'), ('x', '2026-01-10'), ('y', '2026-01-05');
SELECT set_config('lifecycle.as_of', '2026-01-15', false) IS NOT NULL AS as_of_set;
SELECT lifecycle.track('lp_orders', 'customer', 'ordered');

-- The editor writes a playbook and a policy.
SET ROLE lp_editor;
INSERT INTO lifecycle.playbooks (name, trigger, to_stages, holdout_share)
VALUES ('lp', 'stage', '{inactive}', 0);
INSERT INTO lifecycle.playbook_steps (playbook, step, delay, channel, message_key)
VALUES ('lp', 1, '0 days', 'email', 'lp_1');
INSERT INTO lifecycle.contact_policy (name, channel, min_gap) VALUES ('lp_gap', 'email', '2 days');
UPDATE lifecycle.channels SET quiet_from = '22:00', quiet_until = '07:00' WHERE channel = 'email';
SELECT expect_error($$SELECT lifecycle.opt_in('lp_orders', 'x', 'email')$$);
SELECT expect_error($$SELECT * FROM lifecycle.claim_actions('lp_editor')$$);
SELECT expect_error($$INSERT INTO lifecycle.actions (enrollment_id, playbook, step, source_id, customer, channel, message_key, kind, scheduled_for, due_at) VALUES (1, 'lp', 1, 1, 'x', 'email', 'k', 'message', now(), now())$$);
RESET ROLE;

-- The sender records consent and contacts; it cannot write the tables behind them.
SET ROLE lp_sender;
SELECT lifecycle.opt_in('lp_orders', c, 'email', 'signup') FROM (VALUES ('x'), ('y')) v (c);
SELECT lifecycle.set_contact('lp_orders', 'x', 'Europe/Paris', '1980-05-05');
SELECT expect_error($$INSERT INTO lifecycle.consent VALUES (1, 'z', 'email', true, now(), 'forged')$$);
SELECT expect_error($$UPDATE lifecycle.enrollments SET status = 'finished'$$);
SELECT expect_error($$UPDATE lifecycle.actions SET status = 'sent'$$);
SELECT expect_error($$INSERT INTO lifecycle.playbooks (name, trigger, to_stages) VALUES ('spam', 'stage', '{new}')$$);
SELECT expect_error($$SELECT lifecycle._schedule(10)$$);
SELECT expect_error($$SELECT lifecycle.refresh()$$);
RESET ROLE;

-- The worker's role runs the scheduler: x turns inactive on 2026-03-12.
SELECT set_config('lifecycle.as_of', '2026-03-12', false) IS NOT NULL AS as_of_set;
SET ROLE lifecycle_worker;
SELECT (lifecycle.refresh()).actions AS made_by_the_worker_role;
RESET ROLE;

-- The sender claims, reports, opts out; the reader only reads.
SET ROLE lp_sender;
SELECT customer, channel, message_key, status FROM lifecycle.claim_actions('lp_sender', 5);
SELECT lifecycle.report_action(id, 'delivered', consumer => 'lp_sender')
FROM lifecycle.actions WHERE customer = 'x';
SELECT lifecycle.opt_out('lp_orders', 'y', 'email', 'complaint') AS canceled;
SELECT lifecycle.record_churn_reason('lp_orders', 'y', 'service') > 0 AS recorded;
RESET ROLE;
SET ROLE lp_reader;
SELECT customer, status FROM lifecycle.actions ORDER BY customer;
SELECT playbook, status, customers FROM lifecycle.playbook_progress ORDER BY status;
SELECT channel, via, customers FROM lifecycle.suppressions;
SELECT expect_error($$SELECT * FROM lifecycle.claim_actions('lp_reader')$$);
SELECT expect_error($$SELECT lifecycle.opt_out('lp_orders', 'x')$$);
SELECT expect_error($$UPDATE lifecycle.playbooks SET enabled = false$$);
RESET ROLE;
SET ROLE lp_nobody;
SELECT expect_error($$SELECT count(*) FROM lifecycle.actions$$);
SELECT expect_error($$SELECT count(*) FROM lifecycle.consent$$);
SELECT expect_error($$SELECT * FROM lifecycle.claim_actions('lp_nobody')$$);
SELECT expect_error($$SELECT lifecycle.report_action(1, 'clicked')$$);
SELECT lifecycle.value_tier(5) AS public_helper;
RESET ROLE;

-- The NOTIFY of actions carries ids of actions and counts, no customer id. (Entering
-- lapsed without buying since is the same episode: nobody is enrolled twice.)
SELECT set_config('lifecycle.as_of', '2026-04-11', false) IS NOT NULL AS as_of_set;
UPDATE lifecycle.playbooks SET to_stages = '{inactive,lapsed}' WHERE name = 'lp';
SELECT lifecycle.opt_in('lp_orders', 'y', 'email');
SELECT (lifecycle.refresh()).actions;
SELECT regexp_replace(lifecycle._actions_payload(min(id) - 1), '[0-9]+', 'N', 'g') AS payload,
       lifecycle._actions_payload(min(id) - 1) ~ '"[xy]"' AS names_a_customer
FROM lifecycle.actions;

SELECT lifecycle.untrack('lp_orders');
DELETE FROM lifecycle.playbooks WHERE name = 'lp';
DELETE FROM lifecycle.contact_policy WHERE name = 'lp_gap';
UPDATE lifecycle.channels SET quiet_from = NULL, quiet_until = NULL WHERE channel = 'email';
DROP TABLE lp_orders;
DROP OWNED BY lp_nobody, lp_reader, lp_editor, lp_sender;
DROP ROLE lp_nobody, lp_reader, lp_editor, lp_sender;
RESET lifecycle.as_of;
