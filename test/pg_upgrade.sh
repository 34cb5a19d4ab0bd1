#!/usr/bin/env bash
# pg_upgrade of a cluster that uses lifecycle, from one major to another (docs/upgrading.md).
# On the OLD cluster (shared_preload_libraries = lifecycle, the worker on one database,
# refresh every 200 ms, the engine's date fixed): an orders table tracked with track(),
# orders the worker turns into purchase transitions, then the engine's date moved so that
# customers drift into inactive and the shipped win-back playbook (enabled, e-mail
# consent given) makes actions due; a listener (psql, LISTEN on the engine's channel)
# records the highest transition id announced. Then the cluster is stopped, the NEW one
# made (initdb, same settings and the same data checksums), `pg_upgrade --check` and
# `pg_upgrade` run (copy mode, servers started by pg_upgrade with log_min_messages =
# debug1, logs retained), the NEW cluster started, and checked:
#   check         pg_upgrade --check accepts the clusters
#   upgrade       pg_upgrade succeeds
#   no_worker     no lifecycle launcher or worker was started by a server in binary-upgrade
#                 mode (pg_upgrade's server logs)
#   extension     extversion, the number of extension members, the rows of the engine's
#                 tables and the last values of its sequences as before
#   stages        the stage table equals a recomputation from the orders (as crash_cycle)
#   actions       the actions due before are all claimable with claim_actions()
#   worker        a new order reaches the stage table without a refresh() of ours
#   transitions   the transitions made after the upgrade have ids above the old maximum,
#                 and a listener catching up by id (id > the last it saw) gets exactly
#                 them, none lost or repeated; its notifications name no older id
#   stages_after  the stage table equals the recomputation again, after the new orders
#   drop          DROP EXTENSION lifecycle CASCADE succeeds and leaves no dependency on it
#                 and no relation, type or function in its schema
# Ends with "pg_upgrade: N passed, N failed". Where either major's server, pg_upgrade or
# lifecycle built for it is missing: "pg_upgrade: SKIP (why)" and exit status 0.
#   PGU_OLD=15 PGU_NEW=19 test/pg_upgrade.sh    (PGU_OLD_BIN, PGU_NEW_BIN: the bindirs;
#   PGU_PORT_OLD=55601, PGU_PORT_NEW=55602)
set -uo pipefail
cd "$(dirname "$0")/.."
old=${PGU_OLD:-15}
new=${PGU_NEW:-19}
old_bin=${PGU_OLD_BIN:-/usr/lib/postgresql/$old/bin}
new_bin=${PGU_NEW_BIN:-/usr/lib/postgresql/$new/bin}
old_port=${PGU_PORT_OLD:-55601}
new_port=${PGU_PORT_NEW:-55602}
db=lifecycle_pgu
version=0.3.0

skip() { echo "pg_upgrade: SKIP ($*)"; exit 0; }
# The extension as installed for a bindir: its library and its control file's version.
extension_installed() {   # bindir
    local lib share
    if [ -x "$1/pg_config" ]; then
        lib=$("$1/pg_config" --pkglibdir) share=$("$1/pg_config" --sharedir)
    else   # Debian's layout, without the server headers' pg_config
        lib=$(dirname "$1")/lib share=/usr/share/postgresql/$(basename "$(dirname "$1")")
    fi
    [ -f "$lib/lifecycle.so" ] &&
        grep -q "^default_version = '$version'" "$share/extension/lifecycle.control" 2>/dev/null
}
for side in "$old:$old_bin" "$new:$new_bin"; do
    major=${side%%:*} bin=${side#*:}
    for program in postgres initdb pg_ctl psql pg_controldata; do
        [ -x "$bin/$program" ] || skip "no PostgreSQL $major server: $bin/$program missing"
    done
done
for side in "$old:$old_bin" "$new:$new_bin"; do
    extension_installed "${side#*:}" || skip "lifecycle $version is not installed for PostgreSQL ${side%%:*}"
done
[ -x "$new_bin/pg_upgrade" ] || skip "no pg_upgrade in $new_bin"

PG_CONFIG=$old_bin/pg_config
[ -x "$PG_CONFIG" ] || PG_CONFIG=true   # cluster.sh reads PG_BIN from it; set below anyway
. scripts/cluster.sh
dir=$(mktemp -d /tmp/lifecycle-pgu.XXXXXX)
chmod 755 "$dir"
listener_pid=
stop_listener() {   # the listener this script started, by its pid
    if [ -n "$listener_pid" ]; then
        touch "$dir/stop_listening"
        for ((i = 0; i < 50; i++)); do kill -0 "$listener_pid" 2>/dev/null || break; sleep 0.1; done
        kill "$listener_pid" 2>/dev/null; wait "$listener_pid" 2>/dev/null
    fi
    listener_pid=
    rm -f "$dir/stop_listening"
}
cleanup() {
    stop_listener
    PG_BIN=$old_bin cluster_stop "$dir/old"
    PG_BIN=$new_bin cluster_stop "$dir/new"
    rm -rf "$dir"
}
trap cleanup EXIT
passed=0
failed=0
fatal() {
    echo "pg_upgrade: $*"
    echo "pg_upgrade: $passed passed, $((failed + 1)) failed"
    exit 1
}
verdict() {   # name ok detail
    if [ "$2" = true ]; then passed=$((passed + 1)); echo "pass $1: $3"
    else failed=$((failed + 1)); echo "FAIL $1: $3"; fi
}
q() { "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
wait_for() {   # seconds query: waits until the query returns t
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        [ "$(q -c "$2" 2>/dev/null)" = t ] && return 0
        sleep 0.1
    done
    return 1
}
# The worker is done when nothing is queued or due and it ticked since `since`.
settled() {   # seconds [since]
    wait_for "$1" "SELECT coalesce(bool_and(queued = 0 AND due = 0 AND last_tick_at > '${2:-now}'::timestamptz
                                   + interval '300 ms'), false)
                   FROM lifecycle.worker_status"
}
# A listener: psql LISTENs, then runs a statement every 100 ms, after which it prints the
# notifications received (lines "Asynchronous notification ... with payload ...").
start_listener() {   # output file [catch-up query]
    {
        echo "LISTEN lifecycle;"
        [ -n "${2:-}" ] && echo "$2"
        while [ ! -e "$dir/stop_listening" ]; do echo "SELECT 'tick';"; sleep 0.1; done
    } | "$PG_BIN/psql" -X -At -d "$db" >"$1" 2>&1 &
    listener_pid=$!
}
announced_ids() {   # listener output: the last_id of each notification
    sed -n 's/^Asynchronous notification "lifecycle" with payload "\(.*\)" received.*/\1/p' "$1" |
        sed -n 's/.*"last_id" *: *\([0-9]*\).*/\1/p'
}
first_ids() {
    sed -n 's/^Asynchronous notification "lifecycle" with payload "\(.*\)" received.*/\1/p' "$1" |
        sed -n 's/.*"first_id" *: *\([0-9]*\).*/\1/p'
}
settings=("shared_preload_libraries = 'lifecycle'" "lifecycle.databases = '$db'"
          "lifecycle.refresh_interval = '200ms'" "lifecycle.as_of = '2026-03-01'"
          "max_worker_processes = 8")
# What must read the same before and after: the extension, its members, its tables' rows
# and its sequences.
inventory() {
    q <<'SQL'
SELECT 'extversion ' || extversion FROM pg_extension WHERE extname = 'lifecycle';
-- The members, but for the row types of tables and views and the array types: a fresh
-- CREATE EXTENSION leaves them out, the ALTER EXTENSION ADD of a binary-upgrade restore
-- (PostgreSQL 16 and later) adds them along with their table or type (counted apart).
CREATE TEMPORARY VIEW members AS
SELECT pg_describe_object(d.classid, d.objid, 0) AS member,
       coalesce(t.typcategory = 'A' OR c.relkind IN ('r', 'v', 'm', 'p'), false) AS implicit
FROM pg_depend d
LEFT JOIN pg_type t ON d.classid = 'pg_type'::regclass AND t.oid = d.objid
LEFT JOIN pg_class c ON c.oid = t.typrelid
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'lifecycle');
SELECT 'members ' || count(*) FROM members WHERE NOT implicit;
SELECT 'member ' || member FROM members WHERE NOT implicit ORDER BY 1;
SELECT 'implicit ' || count(*) FROM members WHERE implicit;
SELECT 'config tables ' || array_length(extconfig, 1) FROM pg_extension WHERE extname = 'lifecycle';
SELECT format('rows %s %s', t, (xpath('/row/c/text()',
              query_to_xml(format('SELECT count(*) AS c FROM lifecycle.%I', t), false, true, '')))[1])
FROM unnest('{sources,customer_stage,transitions,playbooks,playbook_steps,enrollments,actions,
              consent,consent_log,policies,contact_policy}'::text[]) t ORDER BY t;
SELECT format('sequence %s %s', sequencename, last_value) FROM pg_sequences
WHERE schemaname = 'lifecycle' ORDER BY sequencename;
SQL
}

# ---- the OLD cluster
PG_BIN=$old_bin
cluster_start "$dir/old" "$old_port" "${settings[@]}" || fatal "the old server did not start"
"$PG_BIN/psql" -X -q -d postgres -c "CREATE DATABASE $db" || fatal "no database"
q >/dev/null <<'SQL' || fatal "the setup failed"
CREATE EXTENSION lifecycle;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id integer NOT NULL,
                     ordered_at date NOT NULL, amount numeric(10, 2));
CREATE INDEX ON orders (customer_id);
-- 300 customers, their last purchases spread over the year before 2026-03-01.
INSERT INTO orders (customer_id, ordered_at, amount)
SELECT 1 + (i * 7919) % 300, date '2026-03-01' - (i * 104729) % 365, (i % 97) + 0.5
FROM generate_series(1, 1500) AS i;
SELECT lifecycle.track('orders', 'customer_id', 'ordered_at', 'amount');
\i test/stage_differences.sql
-- The shipped win-back, enabled, nobody held out; every customer may get e-mail.
UPDATE lifecycle.playbooks SET enabled = true, holdout_share = 0 WHERE name = 'winback';
SELECT lifecycle.opt_in('orders', c::text, 'email', 'signup') FROM generate_series(1, 400) c;
SQL
wait_for 10 "SELECT count(*) > 0 FROM lifecycle.worker_status WHERE pid IS NOT NULL" \
    || fatal "no lifecycle worker on the old cluster"
start_listener "$dir/listener_old.out"
sleep 0.5
# Purchases: returning customers and new ones, on the engine's day.
since=$(q -c "SELECT now()")
q -c "INSERT INTO orders (customer_id, ordered_at, amount)
      SELECT c, date '2026-03-01', 20 FROM generate_series(1, 330, 11) c" >/dev/null
settled 20 "$since" || fatal "the old worker did not take the new orders"
# The engine's date moves on 19 days: customers drift to at_risk and inactive, and the
# win-back makes its first e-mails due.
echo "lifecycle.as_of = '2026-03-20'" | as_server_user tee -a "$dir/old/data/postgresql.conf" >/dev/null
since=$(q -c "SELECT now()")
q -c "SELECT pg_reload_conf()" >/dev/null
wait_for 20 "SELECT count(*) > 0 FROM lifecycle.actions WHERE status = 'due'" \
    || fatal "the win-back made no action due on the old cluster"
settled 20 "$since" || fatal "the old worker did not settle after the date moved"
sleep 0.5
stop_listener
old_max=$(q -c "SELECT coalesce(max(id), 0) FROM lifecycle.transitions")
old_max_announced=$(q -c "SELECT coalesce(max(id), 0) FROM lifecycle.transitions WHERE cause <> 'initial'")
old_counts=$(q -c "SELECT format('%s transitions (%s purchase, %s time), %s enrolments, %s actions due',
                                 count(*), count(*) FILTER (WHERE cause = 'purchase'),
                                 count(*) FILTER (WHERE cause = 'time'),
                                 (SELECT count(*) FROM lifecycle.enrollments),
                                 (SELECT count(*) FROM lifecycle.actions WHERE status = 'due'))
                FROM lifecycle.transitions")
q -c "SELECT id FROM lifecycle.transitions ORDER BY id" >"$dir/old_ids"
q -c "SELECT id FROM lifecycle.actions WHERE status = 'due' ORDER BY id" >"$dir/old_due"
last_seen=$(announced_ids "$dir/listener_old.out" | sort -n | tail -n 1)
last_seen=${last_seen:-0}
inventory >"$dir/inventory_old" || fatal "no inventory of the old cluster"
echo "old cluster (PostgreSQL $old): $old_counts; highest id $old_max; the listener saw up to $last_seen"
[ "$last_seen" = "$old_max_announced" ] \
    || fatal "the old listener saw up to $last_seen, the log has up to $old_max_announced"
cluster_stop "$dir/old"

# ---- the NEW cluster: initdb with the old one's data checksums, the same settings
PG_BIN=$new_bin
mkdir -p "$dir/new" "$dir/work"
[ "$(id -u)" -eq 0 ] && chown postgres "$dir/new" "$dir/work"
checksums=
# (grep -q would end the pipe early: under pipefail its writer's SIGPIPE fails it)
if "$old_bin/pg_controldata" "$dir/old/data" 2>/dev/null | grep -c '^Data page checksum version: *[1-9]' >/dev/null; then
    checksums=--data-checksums
elif "$new_bin/initdb" --help | grep -c -- --no-data-checksums >/dev/null; then
    checksums=--no-data-checksums
fi
as_server_user "$new_bin/initdb" -D "$dir/new/data" -U postgres -A trust --no-sync $checksums \
    >"$dir/new/initdb.log" 2>&1 || { tail -n 20 "$dir/new/initdb.log"; fatal "initdb of the new cluster failed"; }
{
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$dir/new'"
    echo "port = $new_port"
    for line in "${settings[@]}"; do echo "$line"; done
    echo "lifecycle.as_of = '2026-03-20'"
} | as_server_user tee -a "$dir/new/data/postgresql.conf" >/dev/null

pgu() {   # pg_upgrade as the server's user, in a folder of its own
    (cd "$dir/work" && as_server_user "$new_bin/pg_upgrade" -b "$old_bin" -B "$new_bin" \
        -d "$dir/old/data" -D "$dir/new/data" -p "$old_port" -P "$new_port" -U postgres \
        -s "$dir/work" -o "-c log_min_messages=debug1" -O "-c log_min_messages=debug1" "$@")
}
if pgu --check >"$dir/check.log" 2>&1; then
    verdict check true "$(grep -c '^Checking' "$dir/check.log") checks, $(grep -c 'ok$' "$dir/check.log") ok"
else
    cat "$dir/check.log"; verdict check false "pg_upgrade --check failed"
fi
if pgu --retain >"$dir/upgrade.log" 2>&1; then
    verdict upgrade true "$(grep -m1 -i 'upgrade complete' "$dir/upgrade.log")"
else
    cat "$dir/upgrade.log"
    # the restore's error, with the statement before it
    find "$dir/new/data" "$dir/work" -name 'pg_upgrade_dump_*.log' \
        -exec grep -h -B 12 -A 4 -E 'error:|ERROR' {} + 2>/dev/null | tail -n 60
    verdict upgrade false "pg_upgrade failed"
    echo "pg_upgrade: $passed passed, $failed failed"
    exit 1
fi
# pg_upgrade's server logs: PostgreSQL 15 keeps them in the working folder, 16+ under
# the new data folder's pg_upgrade_output.d.
logs=$(find "$dir/work" "$dir/new/data/pg_upgrade_output.d" -name 'pg_upgrade_server*.log' 2>/dev/null)
if [ -z "$logs" ]; then
    verdict no_worker false "no server log of pg_upgrade to read"
else
    started=$(cat $logs | grep -c 'starting background worker process "lifecycle')
    verdict no_worker "$([ "$started" -eq 0 ] && echo true || echo false)" \
        "$started lifecycle background workers started by pg_upgrade's servers ($(echo $logs | wc -w) logs)"
    [ "$started" -eq 0 ] || grep -h 'lifecycle' $logs | head -n 10
fi
rm -rf "$dir/new/data/pg_upgrade_output.d"
as_server_user "$PG_BIN/pg_ctl" -D "$dir/new/data" -l "$dir/new/server.log" -w start >/dev/null \
    || { tail -n 20 "$dir/new/server.log"; fatal "the new server did not start"; }
export PGHOST=$dir/new PGPORT=$new_port PGUSER=postgres

# ---- checks on the NEW cluster
inventory >"$dir/inventory_new" 2>&1
if diff <(grep -v '^implicit' "$dir/inventory_old") <(grep -v '^implicit' "$dir/inventory_new") \
        >"$dir/inventory.diff"; then
    verdict extension true "$(grep -E '^(extversion|members|config)' "$dir/inventory_new" | paste -sd, -), each member, rows and sequences as before \
(row and array types that are members: $(sed -n 's/^implicit //p' "$dir/inventory_old") before, $(sed -n 's/^implicit //p' "$dir/inventory_new") after)"
else
    head -n 40 "$dir/inventory.diff"; verdict extension false "the extension or its tables differ"
fi

differences=$(q -c "SELECT stage_differences()" 2>&1)
verdict stages "$([ "$differences" = 0 ] && echo true || echo false)" \
    "$differences rows differ from the recomputation ($(q -c "SELECT count(*) FROM lifecycle.customer_stage") customers)"

# The actions due before the upgrade, handed out now (nothing else is due yet).
q -c "SELECT id FROM lifecycle.claim_actions('upgrade-test', 10000) ORDER BY id" >"$dir/claimed" 2>&1
if [ -s "$dir/old_due" ] && diff "$dir/old_due" "$dir/claimed" >/dev/null; then
    verdict actions true "$(wc -l <"$dir/claimed") actions due before, all claimed after"
else
    verdict actions false "$(wc -l <"$dir/old_due") due before; claimed $(wc -l <"$dir/claimed"): $(diff "$dir/old_due" "$dir/claimed" | head -c 300 | tr '\n' ' ')"
fi

# A listener catching up by id, then new orders; the worker alone must take them.
wait_for 10 "SELECT count(*) > 0 FROM lifecycle.worker_status WHERE pid IS NOT NULL" \
    || echo "(no lifecycle worker on the new cluster yet)"
start_listener "$dir/listener_new.out" \
    "SELECT 'caught up ' || id FROM lifecycle.transitions WHERE id > $last_seen AND cause <> 'initial' ORDER BY id;"
sleep 0.5
since=$(q -c "SELECT now()")
q -c "INSERT INTO orders (customer_id, ordered_at, amount)
      SELECT c, date '2026-03-20', 30 FROM generate_series(2, 500, 7) c" >/dev/null
ok=false
if wait_for 20 "SELECT count(*) = 0 FROM generate_series(2, 500, 7) c
                LEFT JOIN lifecycle.customer_stage s ON s.customer = c::text
                WHERE s.last_purchase IS DISTINCT FROM date '2026-03-20'"; then
    ok=true
fi
verdict worker "$ok" "the new orders of $(q -c "SELECT count(*) FROM generate_series(2, 500, 7)") customers in the stage table \
without a refresh() of ours ($(q -c "SELECT format('worker pid %s, %s ticks', pid, ticks) FROM lifecycle.worker_status"))"
settled 20 "$since"
sleep 0.5
stop_listener
q -c "SELECT id FROM lifecycle.transitions WHERE cause <> 'initial' ORDER BY id" >"$dir/new_all"
awk 'NR == FNR { old[$1] = 1; next } !($1 in old)' "$dir/old_ids" "$dir/new_all" >"$dir/made_after"   # ids the old log did not have
sed -n 's/^caught up //p' "$dir/listener_new.out" >"$dir/caught"
announced_ids "$dir/listener_new.out" >"$dir/announced_last"
first_ids "$dir/listener_new.out" >"$dir/announced_first"
made=$(wc -l <"$dir/made_after")
low=$(head -n 1 "$dir/made_after")
ok=true
detail="$made transitions after the upgrade, ids ${low:-none}..$(tail -n 1 "$dir/made_after") (old max $old_max)"
[ "$made" -gt 0 ] && [ "${low:-0}" -gt "$old_max" ] || { ok=false; detail="$detail; not all above the old max"; }
# what the listener has: the rows it caught up by id, then the ranges announced
caught_up=$(wc -l <"$dir/caught")
since_last=$(q -c "SELECT count(*) FROM lifecycle.transitions WHERE id > $last_seen AND cause <> 'initial'")
[ "$(sort -n "$dir/caught" | uniq -d | wc -l)" -eq 0 ] || { ok=false; detail="$detail; caught up an id twice"; }
if [ "$caught_up" -gt 0 ] && [ "$(head -n 1 "$dir/caught")" -le "$last_seen" ]; then
    ok=false; detail="$detail; caught up an id it had seen"
fi
announced_max=$(sort -n "$dir/announced_last" | tail -n 1)
announced_min=$(sort -n "$dir/announced_first" | head -n 1)
[ "${announced_min:-$((old_max + 1))}" -gt "$old_max" ] || { ok=false; detail="$detail; a notification names id $announced_min"; }
[ "${announced_max:-0}" = "$(tail -n 1 "$dir/made_after")" ] \
    || { ok=false; detail="$detail; last announced ${announced_max:-none}"; }
# by id from last_seen: exactly the new ones (the catch-up at connect plus what came since)
by_id=$(q -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM lifecycle.transitions
              WHERE id > $last_seen AND cause <> 'initial'")
[ "$by_id" = "$(paste -sd, "$dir/made_after")" ] || { ok=false; detail="$detail; by id from $last_seen: not the new ones"; }
verdict transitions "$ok" "$detail; caught up $caught_up at connect, $since_last by id since $last_seen, \
$(wc -l <"$dir/announced_last") notifications up to ${announced_max:-none}"

differences=$(q -c "SELECT stage_differences()" 2>&1)
verdict stages_after "$([ "$differences" = 0 ] && echo true || echo false)" \
    "$differences rows differ from the recomputation after the new orders"

# Last: the extension goes, with the row and array types the restore made its members.
stop_listener
ext_oid=$(q -c "SELECT oid FROM pg_extension WHERE extname = 'lifecycle'")
dropped=$(q -c "SET client_min_messages = warning" -c "DROP EXTENSION lifecycle CASCADE" \
            -c "SELECT format('%s pg_depend rows of the extension; in schema lifecycle (created for it, not a member) %s relations, %s types, %s functions',
                              (SELECT count(*) FROM pg_depend WHERE refclassid = 'pg_extension'::regclass
                                                                AND refobjid = ${ext_oid:-0}),
                              (SELECT count(*) FROM pg_class WHERE relnamespace::regnamespace::text = 'lifecycle'),
                              (SELECT count(*) FROM pg_type WHERE typnamespace::regnamespace::text = 'lifecycle'),
                              (SELECT count(*) FROM pg_proc WHERE pronamespace::regnamespace::text = 'lifecycle'))" \
          2>&1 | tr '\n' ' ')
dropped=${dropped% }
ok=false
[ "$dropped" = "0 pg_depend rows of the extension; in schema lifecycle (created for it, not a member) 0 relations, 0 types, 0 functions" ] && ok=true
verdict drop "$ok" "DROP EXTENSION lifecycle CASCADE: $dropped"

if [ "$failed" -ne 0 ]; then grep -E 'ERROR|FATAL|PANIC' "$dir/new/server.log" | tail -n 20; fi
echo "pg_upgrade: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
