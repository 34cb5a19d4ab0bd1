#!/usr/bin/env bash
# Crash cycles of the stage engine with the background worker: a throwaway server with
# shared_preload_libraries = lifecycle and the worker (refresh every 200 ms) follows an
# orders table while pgbench writes to it (inserts for random customers, some updates
# and deletes). Each cycle crashes something during the load, in turn:
#   worker    kill -9 of the lifecycle worker (backend_type 'lifecycle worker')
#   backend   kill -9 of a pgbench backend
#   immediate pg_ctl stop -m immediate, then start
# (a kill -9 makes the postmaster restart every backend, as after a real crash), writes
# again for a moment once the server is back, stops the load, waits for the worker to
# drain the queue (worker_status.queued = 0, then a refresh() of its own) and checks:
# the stage table equals a recomputation from the orders in plain SQL (0 rows differ)
# and every customer's transitions chain (none lost, none doubled). A cycle fails past
# 30 s. Prints a line per cycle (with whether the postmaster restarted the backends, the
# worker's pid after, and what the final refresh() still found) and ends with
# "crash_cycle: N passed, N failed". Needs the extension installed.
# With CAPTURE=watermark the table is tracked by its id (track(..., watermark_column)).
#   test/crash_cycle.sh [CYCLES]     (default 3; CRASH_PORT, default 54412)
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
cycles=${1:-3}
capture=${CAPTURE:-trigger}
db=lifecycle_cc
dir=$(mktemp -d /tmp/lifecycle-crash.XXXXXX)
load_pid=
stop_load() {   # the pgbench this script started, by its pid
    if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null; wait "$load_pid" 2>/dev/null; fi
    load_pid=
}
trap 'stop_load; cluster_stop "$dir"; rm -rf "$dir"' EXIT
fail() { echo "crash_cycle: $*"; echo "crash_cycle: 0 passed, 1 failed"; exit 1; }
pgctl() { as_server_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" "$@"; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
ready() {   # waits up to $1 s for the server to take queries
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        q -c 'SELECT 1' >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
worker_pid() { q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'lifecycle worker'
                     AND datname = current_database() LIMIT 1" 2>/dev/null; }

# The engine's date is fixed, so that the day cannot change under a run.
cluster_start "$dir" "${CRASH_PORT:-54412}" "shared_preload_libraries = 'lifecycle'" \
    "lifecycle.databases = '$db'" "lifecycle.refresh_interval = '200ms'" \
    "lifecycle.as_of = '2026-03-01'" "max_worker_processes = 8" \
    || fail "the server did not start"
psql -X -q -d postgres -c "CREATE DATABASE $db" || fail "no database"
q -v capture="$capture" <<'SQL' >/dev/null || fail "the setup failed"
CREATE EXTENSION lifecycle;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id integer NOT NULL,
                     ordered_at date NOT NULL, amount numeric(10, 2));
CREATE INDEX ON orders (customer_id);
INSERT INTO orders (customer_id, ordered_at, amount)
SELECT 1 + (i * 7919) % 400, date '2026-03-01' - (i * 104729) % 300, (i % 97) + 0.5
FROM generate_series(1, 2000) AS i;
SELECT lifecycle.track('orders', 'customer_id', 'ordered_at', 'amount',
                       watermark_column => CASE :'capture' WHEN 'watermark' THEN 'id' END);
\i test/stage_differences.sql
-- Transitions that do not chain: per customer the first from_stage is prospect, each
-- from_stage the previous to_stage, the last to_stage the stage now.
CREATE FUNCTION broken_links() RETURNS bigint LANGUAGE sql AS $$
    WITH t AS (
        SELECT customer, from_stage, to_stage,
               lag(to_stage, 1, 'prospect'::lifecycle.stage) OVER w AS previous,
               row_number() OVER w = count(*) OVER (PARTITION BY customer) AS is_last
        FROM lifecycle.transitions
        WINDOW w AS (PARTITION BY customer ORDER BY id))
    SELECT (SELECT count(*) FROM t WHERE from_stage <> previous)
         + (SELECT count(*)
            FROM (SELECT customer, to_stage FROM t WHERE is_last) l
            FULL JOIN lifecycle.customer_stage c USING (customer)
            WHERE coalesce(l.to_stage, 'prospect') <> coalesce(c.stage, 'prospect'))
$$;
SQL

# The load: 80 % inserts (two orders of a random customer, now and then dated a few days
# after the engine's date), 12 % an update moving a customer's latest order a week back,
# 8 % a delete of a customer's oldest order (some customers lose all their orders).
cat >"$dir/writer.sql" <<'EOF2'
\set c random(1, 450)
\set d random(-3, 300)
\set r random(1, 100)
\if :r <= 80
INSERT INTO orders (customer_id, ordered_at, amount)
VALUES (:c, date '2026-03-01' - :d, round((random() * 100)::numeric, 2)),
       (:c, date '2026-03-01' - (:d / 2), 5);
\elif :r <= 92
UPDATE orders SET ordered_at = ordered_at - 7, amount = amount + 1
WHERE id = (SELECT max(id) FROM orders WHERE customer_id = :c);
\else
DELETE FROM orders WHERE id = (SELECT min(id) FROM orders WHERE customer_id = :c);
\endif
EOF2
start_load() {   # seconds
    "$PG_BIN/pgbench" -n -c 3 -j 2 -T "$1" -f "$dir/writer.sql" "$db" >>"$dir/pgbench.log" 2>&1 &
    load_pid=$!
}
wait_load() {    # waits up to $1 s for pgbench to end, then stops it
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        kill -0 "$load_pid" 2>/dev/null || break
        sleep 0.1
    done
    stop_load
}

for ((i = 0; i < 50; i++)); do [ -n "$(worker_pid)" ] && break; sleep 0.1; done
[ -n "$(worker_pid)" ] || fail "no lifecycle worker"

kinds=(worker backend immediate)
passed=0
failed=0
for ((cycle = 1; cycle <= cycles; cycle++)); do
    kind=${kinds[$(((cycle - 1) % 3))]}
    started=$SECONDS
    note=
    restarts=$(grep -c 'terminating any other active server processes' "$dir/server.log")
    start_load 4
    sleep 2
    case $kind in
    worker)
        pid=$(worker_pid)
        if [ -n "$pid" ]; then kill -9 "$pid"; note="killed worker $pid"
        else note="no worker to kill"; fi
        sleep 1 ;;
    backend)
        pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench'
                    AND datname = current_database() LIMIT 1" 2>/dev/null)
        if [ -n "$pid" ]; then kill -9 "$pid"; note="killed pgbench backend $pid"
        else note="no pgbench backend to kill"; fi
        sleep 1 ;;
    immediate)
        pgctl -m immediate -w stop >/dev/null 2>&1
        pgctl -w -t 10 start >/dev/null 2>&1
        note="stop -m immediate, start" ;;
    esac
    ok=true
    ready 10 || { ok=false; note="$note; the server did not come back"; }
    [ "$(grep -c 'terminating any other active server processes' "$dir/server.log")" -gt "$restarts" ] \
        && note="$note (crash restart)"
    wait_load 3
    # writes once the server is back, with the worker refreshing
    $ok && { start_load 2; wait_load 3; }
    drained=
    if $ok; then
        for ((i = 0; i < 50; i++)); do
            [ "$(q -c 'SELECT queued FROM lifecycle.worker_status' 2>/dev/null)" = 0 ] \
                && { drained="queue drained by the worker in $(((i + 1) * 100)) ms"; break; }
            sleep 0.1
        done
        [ -n "$drained" ] || drained="queue not drained by the worker in 5 s"
        drained="$drained, worker pid now $(worker_pid)"
        result=$(q -c "SET statement_timeout = '5s'" \
                   -c "SELECT format('final refresh: %s queued;', queued) FROM lifecycle.refresh()" \
                   -c "SELECT format('%s orders, %s customers, %s transitions, %s rows differ, %s broken links',
                                     (SELECT count(*) FROM orders),
                                     (SELECT count(*) FROM lifecycle.customer_stage),
                                     (SELECT count(*) FROM lifecycle.transitions),
                                     stage_differences(), broken_links())" 2>&1 | tr '\n' ' ')
        result=${result% }
        case $result in
        *", 0 rows differ, 0 broken links") ;;
        *) ok=false ;;
        esac
    fi
    [ $((SECONDS - started)) -lt 30 ] || { ok=false; note="$note; over 30 s"; }
    if $ok; then passed=$((passed + 1)); verdict=pass; else failed=$((failed + 1)); verdict=FAIL; fi
    echo "cycle $cycle ($kind): $verdict in $((SECONDS - started)) s: $note; $drained; ${result:-}"
done
if [ "$failed" -ne 0 ]; then
    grep -E 'PANIC|ERROR' "$dir/server.log" | grep -v 'terminating connection' | tail -n 20
fi
echo "crash_cycle: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
