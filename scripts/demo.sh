#!/usr/bin/env bash
# The main job on the bundled CDNOW sample: builds and installs lifecycle, starts a
# throwaway PostgreSQL in a temporary folder, loads 2,357 customers' purchases, and
# shows where customers stand, their RFM segments, monthly churn and the stage changes
# of the last month; then replays 1997 with the win-back playbook on (what is sent, when,
# on which channel, and treated against held out). Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
AS_OF=${AS_OF:-1998-06-30}   # the day the CDNOW data ends

scripts/deps.sh
echo "Building and installing lifecycle ..."
make -s PG_CONFIG="$PG_CONFIG" -j"$(nproc)" >/dev/null
install_extension

dir=$(mktemp -d /tmp/lifecycle-demo.XXXXXX)
trap 'cluster_stop "$dir"; rm -rf "$dir"' EXIT
# The worker keeps the stage table of database postgres fresh every half second; the
# engine's date is the day the data ends, so the sample's customers are judged as then.
cluster_start "$dir" "${DEMO_PORT:-54329}" "shared_preload_libraries = 'lifecycle'" \
    "lifecycle.databases = 'postgres'" "lifecycle.refresh_interval = '500ms'" \
    "lifecycle.as_of = '$AS_OF'"
echo "Started a throwaway PostgreSQL in $dir"

psql() { command psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
psql -c "CREATE EXTENSION lifecycle" -c "CREATE TABLE cdnow_raw (line text)" \
     -c "\\copy cdnow_raw FROM 'data/cdnow_sample.txt'" -f data/cdnow.sql
psql -P footer=off -v as_of="$AS_OF" <<'SQL'
\pset null '-'
\echo
\echo 'Loaded the CDNOW sample (an online CD store, 1997-01-01 .. 1998-06-30):'
SELECT count(DISTINCT customer_id) AS customers, count(*) AS purchases, sum(amount) AS dollars FROM cdnow_orders;

-- One row per customer as of the day: first and last purchase, purchase days, spend.
CREATE TEMP TABLE history AS
SELECT customer_id, min(order_date) AS first, max(order_date) AS last,
       count(DISTINCT order_date) AS n, sum(amount) AS spend
FROM cdnow_orders WHERE order_date <= :'as_of' GROUP BY customer_id;

\echo
\echo 'Where customers stand on' :as_of '(lifecycle_stage, default policy):'
SELECT lifecycle.lifecycle_stage(first, last, n, :'as_of') AS stage, count(*) AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
FROM history GROUP BY 1 ORDER BY 1;

\echo
\echo 'RFM segments (rfm_score window function; recency in days, frequency in purchase days, monetary = total spend):'
SELECT (s).segment, count(*) AS customers, round(avg(:'as_of'::date - last)) AS avg_recency_days,
       round(avg(n), 1) AS avg_purchases, round(avg(spend), 2) AS avg_spend
FROM (SELECT *, lifecycle.rfm_score(:'as_of'::date - last, n, spend) OVER () AS s FROM history) t
GROUP BY 1 ORDER BY 2 DESC;

\echo
\echo 'Monthly churn (churn_status per customer, churn_counts over customers; lapsed = no purchase for 90 days):'
SELECT to_char(m, 'YYYY-MM') AS month, (c).base, (c).churned, (c).retained, (c).reactivated, (c).new,
       round((c).churn_rate::numeric * 100, 1) AS churn_pct
FROM (
    SELECT m, lifecycle.churn_counts(s) AS c
    FROM generate_series(date '1997-04-01', date '1998-06-01', interval '1 month') m
    CROSS JOIN LATERAL (
        SELECT lifecycle.churn_status(order_date, m::date, (m + interval '1 month')::date) AS s
        FROM cdnow_orders GROUP BY customer_id) per_customer
    GROUP BY m) t
ORDER BY m;

\echo
\echo 'Stage changes during the last month (from the stage a month earlier to the stage on' :as_of '):'
WITH before AS (
    SELECT customer_id, lifecycle.lifecycle_stage(min(order_date), max(order_date), count(DISTINCT order_date),
                                                  (:'as_of'::date - 30)) AS stage
    FROM cdnow_orders WHERE order_date <= :'as_of'::date - 30 GROUP BY customer_id
), now AS (
    SELECT customer_id, lifecycle.lifecycle_stage(first, last, n, :'as_of') AS stage FROM history
)
SELECT coalesce(b.stage, 'prospect') AS "from", n.stage AS "to", count(*) AS customers,
       CASE WHEN n.stage = 'lapsed' THEN 'churn'
            WHEN b.stage IN ('inactive', 'lapsed') AND n.stage IN ('active', 'new') THEN 'reactivation'
            ELSE '' END AS meaning
FROM now n LEFT JOIN before b USING (customer_id)
WHERE b.stage IS DISTINCT FROM n.stage
GROUP BY 1, 2, 4 ORDER BY 3 DESC;

\echo
\echo 'The stage engine: lifecycle.track() follows cdnow_orders; the background worker keeps'
\echo 'lifecycle.customer_stage fresh from now on. Stage counts as of' :as_of ':'
SELECT lifecycle.track('cdnow_orders', 'customer_id', 'order_date', 'amount') AS source_id \gset
SELECT stage, customers, percent FROM lifecycle.stage_counts ORDER BY stage;

\echo
\echo 'Live: this session LISTENs on channel lifecycle. Two lapsed customers buy again and a new one'
\echo 'buys for the first time (INSERT INTO cdnow_orders); the worker notices within half a second:'
LISTEN lifecycle;
INSERT INTO cdnow_orders (customer_id, master_id, order_date, cds, amount)
SELECT customer::int, 0, :'as_of', 1, 15.99 FROM lifecycle.customer_stage
WHERE stage = 'lapsed' ORDER BY customer::int LIMIT 2;
INSERT INTO cdnow_orders (customer_id, master_id, order_date, cds, amount) VALUES (90001, 0, :'as_of', 2, 29.98);
SELECT pg_sleep(2);
UNLISTEN lifecycle;
\echo 'The payload names no customer (any role may LISTEN); who it was is in the log, for'
\echo 'roles granted lifecycle_reader:'
SELECT id, customer, from_stage, to_stage, cause, effective FROM lifecycle.transitions
WHERE cause = 'purchase' ORDER BY id;

\echo
\echo 'Time passes: a month later (ALTER SYSTEM SET lifecycle.as_of; the worker reloads it), every'
\echo 'customer whose stage changed with time is logged step by step, each step on its own day:'
ALTER SYSTEM SET lifecycle.as_of = '1998-07-31';
SELECT pg_reload_conf();
SELECT pg_sleep(3);
SELECT from_stage, to_stage, count(*) AS customers, min(effective) AS first_day, max(effective) AS last_day
FROM lifecycle.transitions WHERE cause = 'time' GROUP BY 1, 2 ORDER BY 3 DESC;
SELECT stage, customers, percent FROM lifecycle.stage_counts ORDER BY stage;

\echo
\echo 'The worker (lifecycle.worker_status):'
SELECT database, running, ticks, errors, last_tick_ms, queued, due FROM lifecycle.worker_status;
SQL

# The playbook replay runs in a database of its own: the worker serves only database
# postgres (lifecycle.databases), with its engine date fixed, so nothing else refreshes
# the replay's tables while this session walks its own lifecycle.as_of forward.
REPLAY_TRACKED=1997-03-31   # tracked with the purchases up to here; win-back on from the next day
REPLAY_ENROLLED=1997-09-30  # uplift for the customers enrolled up to here, whose windows
REPLAY_UNTIL=1997-12-05     # (35 days of steps + 30 of attribution) have closed by here
psql -c "CREATE DATABASE replay"
rpsql() { command psql -X -q -v ON_ERROR_STOP=1 -d replay "$@"; }
rpsql -c "CREATE EXTENSION lifecycle" -c "CREATE TABLE cdnow_raw (line text)" \
      -c "\\copy cdnow_raw FROM 'data/cdnow_sample.txt'" -f data/cdnow.sql
rpsql -P footer=off -v tracked="$REPLAY_TRACKED" -v enrolled="$REPLAY_ENROLLED" \
      -v until="$REPLAY_UNTIL" <<'SQL'
\pset null '-'
SET TimeZone = 'UTC';   -- the source's days and the actions' times in UTC on every machine
SET lifecycle.as_of = :'tracked';
SET demo.until = :'until';   -- for the DO block below, which sees no psql variables
-- cdnow_replay starts with the purchases up to the day it is tracked; the later ones are
-- inserted on their own day as the replay advances, as the shop's application would.
CREATE TABLE cdnow_replay (LIKE cdnow_orders);
INSERT INTO cdnow_replay SELECT * FROM cdnow_orders WHERE order_date <= :'tracked';
CREATE INDEX ON cdnow_replay (customer_id, order_date);
SELECT lifecycle.track('cdnow_replay', 'customer_id', 'order_date', 'amount') AS source_id \gset
-- Consent: everyone by e-mail, 7 in 10 by SMS (by customer id, so every run is the same).
SELECT count(*) AS opt_ins FROM (
    SELECT lifecycle.opt_in('cdnow_replay', c::text, ch, 'signup')
    FROM (SELECT DISTINCT customer_id AS c FROM cdnow_orders) x, unnest('{email,sms}'::text[]) ch
    WHERE ch = 'email' OR c % 10 < 7) o \gset
-- The shipped win-back playbook, with 3 in 10 held out (not 1 in 10) so that the
-- comparison on a 2,357-customer sample has some power.
UPDATE lifecycle.playbooks SET enabled = true, holdout_share = 0.3 WHERE name = 'winback';

\echo
\echo 'Playbooks: the shipped win-back (e-mail, another a week later, SMS, a last notice, then a'
\echo 'sunset after two weeks of silence) for customers turning inactive or lapsed. CDNOW is'
\echo 'replayed in a database of its own (replay; the worker serves postgres): tracked with the'
\echo 'purchases up to' :tracked
\echo 'win-back on from the next day with 3 in 10 held out, all customers opted in to e-mail and'
\echo '7 in 10 to SMS; then lifecycle.as_of moves day by day to' :until
\echo 'each day''s real purchases inserted on their day, and what is due sent as the shop''s'
\echo 'application would (claim_actions, report_action ''sent'').'
-- One transaction per day (COMMIT in DO), as the worker would run it.
DO $$
DECLARE
    first date := current_setting('lifecycle.as_of')::date + 1;
    last date := current_setting('demo.until')::date;
BEGIN
    FOR d IN 0 .. last - first LOOP
        PERFORM set_config('lifecycle.as_of', (first + d)::text, false);
        INSERT INTO cdnow_replay SELECT * FROM cdnow_orders WHERE order_date = first + d;
        PERFORM lifecycle.refresh();
        PERFORM lifecycle.report_action(a.id, 'sent') FROM lifecycle.claim_actions('demo', 100000) a;
        COMMIT;
    END LOOP;
END
$$;

\echo
\echo 'What was sent, per week (of due_at) and channel, the first eight weeks:'
SELECT to_char(date_trunc('week', due_at), 'YYYY-MM-DD') AS week_of,
       count(*) FILTER (WHERE channel = 'email' AND kind = 'message') AS email,
       count(*) FILTER (WHERE channel = 'sms') AS sms,
       count(*) FILTER (WHERE kind = 'sunset') AS sunsets
FROM lifecycle.actions GROUP BY 1 ORDER BY 1 LIMIT 8;

\echo
\echo 'Per step, over the whole replay (fewer later on: a purchase stops the series; no SMS to'
\echo 'the 3 in 10 without SMS consent):'
SELECT step, channel, message_key, kind, count(*) AS actions, count(DISTINCT customer) AS customers
FROM lifecycle.actions GROUP BY 1, 2, 3, 4 ORDER BY 1;

\echo
\echo 'Two customers'' series, one with SMS consent and one without (due_at in UTC; the SMS'
\echo 'waits for the end of its quiet hours, 09:00):'
SELECT customer, step, channel, message_key, to_char(due_at, 'YYYY-MM-DD HH24:MI') AS due_at,
       coalesce(reason, '') AS reason
FROM lifecycle.actions
WHERE customer IN (
    (SELECT customer FROM lifecycle.enrollments
     WHERE status = 'sunset' AND customer::int % 10 < 7 ORDER BY started_on, id LIMIT 1),
    (SELECT customer FROM lifecycle.enrollments
     WHERE status = 'sunset' AND customer::int % 10 >= 7 ORDER BY started_on, id LIMIT 1))
ORDER BY customer::int, step;

\echo
\echo 'Suppressions (lifecycle.suppressions: a sunset withdraws e-mail consent once the series'
\echo 'ran out unanswered), and what happened besides actions (lifecycle.playbook_log; e-mail'
\echo 'steps skipped are those of customers sunset before who bought and drifted off again):'
SELECT channel, via, customers FROM lifecycle.suppressions ORDER BY 1, 2;
SELECT event, coalesce(step::text, '') AS step, coalesce(detail, '') AS detail, count(*) AS enrolments
FROM lifecycle.playbook_log GROUP BY 1, 2, 3 ORDER BY 4 DESC;
SELECT status, customers, reactivated FROM lifecycle.playbook_progress
WHERE playbook = 'winback' ORDER BY customers DESC;

\echo
\echo 'Does the win-back pay? lifecycle.playbook_uplift: per month of enrolment, the share who'
\echo 'bought again within the window (the 35 days of the series and 30 more), treated against'
\echo 'held out, the difference in points with its 95 % interval, and revenue per customer in'
\echo 'the window. Enrolments up to' :enrolled
\echo '(every window closed by the replay''s last day), and all those months together:'
WITH months AS (
    SELECT * FROM lifecycle.playbook_uplift WHERE playbook = 'winback' AND month <= :'enrolled'
), total AS (   -- the months pooled, with the view's formula
    SELECT sum(treated) AS treated, sum(treated_reactivated) AS treated_reactivated,
           sum(held_out) AS held_out, sum(held_out_reactivated) AS held_out_reactivated,
           sum(treated_reactivated)::float8 / sum(treated) AS p1,
           sum(held_out_reactivated)::float8 / sum(held_out) AS p0,
           sum(revenue_per_treated * treated) / sum(treated) AS r1,
           sum(revenue_per_held_out * held_out) / sum(held_out) AS r0
    FROM months
)
SELECT month, treated, bought, round(100 * p1::numeric, 1) AS pct, held_out, bought_,
       round(100 * p0::numeric, 1) AS pct_, round(100 * (p1 - p0)::numeric, 1) AS uplift,
       round(100 * low::numeric, 1) AS low, round(100 * high::numeric, 1) AS high,
       round(r1::numeric, 2) AS rev_treated, round(r0::numeric, 2) AS rev_held_out
FROM (
    SELECT to_char(month, 'YYYY-MM') AS month, treated, treated_reactivated AS bought,
           treated_rate AS p1, held_out, held_out_reactivated AS bought_, held_out_rate AS p0,
           uplift_low AS low, uplift_high AS high, revenue_per_treated AS r1,
           revenue_per_held_out AS r0
    FROM months
    UNION ALL
    SELECT 'all', treated, treated_reactivated, p1, held_out, held_out_reactivated, p0,
           p1 - p0 - 1.959964 * sqrt(p1 * (1 - p1) / treated + p0 * (1 - p0) / held_out),
           p1 - p0 + 1.959964 * sqrt(p1 * (1 - p1) / treated + p0 * (1 - p0) / held_out), r1, r0
    FROM total
) t
ORDER BY month = 'all', month;
\echo 'None of these messages was ever sent: the purchases are CDNOW''s own history and who is'
\echo 'held out is a hash, so treated and held out differ by chance only, and the intervals'
\echo 'should cover 0. The demo shows the method, not an effect.'
SQL

# The report: the charts of scripts/report.sh (stages per day, churn, the RFM grid,
# cohorts, stage flow, the models against the holdout), drawn from the replay's views,
# which hold its eight months of history.
report=${DEMO_REPORT:-lifecycle-report.html}
PGOPTIONS="-c lifecycle.as_of=$REPLAY_UNTIL" command psql -X -q -At -v ON_ERROR_STOP=1 -d replay \
    -v source=cdnow_replay -v flow_from=1997-09-05 -v flow_to="$REPLAY_UNTIL" \
    -v calibration_end=1997-08-31 -v holdout_end="$REPLAY_UNTIL" \
    -f scripts/report.sql | /usr/bin/python3 scripts/report_html.py >"$report"
echo
echo "Wrote the report, six charts in one HTML file with nothing to fetch: $(realpath "$report")"
echo "(scripts/report.sh draws the same from all 18 months of CDNOW.)"
echo "Done. (The cluster in $dir is stopped and removed.)"
