#!/usr/bin/env bash
# bench/playbooks.sh: the playbook scheduler inside refresh() (src/engagement/schedule.sql)
# at 100k and 1M tracked customers. On demand, not in CI. See bench/README.md.
#
#   bash bench/playbooks.sh                              # 100k and 1M customers, 5 runs
#   SIZES=100000 CUSTOMERS=100000 RUNS=3 bash bench/playbooks.sh   # quick
#
# Environment (defaults in brackets):
#   CUSTOMERS [1000000]  customers of the main database (2 orders each)
#   SIZES [100000]       smaller databases, for "a tick with nothing due does not grow"
#   COHORT [10000]       customers turning 'inactive' on day D (the same in every size)
#   RUNS [5]             timed repetitions; medians are reported
#   PLANS [0]            1: log the plans of every statement over 20 ms, nested ones
#                        included (auto_explain), to /tmp/playbooks-plans.log
#   PG_CONFIG [pg_config], BENCH_PORT [54371]
#
# What is timed, per size, all in one session as the worker runs it:
#   D     the tick that steps COHORT customers into 'inactive' (COHORT transitions),
#         enrols them in a 3-step playbook (holdout 10 %) and makes step 1 (e-mail, day 0)
#         of the ~90 % treated: the whole refresh() and its playbook part (_enroll,
#         _schedule, _announce_actions, from pg_stat_xact_user_functions), against one
#         plain INSERT ... SELECT that makes the same actions from the same transitions
#   D+3   a tick with nothing due (the ~9k enrolments wait for step 2 on D+7)
#   D+7   step 2 (e-mail, +7 days) of the ~9k: the day the contact policy could send
#         customers one at a time through _allowed_at (its calls are counted)
# Runs on D and D+7 are rolled back, so every run starts from the same state; the state
# after D is committed once (a real tick) before D+3 and D+7 are timed.
# Exit 1 on an error or when the refresh's actions differ from the plain SQL's.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
CUSTOMERS=${CUSTOMERS:-1000000}
SIZES=${SIZES:-100000}
COHORT=${COHORT:-10000}
RUNS=${RUNS:-5}
PLANS=${PLANS:-0}
D=2026-03-02                                   # the day the cohort turns inactive
DAY_BEFORE=$(date -d "$D - 1 day" +%F)
NOTHING_DUE=$(date -d "$D + 3 days" +%F)
STEP2=$(date -d "$D + 7 days" +%F)

dir=$(mktemp -d /tmp/lifecycle-bench-playbooks.XXXXXX)
cleanup() { cluster_stop "$dir"; [ "$PLANS" = 1 ] && cp "$dir/server.log" /tmp/playbooks-plans.log; rm -rf "$dir"; }
trap cleanup EXIT
extra=()
[ "$PLANS" = 1 ] && extra=("shared_preload_libraries = 'auto_explain'")
cluster_start "$dir" "${BENCH_PORT:-54371}" "shared_buffers = '1GB'" "work_mem = '64MB'" \
    "maintenance_work_mem = '1GB'" "max_wal_size = '16GB'" "checkpoint_timeout = '30min'" \
    "max_parallel_workers_per_gather = 0" "jit = off" "TimeZone = 'UTC'" \
    "autovacuum = off" "${extra[@]}"  # autovacuum off: no vacuum of the rolled-back runs' dead rows mid-timing
q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# A database of n customers with 2 orders each, tracked on DAY_BEFORE. The COHORT
# first customers bought last on D - 61: at_risk on DAY_BEFORE, inactive on D (d > 60
# under the default policy; with 2 purchases the rhythm rule does not apply). The others
# bought last 200-799 days before D: lapsed already, nothing changes for them (next_change
# NULL), so D has exactly COHORT transitions. Everyone is opted in to e-mail.
setup() {
    local db=$1 n=$2 t0
    q -d postgres -c "CREATE DATABASE $db"
    q -d "$db" -c "ALTER DATABASE $db SET lifecycle.as_of = '$DAY_BEFORE'"
    q -d "$db" <<SQL
CREATE EXTENSION lifecycle;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL,
                     ordered_at date NOT NULL, amount numeric(10,2) NOT NULL);
INSERT INTO orders (customer_id, ordered_at, amount)
SELECT i, o.day, 10 + i % 90
FROM generate_series(1, $n) i,
     LATERAL (SELECT CASE WHEN i <= $COHORT THEN date '$D' - 61 ELSE date '$D' - 200 - i % 600 END AS last) l,
     LATERAL (VALUES (l.last - 1 - i % 90), (l.last)) o(day);
CREATE INDEX ON orders (customer_id);
VACUUM ANALYZE orders;
SQL
    t0=$(date +%s.%N)
    q -d "$db" -c "SELECT lifecycle.track('orders', 'customer_id', 'ordered_at', 'amount')" >/dev/null
    echo "$db: track() of $n customers: $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f') s" >&2
    q -d "$db" <<SQL
-- Bulk consent as superuser (opt_in() per customer would also write consent_log, which
-- the scheduler never reads).
INSERT INTO lifecycle.consent (source_id, customer, channel, granted, via)
SELECT c.source_id, c.customer, 'email', true, 'bench' FROM lifecycle.customer_stage c;
INSERT INTO lifecycle.playbooks (name, trigger, to_stages, holdout_share, attribution_days)
VALUES ('bench', 'stage', '{inactive}', 0.1, 30);
INSERT INTO lifecycle.playbook_steps (playbook, step, delay, channel, message_key) VALUES
    ('bench', 1, '0 days', 'email', 'bench_1'),
    ('bench', 2, '7 days', 'email', 'bench_2'),
    ('bench', 3, '7 days', 'sms', 'bench_3');
-- The plain SQL's target: the actions table's shape, defaults and indexes.
CREATE TABLE plain_actions (LIKE lifecycle.actions INCLUDING DEFAULTS INCLUDING INDEXES);
-- Server-side timing of one statement: parse, plan, execution; no client round trip.
CREATE FUNCTION bench_ms(sql text) RETURNS double precision LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    EXECUTE sql;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END \$\$;
VACUUM ANALYZE;
CHECKPOINT;
SQL
}

# The playbook part of the refresh just run in this transaction, from the function
# statistics (track_functions = all): one line "tag|refresh|enroll|schedule|announce|
# allowed_at calls|allowed_at ms|transitions|enrolled|actions".
STATS="SELECT concat_ws('|', :'tag',
    round(sum(total_time) FILTER (WHERE funcname = 'refresh')::numeric, 2),
    round(coalesce(sum(total_time) FILTER (WHERE funcname = '_enroll'), 0)::numeric, 2),
    round(coalesce(sum(total_time) FILTER (WHERE funcname = '_schedule'), 0)::numeric, 2),
    round(coalesce(sum(total_time) FILTER (WHERE funcname = '_announce_actions'), 0)::numeric, 2),
    coalesce(sum(calls) FILTER (WHERE funcname = '_allowed_at'), 0),
    round(coalesce(sum(total_time) FILTER (WHERE funcname = '_allowed_at'), 0)::numeric, 2),
    :'tr', :'en', :'ac')
FROM pg_stat_xact_user_functions WHERE schemaname = 'lifecycle';"

# One tick at as_of $1 in a transaction that is rolled back (or committed with $3 = 1),
# printing the STATS line tagged $2; on D the plain SQL too, and the check.
tick() {
    local day=$1 tag=$2 keep=${3:-0}
    cat <<SQL
BEGIN;
SET LOCAL track_functions = 'all';
SELECT set_config('lifecycle.as_of', '$day', true) IS NULL AS x \gset
SELECT coalesce(max(id), 0) AS last_t FROM lifecycle.transitions \gset
SELECT coalesce(max(id), 0) AS last_a FROM lifecycle.actions \gset
SELECT transitions AS tr, enrolled AS en, actions AS ac FROM lifecycle.refresh() \gset
\set tag $tag
$STATS
SQL
    if [ "$tag" = D ] || [ "$tag" = warmD ]; then
        # The plain-SQL way: every treated customer who entered 'inactive' in this tick
        # and has e-mail consent gets step 1 at midnight of the day, in one INSERT. The
        # same holdout hash (so that the answers can be compared); no enrolment rows,
        # no caps, no quiet hours, no second look at the stage.
        cat <<SQL
SELECT '$tag-plain|' || bench_ms(format(\$q\$
    INSERT INTO plain_actions (enrollment_id, playbook, step, source_id, customer, channel,
                               message_key, kind, scheduled_for, due_at)
    SELECT 0, p.name, st.step, t.source_id, t.customer, st.channel, st.message_key, st.kind,
           (t.effective::timestamp AT TIME ZONE s.time_zone) + st.delay,
           (t.effective::timestamp AT TIME ZONE s.time_zone) + st.delay
    FROM lifecycle.transitions t
    JOIN lifecycle.playbooks p ON p.enabled AND p.trigger = 'stage' AND t.to_stage::text = ANY (p.to_stages)
    JOIN lifecycle.playbook_steps st ON st.playbook = p.name AND st.step = 1
    JOIN lifecycle.sources s ON s.id = t.source_id
    JOIN lifecycle.consent c ON c.source_id = t.source_id AND c.customer = t.customer
                            AND c.channel = st.channel AND c.granted
    WHERE t.id > %s AND t.cause <> 'initial'
      AND NOT lifecycle._held_out(p.name, t.customer, p.holdout_share)\$q\$, :last_t));
SELECT 'diff|' || count(*) FROM (
    (SELECT customer, step, channel, message_key, due_at FROM lifecycle.actions WHERE id > :last_a
     EXCEPT ALL SELECT customer, step, channel, message_key, due_at FROM plain_actions)
    UNION ALL
    (SELECT customer, step, channel, message_key, due_at FROM plain_actions
     EXCEPT ALL SELECT customer, step, channel, message_key, due_at FROM lifecycle.actions
     WHERE id > :last_a)) d;
SQL
    fi
    if [ "$keep" = 1 ]; then echo "COMMIT;"; else echo "ROLLBACK;"; fi
}

# Everything timed on one database; prints tagged lines.
measure() {
    local db=$1
    {
        # A first, committed tick with nothing to do: the session's scratch tables
        # exist from then on (ON COMMIT DELETE ROWS), as in the worker.
        tick "$DAY_BEFORE" warm 1
        if [ "$PLANS" = 1 ]; then   # every statement over 20 ms, in every tick (times inflated)
            echo "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 20;"
            echo "SET auto_explain.log_nested_statements = on; SET auto_explain.log_analyze = on;"
        fi
        tick "$D" warmD
        for _ in $(seq "$RUNS"); do tick "$D" D; done
        # The real tick of D, kept: ~9k enrolments now wait for step 2 on D+7.
        tick "$D" committed 1
        # What autovacuum (off here, so that it cannot start during a timed run) would
        # have done by the next day: without it the due-index scans of D+3 first step over
        # the dead entries the D tick and the rolled-back runs left (~130 ms at 1M).
        echo "VACUUM ANALYZE lifecycle.enrollments, lifecycle.actions, lifecycle.customer_stage, lifecycle.transitions;"
        tick "$NOTHING_DUE" warmidle
        for _ in $(seq "$RUNS"); do tick "$NOTHING_DUE" idle; done
        tick "$STEP2" warm7
        for _ in $(seq "$RUNS"); do tick "$STEP2" D7; done
    } | q -d "$db"
}

# median of field $2 of the lines tagged $1 in file $3
med() { awk -F'|' -v t="$1" -v f="$2" '$1 == t { print $f }' "$3" | median; }
summary() {
    local db=$1 n=$2 out
    out=$dir/$db.out
    measure "$db" >"$out"
    local diff
    diff=$(awk -F'|' '$1 == "diff" { s += $2 } END { print s + 0 }' "$out")
    echo "== $n customers (cohort $COHORT), medians of $RUNS"
    printf '%-34s %10s %9s %10s %10s %10s %8s %8s %7s %8s %7s\n' tick refresh_ms enroll_ms schedule_ms \
        announce_ms playbook_ms allowed# allowed_ms trans enrolled actions
    for tag in D idle D7; do
        local r e s a
        r=$(med "$tag" 2 "$out"); e=$(med "$tag" 3 "$out"); s=$(med "$tag" 4 "$out"); a=$(med "$tag" 5 "$out")
        printf '%-34s %10.1f %9.1f %10.1f %10.1f %10.1f %8s %8.1f %7s %8s %7s\n' \
            "$(case $tag in D) echo "D ($D): $COHORT turn inactive";; idle) echo "D+3: nothing due";;
                           D7) echo "D+7: step 2 due";; esac)" \
            "$r" "$e" "$s" "$a" "$(echo "$e + $s + $a" | bc -l)" "$(med "$tag" 6 "$out")" \
            "$(med "$tag" 7 "$out")" "$(med "$tag" 8 "$out")" "$(med "$tag" 9 "$out")" "$(med "$tag" 10 "$out")"
        eval "res_${db}_$tag=\"\$r \$(echo \"\$e + \$s + \$a\" | bc -l)\""
    done
    local plain
    plain=$(awk -F'|' '$1 == "D-plain" { print $2 }' "$out" | median)
    local pb
    pb=$(echo "$(med D 3 "$out") + $(med D 4 "$out") + $(med D 5 "$out")" | bc -l)
    printf 'plain SQL INSERT of the same actions: %.1f ms; playbook part / plain = %.1fx slower; whole refresh / plain = %.1fx\n' \
        "$plain" "$(echo "$pb / $plain" | bc -l)" "$(echo "$(med D 2 "$out") / $plain" | bc -l)"
    printf 'target: the playbook part of the D tick under 1000 ms: %s (%.1f ms)\n' \
        "$(echo "$pb < 1000" | bc -l | sed 's/1/PASS/;s/0/MISS/')" "$pb"
    echo "answers: $diff actions differ between refresh() and the plain SQL (over all runs)"
    [ "$diff" = 0 ] || { echo "ERROR: the actions differ" >&2; exit 1; }
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $("$PG_BIN/postgres" --version);" \
     "lifecycle.so $(md5sum "$("$PG_CONFIG" --pkglibdir)/lifecycle.so" | cut -c1-8)," \
     "$(git log -1 --format='%h %cs' 2>/dev/null || echo '?')"
for n in $SIZES "$CUSTOMERS"; do setup "c$n" "$n"; done
for n in $SIZES "$CUSTOMERS"; do summary "c$n" "$n"; echo; done
first=${SIZES%% *}
for tag in idle; do
    read -r r_small p_small <<<"$(eval echo "\$res_c${first}_$tag")"
    read -r r_big p_big <<<"$(eval echo "\$res_c${CUSTOMERS}_$tag")"
    printf 'nothing due, %s vs %s customers: refresh %.1f vs %.1f ms (ratio %.2f), playbook part %.1f vs %.1f ms (ratio %.2f)\n' \
        "$CUSTOMERS" "$first" "$r_big" "$r_small" "$(echo "$r_big / $r_small" | bc -l)" \
        "$p_big" "$p_small" "$(echo "$p_big / $p_small" | bc -l)"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
