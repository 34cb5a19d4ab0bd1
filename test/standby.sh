#!/usr/bin/env bash
# The engine and its worker under replication, on throwaway clusters (unix sockets only).
#  A. Physical standby: a primary with the worker follows `orders`; pg_basebackup -R makes
#     a hot standby with the same settings. Checks: the standby runs no lifecycle process
#     and logs no lifecycle ERROR/FATAL; the stage table the primary's worker fills after
#     new orders reaches the standby by replay, identical; once the standby is promoted
#     (the old primary stopped) its worker starts, ticks, follows new orders (0 stages
#     differ from a recomputation) and its transition ids continue after the old ones.
#  B. Logical replication: a publisher (wal_level = logical, no extension) and a
#     subscriber whose copy of `orders` is tracked. Checks: the initial copy is captured;
#     rows inserted, updated, deleted on the publisher arrive; the apply worker fires no
#     statement triggers (docs/security.md), so the stage table misses them and nothing
#     is queued; lifecycle.resync() finds and repairs that gap (corrections logged, then 0
#     stages differ); a TRUNCATE on the publisher is applied and captured.
# Ends with "standby: N passed, N failed". Needs the extension installed for PG_CONFIG.
#   test/standby.sh        (STANDBY_PORT, default 56400: four ports from it)
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
base=${STANDBY_PORT:-56400}
db=lifecycle_sb
top=$(mktemp -d /tmp/lifecycle-standby.XXXXXX)
chmod 755 "$top"
pdir=$top/primary sdir=$top/standby ldir=$top/publisher udir=$top/subscriber
pport=$base sport=$((base + 1)) lport=$((base + 2)) uport=$((base + 3))
trap 'for d in "$sdir" "$pdir" "$udir" "$ldir"; do cluster_stop "$d"; done; rm -rf "$top"' EXIT
passed=0
failed=0
check() {  # description, then a command that succeeds when the check passes
    local what=$1
    shift
    if "$@"; then passed=$((passed + 1)); echo "ok:   $what"
    else failed=$((failed + 1)); echo "FAIL: $what"; fi
}
finish() {
    echo "standby: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
fail() { echo "standby: $*"; failed=$((failed + 1)); finish; }
q() {  # dir port SQL...: one value per line
    local dir=$1 port=$2
    shift 2
    psql -X -q -At -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d "$db" "$@"
}
until_true() {  # seconds, then a command: polled every 0.1 s
    local i n=$(($1 * 10))
    shift
    for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done
    return 1
}
worker_settings=("shared_preload_libraries = 'lifecycle'" "lifecycle.databases = '$db'"
    "lifecycle.refresh_interval = '200ms'" "lifecycle.as_of = '2026-03-01'"
    "max_worker_processes = 12")
checksum="SELECT count(*) || ' ' || md5(coalesce(string_agg(c::text, '|' ORDER BY source_id, customer), ''))
          FROM lifecycle.customer_stage c"
ticks() { q "$1" "$2" -c "SELECT coalesce(ticks, 0) FROM lifecycle.worker_status" 2>/dev/null; }
drained() {  # dir port: nothing queued and two ticks since the call that started the wait
    [ "$(q "$1" "$2" -c 'SELECT queued FROM lifecycle.worker_status' 2>/dev/null)" = 0 ] &&
        [ "$(ticks "$1" "$2")" -ge $((since + 2)) ]
}
wait_worker() {  # dir port seconds: the worker has ticked and has nothing queued
    since=$(ticks "$1" "$2")
    until_true "$3" drained "$1" "$2"
}
orders_sql() {  # first id, count[, first customer]: orders for 60 customers from the first
    # (default 1), dated in the 300 days up to the engine's date
    echo "INSERT INTO orders (customer_id, ordered_at, amount)
          SELECT ${3:-1} + (i * 7919) % 60, date '2026-03-01' - (i * 104729) % 300, (i % 97) + 0.5
          FROM generate_series($1, $1 + $2 - 1) AS i;"
}

# ---- A. physical standby ---------------------------------------------------------------
started=$SECONDS
cluster_start "$pdir" "$pport" "${worker_settings[@]}" || fail "the primary did not start"
psql -X -q -h "$pdir" -p "$pport" -d postgres -c "CREATE DATABASE $db" || fail "no database"
q "$pdir" "$pport" >/dev/null <<SQL || fail "the primary's setup failed"
CREATE EXTENSION lifecycle;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id integer NOT NULL,
                     ordered_at date NOT NULL, amount numeric(10, 2));
CREATE INDEX ON orders (customer_id);
$(orders_sql 1 400)
SELECT lifecycle.track('orders', 'customer_id', 'ordered_at', 'amount');
\i test/stage_differences.sql
SQL
wait_worker "$pdir" "$pport" 20 || fail "the primary's worker did not tick"

mkdir -p "$sdir"
[ "$(id -u)" -eq 0 ] && chown postgres "$sdir"
as_server_user "$PG_BIN/pg_basebackup" -h "$pdir" -p "$pport" -U postgres -D "$sdir/data" -R \
    -X stream --checkpoint=fast --no-sync >"$top/basebackup.log" 2>&1 || { cat "$top/basebackup.log"; fail "pg_basebackup failed"; }
printf "port = %s\nunix_socket_directories = '%s'\n" "$sport" "$sdir" |
    as_server_user tee -a "$sdir/data/postgresql.conf" >/dev/null
as_server_user "$PG_BIN/pg_ctl" -D "$sdir/data" -l "$sdir/server.log" -w start >/dev/null ||
    { tail -n 20 "$sdir/server.log"; fail "the standby did not start"; }
[ "$(q "$sdir" "$sport" -c 'SELECT pg_is_in_recovery()')" = t ] || fail "the standby is not in recovery"

# (1) after a few seconds, no lifecycle process on the standby and nothing logged by one,
# the library loaded there all the same
sleep 3
preload=$(q "$sdir" "$sport" -c "SHOW shared_preload_libraries")
lifecycle_processes=$(q "$sdir" "$sport" -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'lifecycle%'")
lifecycle_errors=$(grep -E 'ERROR|FATAL|PANIC' "$sdir/server.log" | grep -ci lifecycle)
echo "standby after 3 s (shared_preload_libraries = '$preload'): $lifecycle_processes lifecycle processes, $lifecycle_errors lifecycle ERROR/FATAL lines in its log"
check "A1 no lifecycle worker runs on the standby, none logs an error" \
    test "$preload" = lifecycle -a "$lifecycle_processes" = 0 -a "$lifecycle_errors" = 0

# (2) new orders on the primary: its worker refreshes, the standby replays the same table
before=$(q "$pdir" "$pport" -c "$checksum")
q "$pdir" "$pport" -c "$(orders_sql 401 300 41)" \
    -c "UPDATE orders SET ordered_at = ordered_at - 40 WHERE id % 11 = 0" \
    -c "DELETE FROM orders WHERE id % 13 = 0" || fail "the primary's writes failed"
wait_worker "$pdir" "$pport" 20 || echo "the primary's worker did not drain the queue in 20 s"
primary_sum=$(q "$pdir" "$pport" -c "$checksum")
primary_diff=$(q "$pdir" "$pport" -c "SELECT stage_differences()")
lsn=$(q "$pdir" "$pport" -c "SELECT pg_current_wal_lsn()")
replayed() { [ "$(q "$sdir" "$sport" -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ]; }
until_true 20 replayed || echo "the standby did not replay up to $lsn in 20 s"
standby_sum=$(q "$sdir" "$sport" -c "$checksum")
standby_diff=$(q "$sdir" "$sport" -c "SELECT stage_differences()")
echo "primary: stages $primary_sum ($primary_diff differ), before the writes $before; standby: $standby_sum ($standby_diff differ)"
check "A2 the primary's worker follows the orders, the standby replays the same stage table" \
    test "$primary_sum" != "$before" -a "$primary_diff" = 0 -a "$standby_sum" = "$primary_sum" -a "$standby_diff" = 0

# (3) promotion: the old primary stopped (its last WAL streamed), the standby promoted
old_max=$(q "$pdir" "$pport" -c "SELECT max(id) FROM lifecycle.transitions")
old_count=$(q "$pdir" "$pport" -c "SELECT count(*) FROM lifecycle.transitions")
cluster_stop "$pdir"
as_server_user "$PG_BIN/pg_ctl" -D "$sdir/data" -w promote >/dev/null || fail "pg_ctl promote failed"
promoted() { [ "$(q "$sdir" "$sport" -c 'SELECT pg_is_in_recovery()')" = f ]; }
worker_up() { [ "$(q "$sdir" "$sport" -c 'SELECT running FROM lifecycle.worker_status')" = t ]; }
until_true 20 promoted || fail "the standby is still in recovery"
until_true 20 worker_up || echo "no worker on the promoted server after 20 s"
ticks_before=$(ticks "$sdir" "$sport")
q "$sdir" "$sport" -c "$(orders_sql 701 300 101)" -c "DELETE FROM orders WHERE id % 17 = 0" ||
    fail "the promoted server's writes failed"
wait_worker "$sdir" "$sport" 20 || echo "the promoted server's worker did not drain the queue in 20 s"
result=$(q "$sdir" "$sport" -c "SELECT format('%s ticks, worker pid %s, %s differ, %s new transitions from id %s',
                                         w.ticks, w.pid, stage_differences(),
                                         (SELECT count(*) FROM lifecycle.transitions WHERE id > $old_max),
                                         (SELECT min(id) FROM lifecycle.transitions WHERE id > $old_max))
                                  FROM lifecycle.worker_status w")
kept=$(q "$sdir" "$sport" -c "SELECT count(*) FROM lifecycle.transitions WHERE id <= $old_max")
new_differ=$(q "$sdir" "$sport" -c "SELECT stage_differences()")
new_after=$(q "$sdir" "$sport" -c "SELECT count(*) FROM lifecycle.transitions WHERE id > $old_max AND cause = 'purchase'")
ticks_after=$(ticks "$sdir" "$sport")
running=$(q "$sdir" "$sport" -c "SELECT running FROM lifecycle.worker_status")
echo "promoted: old max transition id $old_max ($old_count transitions, $kept kept), ticks $ticks_before then $ticks_after; $result"
check "A3 the promoted server's worker ticks and follows new orders (0 differ), transition ids after $old_max" \
    test "$running" = t -a "$ticks_after" -gt "$ticks_before" -a "$new_differ" = 0 -a "$new_after" -gt 0 -a "$kept" = "$old_count"
cluster_stop "$sdir"
echo "part A: $((SECONDS - started)) s"

# ---- B. logical replication ------------------------------------------------------------
started=$SECONDS
cluster_start "$ldir" "$lport" "wal_level = logical" || fail "the publisher did not start"
psql -X -q -h "$ldir" -p "$lport" -d postgres -c "CREATE DATABASE $db" || fail "no database"
table="CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer NOT NULL,
                            ordered_at date NOT NULL, amount numeric(10, 2));
       CREATE INDEX ON orders (customer_id);"
q "$ldir" "$lport" >/dev/null <<SQL || fail "the publisher's setup failed"
${table/bigint/bigserial}
$(orders_sql 1 400)
CREATE PUBLICATION lifecycle_pub FOR TABLE orders;
SQL
cluster_start "$udir" "$uport" "${worker_settings[@]}" || fail "the subscriber did not start"
psql -X -q -h "$udir" -p "$uport" -d postgres -c "CREATE DATABASE $db" || fail "no database"
q "$udir" "$uport" >/dev/null <<SQL || fail "the subscriber's setup failed"
CREATE EXTENSION lifecycle;
$table
SELECT lifecycle.track('orders', 'customer_id', 'ordered_at', 'amount');
\i test/stage_differences.sql
SET client_min_messages = warning;
CREATE SUBSCRIPTION lifecycle_sub CONNECTION 'host=$ldir port=$lport dbname=$db user=postgres'
    PUBLICATION lifecycle_pub;
SQL
orders_sum="SELECT count(*) || ' ' || md5(coalesce(string_agg(o::text, '|' ORDER BY id), '')) FROM orders o"
same_orders() { [ "$(q "$udir" "$uport" -c "$orders_sum")" = "$(q "$ldir" "$lport" -c "$orders_sum")" ]; }
synced() { [ "$(q "$udir" "$uport" -c "SELECT bool_and(srsubstate = 'r') FROM pg_subscription_rel")" = t ]; }
status() {  # the subscriber's figures
    q "$udir" "$uport" -c "SELECT format('%s orders, %s customers, %s differ, %s queued, %s corrections',
                                         (SELECT count(*) FROM orders), (SELECT count(*) FROM lifecycle.customer_stage),
                                         stage_differences(), (SELECT queued FROM lifecycle.worker_status),
                                         (SELECT count(*) FROM lifecycle.transitions WHERE cause = 'correction'))"
}
differ() { q "$udir" "$uport" -c "SELECT stage_differences()"; }

# (1) the initial copy (a COPY, which fires statement triggers) is captured
until_true 30 synced || echo "the table did not reach the ready state in 30 s"
wait_worker "$udir" "$uport" 20 || echo "the subscriber's worker did not drain the queue in 20 s"
echo "after the initial copy: $(status)"
check "B1 the initial copy arrives and is captured (0 differ)" \
    eval 'same_orders && [ "$(differ)" = 0 ] && [ "$(q "$udir" "$uport" -c "SELECT count(*) FROM lifecycle.customer_stage")" -gt 0 ]'

# (2) inserts, updates, deletes on the publisher reach the subscriber's table
q "$ldir" "$lport" -c "$(orders_sql 401 300 41)" \
    -c "UPDATE orders SET ordered_at = ordered_at - 40 WHERE id % 11 = 0" \
    -c "DELETE FROM orders WHERE id % 13 = 0 OR customer_id <= 5" || fail "the publisher's writes failed"
until_true 20 same_orders
check "B2 the publisher's inserts, updates and deletes arrive through the apply worker" same_orders

# (3) the apply worker fires no statement triggers: nothing queued, the stages miss it
wait_worker "$udir" "$uport" 20 || echo "the subscriber's worker did not drain the queue in 20 s"
gap=$(differ)
queue_rows=$(q "$udir" "$uport" -c "SELECT count(*) FROM lifecycle.change_queue")
echo "after the applied writes and two ticks: $(status), $queue_rows change_queue rows"
check "B3 the applied writes are not captured (no statement trigger fires for apply): stages differ, none queued" \
    test "$gap" -gt 0 -a "$queue_rows" = 0

# (4) resync() finds the gap; the next tick repairs it, logging corrections
found=$(q "$udir" "$uport" -c "SELECT lifecycle.resync('orders')")
wait_worker "$udir" "$uport" 20 || echo "the subscriber's worker did not drain the queue in 20 s"
corrections=$(q "$udir" "$uport" -c "SELECT count(*) FROM lifecycle.transitions WHERE cause = 'correction'")
echo "resync() found $found customers whose stage differs; then: $(status)"
check "B4 resync() counts the stages the gap left wrong, the next tick repairs it (one correction each, 0 differ)" \
    test "$found" -gt 0 -a "$(differ)" = 0 -a "$corrections" = "$found"

# (5) a TRUNCATE on the publisher: applied with its statement triggers, so captured
q "$ldir" "$lport" -c "TRUNCATE orders" || fail "the publisher's TRUNCATE failed"
until_true 20 same_orders
wait_worker "$udir" "$uport" 20 || echo "the subscriber's worker did not drain the queue in 20 s"
left=$(q "$udir" "$uport" -c "SELECT count(*) FROM lifecycle.customer_stage WHERE purchases > 0")
echo "after a TRUNCATE on the publisher: $(status), $left customers with purchases"
check "B5 a replicated TRUNCATE is captured (its statement trigger fires): no purchases left, 0 differ" \
    eval 'same_orders && [ "$left" = 0 ] && [ "$(differ)" = 0 ]'
q "$udir" "$uport" -c "SET client_min_messages = warning" -c "DROP SUBSCRIPTION lifecycle_sub" >/dev/null || echo "DROP SUBSCRIPTION failed"
echo "part B: $((SECONDS - started)) s"
if [ "$failed" -ne 0 ]; then
    for d in "$pdir" "$sdir" "$ldir" "$udir"; do
        [ -f "$d/server.log" ] && { echo "== $d/server.log"; grep -E 'ERROR|FATAL|PANIC' "$d/server.log" | tail -n 10; }
    done
fi
finish
