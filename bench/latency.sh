#!/usr/bin/env bash
# bench/latency.sh: how long a purchase takes to reach a LISTENing application under a
# steady load, with the worker's wake-up polling (lifecycle.poll_interval) off and on.
# On demand, not in CI. See bench/README.md.
#
#   bash bench/latency.sh                        # poll 0 (off), 250 ms, 100 ms; 60 s at 1000/s
#   POLLS="250ms" DURATION=20 bash bench/latency.sh   # quick
#
# For each poll interval, a throwaway cluster (track_commit_timestamp = on, notify_payload
# 'full', the worker on the bench database) and a tracked orders table with EXISTING
# customers; pgbench then inserts, at RATE transactions/s, one order per transaction for a
# customer never seen before, so every order makes exactly one prospect -> new transition.
# bench/latency_listen.c records the time each transition's notification was read; the
# latency of an order is that time minus pg_xact_commit_timestamp of the order's insert.
# The worker's CPU time (/proc/PID/schedstat) is read over the load and then over IDLE
# seconds without writes.
#
# Environment (defaults in brackets):
#   POLLS ["0 250ms 100ms"]   lifecycle.poll_interval of each run (0: off, today's worker)
#   REFRESH_INTERVAL [10s]    lifecycle.refresh_interval of every run
#   RATE [1000]               pgbench -R, transactions (orders) per second
#   DURATION [60]             pgbench -T, seconds
#   CLIENTS [16] THREADS [2]  pgbench -c, -j (each commit waits for its WAL flush: on a
#                             shared 2-core machine 4 clients held only ~450 orders/s)
#   EXISTING [10000]          customers in the table before the run (5 orders each)
#   CAPTURE [trigger]         how the table is tracked: trigger, or watermark (no INSERT
#                             trigger: track(..., watermark_column => 'id'))
#   IDLE [30]                 seconds of the idle CPU measurement (0: skip)
#   BENCH_PORT [56170]        port of the throwaway clusters
#   PG_CONFIG [pg_config]     which PostgreSQL installation to use
# Prints one table. Exit 1 when a committed order's transition did not arrive (or one
# arrived twice), or on an error.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
POLLS=${POLLS:-0 250ms 100ms}
REFRESH_INTERVAL=${REFRESH_INTERVAL:-10s}
RATE=${RATE:-1000}
DURATION=${DURATION:-60}
CLIENTS=${CLIENTS:-16}
THREADS=${THREADS:-2}
EXISTING=${EXISTING:-10000}
CAPTURE=${CAPTURE:-trigger}
IDLE=${IDLE:-30}
PORT=${BENCH_PORT:-56170}
FIRST_NEW=1000000001   # new customers' ids start here, far above the existing ones

dir=$(mktemp -d /tmp/lifecycle-bench-latency.XXXXXX)
lpid=
cleanup() {
    [ -n "$lpid" ] && kill "$lpid" 2>/dev/null || true
    cluster_stop "$dir/pg"
    rm -rf "$dir"
}
trap cleanup EXIT
chmod 755 "$dir"
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d bench "$@"; }

listener=$dir/latency_listen
gcc -O2 -Wall -I"$("$PG_CONFIG" --includedir)" -I/usr/include/postgresql bench/latency_listen.c \
    -o "$listener" -L"$("$PG_CONFIG" --libdir)" -lpq

# Every transaction: one order of a new customer (a sequence, so ids never repeat across
# clients), dated today.
cat >"$dir/order.sql" <<'SQL'
INSERT INTO orders (customer_id, ordered_at, amount)
VALUES (nextval('new_customer'), current_date, round((5 + random() * 95)::numeric, 2));
SQL
chmod 644 "$dir/order.sql"

# CPU time of a process in nanoseconds (schedstat: nanosecond resolution, where
# /proc/PID/stat counts 10 ms ticks).
cpu_ns() { cut -d' ' -f1 "/proc/$1/schedstat"; }

results=$dir/results
: >"$results"
for poll in $POLLS; do
    echo "== poll_interval $poll, refresh_interval $REFRESH_INTERVAL: setting up" >&2
    cluster_stop "$dir/pg"
    rm -rf "$dir/pg"
    cluster_start "$dir/pg" "$PORT" "shared_preload_libraries = 'lifecycle'" \
        "track_commit_timestamp = on" "lifecycle.notify_payload = 'full'" \
        "lifecycle.refresh_interval = '$REFRESH_INTERVAL'" "lifecycle.poll_interval = '$poll'" \
        "shared_buffers = '256MB'" "max_wal_size = '4GB'" "jit = off"
    psql -X -q -At -d postgres -c "CREATE DATABASE bench"
    q >/dev/null <<SQL
CREATE EXTENSION lifecycle;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint, ordered_at date,
                     amount numeric);
SELECT setseed(0.5);
INSERT INTO orders (customer_id, ordered_at, amount)
SELECT 1 + (i % $EXISTING), current_date - 1 - floor(random() * 700)::int,
       round((5 + random() * 95)::numeric, 2)
FROM generate_series(0, 5 * $EXISTING - 1) i;
CREATE INDEX ON orders (customer_id);
CREATE SEQUENCE new_customer START $FIRST_NEW;
SELECT lifecycle.track('orders', 'customer_id', 'ordered_at', 'amount',
                       watermark_column => CASE '$CAPTURE' WHEN 'watermark' THEN 'id' END);
VACUUM ANALYZE orders;
SQL
    # The worker is started once the database and the extension exist (a worker for a
    # missing database would be restarted only after a back-off).
    psql -X -q -At -d postgres -c "ALTER SYSTEM SET lifecycle.databases = 'bench'" \
        -c "SELECT pg_reload_conf()" >/dev/null
    wpid=
    for _ in $(seq 100); do
        wpid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'lifecycle worker'")
        [ -n "$wpid" ] && break
        sleep 0.1
    done
    [ -n "$wpid" ] || { echo "the worker did not start" >&2; exit 1; }
    # Its first tick (RFM scoring of the existing customers) out of the way.
    for _ in $(seq 300); do
        [ "$(q -c "SELECT coalesce(ticks, 0) FROM lifecycle.worker_status")" -gt 0 ] && break
        sleep 0.1
    done

    "$listener" "host=$PGHOST port=$PGPORT user=postgres dbname=bench" lifecycle \
        >"$dir/received.tsv" 2>"$dir/listen.err" &
    lpid=$!
    until grep -q ready "$dir/listen.err" 2>/dev/null; do sleep 0.1; done

    echo "== poll_interval $poll: $DURATION s of $RATE orders/s" >&2
    cpu0=$(cpu_ns "$wpid")
    t0=$(date +%s.%N)
    "$PG_BIN/pgbench" -n -h "$PGHOST" -p "$PGPORT" -U postgres -f "$dir/order.sql" -R "$RATE" \
        -c "$CLIENTS" -j "$THREADS" -T "$DURATION" bench >"$dir/pgbench.out" 2>"$dir/pgbench.err" \
        || { cat "$dir/pgbench.err" >&2; exit 1; }
    t1=$(date +%s.%N)
    cpu1=$(cpu_ns "$wpid")
    sed -n 's/^\(latency average\|rate limit schedule lag\|number of transactions actually processed\)/   pgbench: &/p' \
        "$dir/pgbench.out" >&2
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$dir/pgbench.out" | head -n 1)
    committed=$(q -c "SELECT count(*) FROM orders WHERE customer_id >= $FIRST_NEW")

    # Until the log holds a transition for every order (the next regular tick at the
    # latest), and a second more for the notifications to arrive.
    for _ in $(seq 600); do
        logged=$(q -c "SELECT count(*) FROM lifecycle.transitions
                       WHERE customer::bigint >= $FIRST_NEW AND cause = 'purchase'")
        [ "$logged" -ge "$committed" ] && break
        sleep 0.1
    done
    sleep 1
    kill "$lpid"
    wait "$lpid" || true
    lpid=

    # Idle: no writes for IDLE seconds, from a moment when nothing is queued.
    idle_cpu=
    if [ "$IDLE" -gt 0 ]; then
        echo "== poll_interval $poll: $IDLE s idle" >&2
        i0=$(cpu_ns "$wpid")
        sleep "$IDLE"
        i1=$(cpu_ns "$wpid")
        idle_cpu=$(echo "($i1 - $i0) / 1000000000" | bc -l)
    fi

    q -c "CREATE TABLE received (customer text, to_stage text, received_us bigint)" \
      -c "\\copy received FROM '$dir/received.tsv'"
    # Latency of each order: arrival of its transition minus the commit of its insert.
    # Missing: orders without an arrival; twice: customers that arrived more than once.
    q -F ' ' <<SQL >>"$results"
WITH arrival AS (
    SELECT customer, min(received_us) AS received_us, count(*) AS n FROM received
    WHERE to_stage = 'new' GROUP BY customer
), latency AS (
    SELECT (a.received_us - extract(epoch FROM pg_xact_commit_timestamp(o.xmin)) * 1e6)
           / 1000.0 AS ms
    FROM orders o JOIN arrival a ON a.customer = o.customer_id::text
    WHERE o.customer_id >= $FIRST_NEW
)
SELECT '$poll', '$REFRESH_INTERVAL', '$tps', $committed,
       (SELECT count(*) FROM received),
       $committed - (SELECT count(*) FROM latency),
       (SELECT count(*) FROM arrival WHERE n > 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric),
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY ms)::numeric),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric),
       round(max(ms)::numeric),
       round(($cpu1 - $cpu0) / 1e9 / ($t1 - $t0) * 100, 2),
       coalesce(round(${idle_cpu:-NULL}::numeric * 1000 / $IDLE, 3)::text, '-'),
       (SELECT ticks FROM lifecycle.worker_status)
FROM latency
SQL
    cluster_stop "$dir/pg"
done

echo
echo "== latency of a purchase to a LISTENing client: $RATE orders/s for $DURATION s, one new"
echo "   customer per order, $EXISTING existing customers; $CAPTURE capture; refresh_interval $REFRESH_INTERVAL;"
echo "   $(nproc) cores; $(date -u +%F), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
awk 'BEGIN {
         printf "%-7s %9s %9s %9s %7s %6s %7s %7s %7s %7s %8s %9s %12s %6s\n", "poll", "orders/s",
                "committed", "received", "missing", "twice", "p50 ms", "p90 ms", "p99 ms", "max ms",
                "p99 vs 1st", "CPU load", "CPU idle", "ticks"
     }
     NR == 1 { p99_first = $10 }
     {
         printf "%-7s %9.1f %9d %9d %7d %6d %7d %7d %7d %7d %9.2fx %8.2f%% %8s ms/s %6d\n",
                ($1 == "0" ? "off" : $1), $3, $4, $5, $6, $7, $8, $9, $10, $11,
                (p99_first > 0 ? $10 / p99_first : 0), $12, $13, $14
     }' "$results"
echo "(CPU load: the worker's CPU time over the load, as a share of one core; CPU idle: its CPU"
echo " time per second over $IDLE s without writes; ticks: the worker's ticks over the whole run)"
# Every committed order must have arrived, once.
awk '$6 != 0 || $7 != 0 || $4 != $5 { bad = 1 } END { exit bad }' "$results"
