#!/usr/bin/env bash
# The three example LISTEN clients (examples/python, examples/node, examples/c) against a
# live server whose connections keep being killed: starts a throwaway cluster with the
# worker, a tracked orders table and a reader role, starts the clients, writes orders
# for CLIENTS_SECONDS (default 15) while moving the engine's date (so purchases and time
# both log transitions), and meanwhile terminates the clients' backends (found by
# application_name) every 1.5 s and restarts each client process once (it resumes from
# its state file). Then, per client: the ids it processed are exactly the non-initial
# transition ids of the log, none twice. Ends with "clients: N passed, N failed".
# Needs the extension installed (make install), node + npm and Debian's python3-psycopg:
# a missing one is a failure, not a skip. The npm install goes to examples/node/node_modules.
# The server listens on CLIENTS_PORT (default 54335), on a socket in a temporary folder.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. scripts/cluster.sh
SECONDS_OF_WRITES=${CLIENTS_SECONDS:-15}
PORT=${CLIENTS_PORT:-54335}
PYTHON=/usr/bin/python3  # Debian's, which has python3-psycopg (another python3 may not)
clients=(python node c)
dir=$(mktemp -d /tmp/lifecycle-clients.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    cluster_stop "$dir"
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "clients: $*"; echo "clients: 0 passed, ${#clients[@]} failed"; exit 1; }

# The three clients, ready to run.
command -v node >/dev/null && command -v npm >/dev/null || fail "node and npm are missing (apt-get install nodejs npm)"
"$PYTHON" -c 'import psycopg' 2>/dev/null || fail "psycopg is missing (apt-get install python3-psycopg)"
# npm ci only when package-lock.json changed since the last install (it needs the registry).
if [ ! examples/node/node_modules/.package-lock.json -nt examples/node/package-lock.json ]; then
    (cd examples/node && npm ci --no-audit --no-fund --loglevel=error) >"$dir/npm.log" 2>&1 \
        || { cat "$dir/npm.log"; fail "npm ci failed in examples/node"; }
fi
gcc -O2 -Wall -Wextra -Werror -I"$("$PG_CONFIG" --includedir)" -I/usr/include/postgresql \
    examples/c/listen_transitions.c -o "$dir/listen_transitions" -L"$("$PG_CONFIG" --libdir)" -lpq \
    2>"$dir/gcc.log" || { cat "$dir/gcc.log"; fail "the C client did not build"; }
client_command() {
    case $1 in
        python) echo "$PYTHON $root/examples/python/listen_transitions.py" ;;
        node) echo "node $root/examples/node/listen_transitions.js" ;;
        c) echo "$dir/listen_transitions" ;;
    esac
}

# The server runs as postgres and the clients as us: the socket folder must be open to both.
chmod 755 "$dir"
cluster_start "$dir" "$PORT" "shared_preload_libraries = 'lifecycle'" \
    "lifecycle.databases = 'clients'" "lifecycle.refresh_interval = '200ms'" \
    "lifecycle.as_of = '2026-01-01'" "synchronous_commit = off" || fail "the server did not start"
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d clients "$@"; }
psql -X -q -d postgres -c "CREATE DATABASE clients" || fail "no database"
# Orders before track() give initial transitions, which no client may process.
q <<'SQL' >/dev/null || fail "no tracked table"
CREATE EXTENSION lifecycle;
CREATE TABLE orders (customer_id int NOT NULL, ordered_at date NOT NULL, amount numeric);
CREATE INDEX ON orders (customer_id);
INSERT INTO orders SELECT c, date '2025-12-01' + c % 30, 10 FROM generate_series(1, 200) c;
SELECT lifecycle.track('orders', 'customer_id', 'ordered_at', 'amount');
CREATE ROLE client_reader LOGIN IN ROLE lifecycle_reader;
SQL

mkdir -p "$dir/clients"
start_client() {  # name: runs it in the background, as the reader role
    PGDATABASE=clients PGUSER=client_reader LIFECYCLE_STATE="$dir/clients/$1.last_id" \
        LIFECYCLE_OUT="$dir/clients/$1.out" $(client_command "$1") 2>>"$dir/clients/$1.log" &
    pids+=($!)
    eval "pid_$1=$!"
}
connected() {  # name: whether its connection is up
    [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lifecycle-example-$1'")" -gt 0 ]
}
t_setup=$SECONDS
for c in "${clients[@]}"; do start_client "$c"; done
for c in "${clients[@]}"; do
    for _ in $(seq 100); do connected "$c" && break; sleep 0.1; done
    connected "$c" || { cat "$dir/clients/$c.log"; fail "$c did not connect"; }
done
t_connected=$SECONDS

# The writer: every 0.1 s three new customers (new) and two purchases by known ones
# (purchase transitions back to active); every 2 s the engine's date moves 9 days on
# (time transitions: new -> active/at_risk -> inactive ...).
steps=$((SECONDS_OF_WRITES * 10))
{
    echo "\\set QUIET on"
    echo "SELECT clock_timestamp() AS start \\gset"
    for i in $(seq "$steps"); do
        echo "INSERT INTO orders SELECT 1000 + $i * 3 + k, current_setting('lifecycle.as_of')::date, 20 FROM generate_series(0, 2) k;"
        echo "INSERT INTO orders SELECT 1 + (random() * (1000 + $i * 3))::int, current_setting('lifecycle.as_of')::date, 30 FROM generate_series(1, 2);"
        if [ $((i % 20)) -eq 0 ]; then
            echo "ALTER SYSTEM SET lifecycle.as_of = '$(date -d "2026-01-01 + $((i / 20 * 9)) days" +%F)';"
            echo "SELECT pg_reload_conf() \\g /dev/null"
        fi
        # on a schedule: a slow statement does not make the run longer
        echo "SELECT pg_sleep_until(:'start'::timestamptz + interval '0.1 s' * $i) \\g /dev/null"
    done
    echo "SELECT round(extract(epoch FROM clock_timestamp() - :'start')::numeric, 1) AS took \\gset"
    echo "\\echo :took"
} >"$dir/writer.sql"
psql -X -q -v ON_ERROR_STOP=1 -d clients -f "$dir/writer.sql" >"$dir/writer.log" 2>&1 &
writer=$!
pids+=($writer)

# The killer: terminates the clients' backends every 1.5 s, all of them or one; restarts
# each client process once (SIGTERM: it stops between batches, then resumes from its file).
declare -A kills=()
round=0
while kill -0 "$writer" 2>/dev/null; do
    sleep 1.5
    round=$((round + 1))
    if [ $((round % 2)) -eq 1 ]; then target="LIKE 'lifecycle-example-%'"
    else target="= 'lifecycle-example-${clients[$(( (round / 2) % 3 ))]}'"; fi
    # OFFSET 0 keeps the filter below pg_terminate_backend(): it kills nobody else.
    for c in $(q -c "SELECT substr(application_name, 19) FROM (SELECT pid, application_name
                     FROM pg_stat_activity WHERE application_name $target OFFSET 0) a
                     WHERE pg_terminate_backend(pid)"); do
        kills[$c]=$(( ${kills[$c]:-0} + 1 ))
    done
    if [ "$round" -ge 3 ] && [ "$round" -le 5 ]; then
        c=${clients[$((round - 3))]}
        pid_var=pid_$c
        kill -TERM "${!pid_var}"
        wait "${!pid_var}" 2>/dev/null
        echo "test: restarted" >>"$dir/clients/$c.log"
        start_client "$c"
    fi
done
wait "$writer" || { cat "$dir/writer.log"; fail "the writer failed"; }
t_written=$SECONDS

# The worker drains the queue and the due time steps; then the clients catch up.
last=""
for _ in $(seq 100); do
    now=$(q -c "SELECT (SELECT count(*) FROM lifecycle.change_queue) || ' ' ||
                       coalesce((SELECT max(id) FROM lifecycle.transitions), 0)")
    [ "$now" = "$last" ] && [ "${now%% *}" = 0 ] && break
    last=$now
    sleep 0.5
done
t_settled=$SECONDS
q -c "SELECT id FROM lifecycle.transitions WHERE cause <> 'initial' ORDER BY id" >"$dir/expected"
final=$(tail -n 1 "$dir/expected")
echo "clients: $(wc -l <"$dir/expected") transitions logged (not initial), last id ${final:-none};" \
     "$(q -c "SELECT string_agg(cause || ' ' || n, ', ') FROM (SELECT cause, count(*) n FROM lifecycle.transitions GROUP BY cause ORDER BY cause) x")"
[ -n "$final" ] || fail "no transition was logged"

passed=0
failed=0
for c in "${clients[@]}"; do
    for _ in $(seq 100); do
        [ "$(cat "$dir/clients/$c.last_id" 2>/dev/null || echo 0)" -ge "$final" ] && break
        sleep 0.2
    done
    cut -f1 "$dir/clients/$c.out" | sort -n >"$dir/clients/$c.ids"
    twice=$(uniq -d "$dir/clients/$c.ids" | wc -l)
    missing=$(comm -23 "$dir/expected" <(sort -nu "$dir/clients/$c.ids") | wc -l)
    extra=$(comm -13 "$dir/expected" <(sort -nu "$dir/clients/$c.ids") | wc -l)
    reconnects=$(grep -c 'caught up to id' "$dir/clients/$c.log")
    summary="$c: $(wc -l <"$dir/clients/$c.ids") processed, $missing missing, $extra not in the log,"
    summary+=" $twice twice; backend killed ${kills[$c]:-0} times, process restarted once, caught up after connecting $reconnects times"
    if [ "$twice" -eq 0 ] && [ "$missing" -eq 0 ] && [ "$extra" -eq 0 ] && [ "${kills[$c]:-0}" -ge 2 ]; then
        passed=$((passed + 1)); echo "clients: ok   $summary"
    else
        failed=$((failed + 1)); echo "clients: FAIL $summary"; tail -n 20 "$dir/clients/$c.log"
    fi
done
echo "clients: timings: setup ${t_setup} s, clients connected at $t_connected s, writes of $(tail -n 1 "$dir/writer.log") s until $t_written s, worker done at $t_settled s, clients done at $SECONDS s"
echo "clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
