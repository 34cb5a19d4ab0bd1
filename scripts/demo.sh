#!/usr/bin/env bash
# The main job on the bundled CDNOW sample: builds and installs lifecycle, starts a
# throwaway PostgreSQL in a temporary folder, loads 2,357 customers' purchases, and
# shows where customers stand, their RFM segments, monthly churn and the stage changes
# of the last month. Everything is removed at the end.
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
echo
echo "Done. (The cluster in $dir is stopped and removed.)"
