#!/usr/bin/env bash
# ALTER EXTENSION lifecycle UPDATE on a live database: 0.2.0 as released, a tracked
# orders table with data, the worker logging transitions, the win-back playbook making
# actions and a writer adding orders all the while. Then checks that
#   1. nothing was lost: every transition, enrolment, action and consent row from before
#      is still there, and the worker went on logging after the update;
#   2. the stage table equals a recomputation from the orders (lifecycle_stage());
#   3. the catalog equals a fresh install's (sql/extension_members.psql);
#   4. an updated database behaves as a fresh one: sql/40_playbooks.sql and
#      sql/13_history_views.sql give the same output in both.
# Ends with "upgrade: N passed, M failed". Needs the extension installed (make install).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
dir=$(mktemp -d /tmp/lifecycle-upgrade.XXXXXX)
writer=
trap '[ -n "$writer" ] && kill "$writer" 2>/dev/null; cluster_stop "$dir"; rm -rf "$dir"' EXIT
passed=0
failed=0
check() {  # name condition-exit-status
    if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "upgrade: ok   $1"
    else failed=$((failed + 1)); echo "upgrade: FAIL $1"; fi
}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

cluster_start "$dir" "${UPGRADE_PORT:-54336}" "shared_preload_libraries = 'lifecycle'" \
    "lifecycle.databases = 'live'" "lifecycle.refresh_interval = '200ms'" \
    "lifecycle.as_of = '2026-03-01'" "max_worker_processes = 8" \
    || { echo "upgrade: the server did not start"; echo "upgrade: 0 passed, 1 failed"; exit 1; }
[ "$(id -u)" -eq 0 ] && chmod 755 "$dir"
for db in live upgraded fresh; do q -d postgres -c "CREATE DATABASE $db"; done

# Waits until the worker has finished a tick that began after this call.
wait_tick() {
    local before
    before=$(q -d live -c "SELECT coalesce(max(ticks), 0) FROM lifecycle.worker_state")
    for _ in $(seq 1 150); do
        [ "$(q -d live -c "SELECT coalesce(max(ticks), 0) FROM lifecycle.worker_state")" -gt $((before + 1)) ] && return 0
        sleep 0.2
    done
    return 1
}
set_date() { q -d live -c "ALTER SYSTEM SET lifecycle.as_of = '$1'" -c "SELECT pg_reload_conf()" >/dev/null; wait_tick; }

# 0.2.0, as released, with data.
q -d live <<'SQL' >/dev/null
CREATE EXTENSION lifecycle VERSION '0.2.0';
SET lifecycle.as_of = '2026-03-01';
CREATE TABLE orders (customer_id integer NOT NULL, ordered date NOT NULL, amount numeric);
CREATE INDEX ON orders (customer_id);
INSERT INTO orders SELECT i % 600, '2026-01-01'::date + (i * 7 % 59), 10 + i % 7
FROM generate_series(1, 3000) i;
SELECT lifecycle.track('orders', 'customer_id', 'ordered', 'amount');
UPDATE lifecycle.playbooks SET enabled = true, holdout_share = 0.2 WHERE name = 'winback';
SELECT lifecycle.opt_in('orders', c::text, 'email', 'import') FROM generate_series(0, 599) c;
SQL
wait_tick || echo "upgrade: the worker does not tick"
# Orders keep coming: new customers and returning ones, a few a second.
(
    i=0
    while true; do
        i=$((i + 1))
        q -d live -c "INSERT INTO orders VALUES ($((1000 + i)), current_setting('lifecycle.as_of')::date, 5),
                                                ($((i % 600)), current_setting('lifecycle.as_of')::date, 7)" \
            >/dev/null 2>&1
        sleep 0.1
    done
) &
writer=$!
set_date 2026-04-15
set_date 2026-05-20
before=$(q -d live -c "SELECT concat_ws(' ', (SELECT count(*) FROM lifecycle.transitions),
                                            (SELECT max(id) FROM lifecycle.transitions),
                                            (SELECT count(*) FROM lifecycle.enrollments),
                                            (SELECT count(*) FROM lifecycle.actions),
                                            (SELECT count(*) FROM lifecycle.consent_log))")
read -r transitions_before last_before enrollments_before actions_before consent_before <<<"$before"
echo "upgrade: before: $transitions_before transitions, $enrollments_before enrolments, $actions_before actions"

# The update, with the worker and the writer running.
q -d live -c "ALTER EXTENSION lifecycle UPDATE"
check "the update ran to $(q -d live -c "SELECT extversion FROM pg_extension WHERE extname = 'lifecycle'")" \
      "$([ "$(q -d live -c "SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'lifecycle') FROM pg_extension WHERE extname = 'lifecycle'")" = t ]; echo $?)"
set_date 2026-06-20
set_date 2026-07-01
kill "$writer"; wait "$writer" 2>/dev/null; writer=
wait_tick; wait_tick

kept=$(q -d live -c "SELECT (SELECT count(*) FROM lifecycle.transitions WHERE id <= $last_before) = $transitions_before
                            AND (SELECT count(*) FROM lifecycle.enrollments) >= $enrollments_before
                            AND (SELECT count(*) FROM lifecycle.actions) >= $actions_before
                            AND (SELECT count(*) FROM lifecycle.consent_log) >= $consent_before")
check "every row from before the update is still there" "$([ "$kept" = t ]; echo $?)"
after=$(q -d live -c "SELECT count(*) FROM lifecycle.transitions WHERE id > $last_before")
errors=$(q -d live -c "SELECT consecutive_errors FROM lifecycle.worker_state")
check "the worker went on: $after transitions logged since, $errors failing ticks now" \
      "$([ "$after" -gt 0 ] && [ "$errors" -eq 0 ]; echo $?)"
differ=$(q -d live <<'SQL'
SET lifecycle.as_of = '2026-07-01';
SELECT count(*) FROM (
    SELECT customer_id::text AS customer,
           lifecycle.lifecycle_stage(min(ordered), max(ordered), count(DISTINCT ordered), '2026-07-01') AS stage
    FROM orders GROUP BY customer_id) o
FULL JOIN lifecycle.customer_stage c USING (customer)
WHERE o.stage IS DISTINCT FROM c.stage;
SQL
)
check "the stage table equals a recomputation from the orders ($differ differ)" "$([ "$differ" = 0 ]; echo $?)"
q -d live -c "SELECT lifecycle.refresh()" >/dev/null 2>&1 || true

# The catalog: the live, updated database against a fresh install.
q -d fresh -c "CREATE EXTENSION lifecycle"
members() { q -d "$1" -c '\i sql/extension_members.psql' -c "SELECT line FROM members ORDER BY line"; }
members live >"$dir/live.members"
members fresh >"$dir/fresh.members"
diff "$dir/live.members" "$dir/fresh.members" >"$dir/members.diff"
check "the catalog equals a fresh install's ($(wc -l <"$dir/fresh.members") members)" "$?"
[ -s "$dir/members.diff" ] && head -n 20 "$dir/members.diff"

# Behaviour: the same tests in a database updated from 0.2.0 and in the fresh one.
q -d upgraded -c "CREATE EXTENSION lifecycle VERSION '0.2.0'" -c "ALTER EXTENSION lifecycle UPDATE"
for db in upgraded fresh; do
    sed -n '/^-- expect_error/,/^\$\$;/p' sql/01_install.sql | q -d "$db" >/dev/null
    for t in 40_playbooks 13_history_views; do
        psql -X -d "$db" -f "sql/$t.sql" 2>&1 | sed -E 's/^ +[0-9]+$/ N/' >"$dir/$db.$t.out"
    done
done
for t in 40_playbooks 13_history_views; do
    diff "$dir/upgraded.$t.out" "$dir/fresh.$t.out" >"$dir/$t.diff"
    check "sql/$t.sql gives the same output updated and fresh" "$?"
    [ -s "$dir/$t.diff" ] && head -n 20 "$dir/$t.diff"
done

echo "upgrade: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
