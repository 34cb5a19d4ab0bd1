-- Stored values mean the same for everyone (issue 21): what one role stores and the
-- worker reads later in its own session is checked independently of the caller's
-- session settings; and a stored value that fails at tick time anyway (a zone gone from
-- tzdata) costs only its customer.
SET client_min_messages = warning;
SET TimeZone = 'UTC';
CREATE TABLE sv_orders (customer text NOT NULL, ordered date NOT NULL, amount numeric);
SELECT set_config('lifecycle.as_of', '2026-05-01', false) IS NOT NULL AS as_of_set;
SELECT lifecycle.track('sv_orders', 'customer', 'ordered', 'amount') > 0 AS tracked;

-- A session-only abbreviation: 'WST' means something in this session only (the
-- worker reads zones with the server's abbreviations). Refused by set_contact and by
-- the table, naming the argument.
SET timezone_abbreviations = 'Australia';
SELECT (timestamptz '2026-05-01 00:00+00' AT TIME ZONE 'WST')::text AS wst_here;
SELECT expect_error($$SELECT lifecycle.set_contact('sv_orders', 'a', 'WST')$$);
SELECT expect_error($$INSERT INTO lifecycle.contacts (source_id, customer, time_zone)
                      SELECT id, 'a', 'WST' FROM lifecycle.sources WHERE source = 'sv_orders'::regclass$$);
RESET timezone_abbreviations;
-- Abbreviations of the default set, POSIX specifications ('UTC+3' is three hours west
-- of UTC) and offsets are refused too: only names of pg_timezone_names.
SELECT z, expect_error(format('SELECT lifecycle.set_contact(%L, %L, %L)', 'sv_orders', 'a', z)) AS error
FROM unnest(ARRAY['PDT', 'UTC+3', '<+03>-03', '+03:00', '3', 'Mars/Olympus', '']) z;
-- Full names are accepted in any case and stored as tzdata spells them (the same under
-- any session's abbreviations).
SET timezone_abbreviations = 'Australia';
SELECT lifecycle.set_contact('sv_orders', 'a', 'asia/TOKYO');
RESET timezone_abbreviations;
SELECT lifecycle.set_contact('sv_orders', 'b', 'America/New_York');
INSERT INTO lifecycle.contacts (source_id, customer, time_zone)
SELECT id, 'f', 'etc/gmt+3' FROM lifecycle.sources WHERE source = 'sv_orders'::regclass;
SELECT customer, time_zone FROM lifecycle.contacts ORDER BY customer;
-- The check is pg_timezone_names, independently computed: every name there is
-- accepted as itself, and no abbreviation of any shipped set passes unless a zone of
-- pg_timezone_names has that name.
SELECT count(*) AS names_not_accepted FROM pg_timezone_names n
WHERE lifecycle._zone_name(n.name) IS DISTINCT FROM n.name
   OR lifecycle._zone_name(lower(n.name)) IS DISTINCT FROM n.name;
SET timezone_abbreviations = 'Australia';
SELECT count(*) AS abbreviations_accepted FROM pg_timezone_abbrevs a
WHERE lifecycle._zone_name(a.abbrev) IS NOT NULL
  AND NOT EXISTS (SELECT FROM pg_timezone_names n WHERE upper(n.name) = upper(a.abbrev));
RESET timezone_abbreviations;

-- lifecycle.as_of, read again by other sessions (the worker's), is kept in ISO form as
-- the setting session read it: 02/01/2026 under DMY is 2 January for everyone.
SET DateStyle = 'SQL, DMY';
SELECT set_config('lifecycle.as_of', '02/01/2026', false) AS as_of_kept;
RESET DateStyle;
SELECT current_setting('lifecycle.as_of') AS as_of_read_elsewhere, lifecycle.engine_date();
SELECT expect_error($$SET lifecycle.as_of = 'infinity'$$);
SELECT set_config('lifecycle.as_of', '2026-05-01', false) IS NOT NULL AS as_of_set;

-- Zones that fail at tick time: c's is gone from tzdata, d's was stored before 0.3.0
-- checked names (planted past the check, as a superuser). A playbook on entering
-- 'new', by SMS (quiet 21:00-09:00 local time).
INSERT INTO lifecycle.playbooks (name, trigger, to_stages, holdout_share, attribution_days)
VALUES ('sv', 'stage', '{new}', 0, 30);
INSERT INTO lifecycle.playbook_steps (playbook, step, delay, channel, message_key, kind)
VALUES ('sv', 1, '0 days', 'sms', 'sv_1', 'message');
SELECT count(lifecycle.opt_in('sv_orders', c, 'sms', 'signup')) AS opted_in
FROM unnest('{a,b,c,d,e,f}'::text[]) c;
ALTER TABLE lifecycle.contacts DISABLE TRIGGER contacts_check;
INSERT INTO lifecycle.contacts (source_id, customer, time_zone)
SELECT id, c, z FROM lifecycle.sources, (VALUES ('c', 'Mars/Olympus'), ('d', 'WST')) v (c, z)
WHERE source = 'sv_orders'::regclass;
ALTER TABLE lifecycle.contacts ENABLE TRIGGER contacts_check;
SELECT customer, time_zone FROM lifecycle.contacts
WHERE time_zone IS NOT NULL AND lifecycle._usable_zone(time_zone) IS NULL ORDER BY customer;
INSERT INTO sv_orders SELECT c, '2026-05-01', 10 FROM unnest('{a,b,c,d,e,f}'::text[]) c;
-- Everyone is enrolled and gets the step: a, b and f in their zones, c, d and e (no
-- zone) in the source's (UTC, the TimeZone of track()).
SELECT r.enrolled, r.actions FROM lifecycle.refresh() r;
-- Independently: midnight of 2026-05-01 local time, and the SMS at 09:00 local time.
WITH zones (customer, zone) AS (VALUES ('a', 'Asia/Tokyo'), ('b', 'America/New_York'),
                                       ('c', 'UTC'), ('d', 'UTC'), ('e', 'UTC'), ('f', 'Etc/GMT+3'))
SELECT z.customer, a.scheduled_for = timestamp '2026-05-01 00:00' AT TIME ZONE z.zone AS step_time_right,
       a.due_at = timestamp '2026-05-01 09:00' AT TIME ZONE z.zone AS sms_after_quiet_hours,
       a.status
FROM zones z
LEFT JOIN lifecycle.enrollments e ON e.customer = z.customer AND e.playbook = 'sv'
LEFT JOIN lifecycle.actions a ON a.enrollment_id = e.id
ORDER BY z.customer;

SELECT lifecycle.untrack('sv_orders');
DELETE FROM lifecycle.playbooks WHERE name = 'sv';
DROP TABLE sv_orders;

-- A source's zone, stored by track() from the tracker's session, means the same in every
-- writer's and reader's session: 'EST' is a zone of its own (-5) and, by default, an
-- abbreviation of the same offset; under timezone_abbreviations = 'Australia' it is +10,
-- and AT TIME ZONE takes an abbreviation first. An order at 03:00 UTC on 1 February is on
-- 31 January in EST, whoever writes it and whoever recomputes it.
SET TimeZone = 'EST';
CREATE TABLE sv_tz (customer integer, ordered timestamptz, amount numeric);
INSERT INTO sv_tz VALUES (1, '2026-01-10 12:00+00', 1);
SELECT lifecycle.track('sv_tz', 'customer', 'ordered', 'amount') > 0 AS tracked;
RESET TimeZone;
SET timezone_abbreviations = 'Australia';
INSERT INTO sv_tz VALUES (1, '2026-02-01 03:00+00', 1);
RESET timezone_abbreviations;
SELECT (lifecycle.refresh()).queued;
SELECT c.last_purchase, c.purchases FROM lifecycle.customer_stage c
JOIN lifecycle.sources s ON s.id = c.source_id WHERE s.source = 'sv_tz'::regclass;
-- ... and a recomputation in a session of other abbreviations agrees (0 differences).
SET timezone_abbreviations = 'Australia';
SELECT lifecycle.resync('sv_tz') AS differences;
RESET timezone_abbreviations;
SELECT lifecycle.untrack('sv_tz');
DROP TABLE sv_tz;
RESET lifecycle.as_of;
