#!/usr/bin/env bash
# bench/run.sh: on-demand benchmarks of lifecycle against the plain-SQL way of getting
# the same answer, in the same run, on the same data. Not run in CI. See bench/README.md.
#
#   bash bench/run.sh                     # 1M customers / ~10M orders, 5 runs each
#   SCALE=0.1 RUNS=3 bash bench/run.sh    # 100k / ~1M, quick
#
# Environment (defaults in brackets):
#   SCALE [1]              customers = 1M x SCALE, orders ~ 10 per customer
#   RUNS [5]               timed repetitions per query; the median is reported
#   WORKERS [0]            max_parallel_workers_per_gather for the stage and RFM queries
#   PARALLEL_WORKERS [2]   max_parallel_workers_per_gather for the parallel churn queries
#   SHARED_BUFFERS [2GB]   WORK_MEM [512MB]   JIT [on, as PostgreSQL]
#   PLANS [0]              1: print EXPLAIN ANALYZE of every timed query at the end
#   KEEP [0]               1: leave the cluster running (and its directory) when done
#   PG_CONFIG [pg_config]  which PostgreSQL installation to use
#
# Exit status: 0 when every answer matched (targets missed or not), 1 on a mismatch or
# any error. A missed target is reported as MISS in the table, not as a failure.
set -euo pipefail

SCALE=${SCALE:-1}
RUNS=${RUNS:-5}
WORKERS=${WORKERS:-0}
PARALLEL_WORKERS=${PARALLEL_WORKERS:-2}
SHARED_BUFFERS=${SHARED_BUFFERS:-2GB}
WORK_MEM=${WORK_MEM:-512MB}
JIT=${JIT:-on}
PLANS=${PLANS:-0}
KEEP=${KEEP:-0}
PG_CONFIG=${PG_CONFIG:-pg_config}

die() { echo "bench: $*" >&2; exit 1; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $WORKERS =~ ^[0-9]+$ ]] || die "WORKERS must be a non-negative integer, got '$WORKERS'"
[[ $PARALLEL_WORKERS =~ ^[1-9][0-9]*$ ]] || die "PARALLEL_WORKERS must be a positive integer"
CUSTOMERS=$(awk -v s="$SCALE" 'BEGIN { n = int(s * 1000000 + 0.5); if (s !~ /^[0-9.]+$/ || n < 100) exit 1; print n }') \
    || die "SCALE must be a number giving at least 100 customers, got '$SCALE'"

BINDIR=$("$PG_CONFIG" --bindir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
[[ -f $SHAREDIR/extension/lifecycle.control ]] \
    || die "lifecycle is not installed in $SHAREDIR (run: make && make install)"

# The server cannot run as root: run it (and initdb) as postgres then.
if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root needs an OS user 'postgres'"
    AS_PG=(runuser -u postgres --)
    DBUSER=postgres
else
    AS_PG=()
    DBUSER=$(id -un)
fi

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/lifecycle-bench.XXXXXX")
DATA=$WORKDIR/data
STARTED=0
cleanup() {
    local status=$?
    if [[ $KEEP == 1 ]]; then
        echo "bench: KEEP=1, cluster left running: psql -h $WORKDIR -p $PORT -U $DBUSER bench" >&2
        echo "bench: stop it with: ${AS_PG[*]} $BINDIR/pg_ctl -D $DATA stop; rm -rf $WORKDIR" >&2
        return
    fi
    if [[ $status != 0 && -f $WORKDIR/server.log ]]; then
        echo "bench: failed (exit $status); the end of the server log:" >&2
        tail -n 30 "$WORKDIR/server.log" >&2
    fi
    if [[ $STARTED == 1 ]]; then
        "${AS_PG[@]}" "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORKDIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[[ $EUID -eq 0 ]] && chown postgres: "$WORKDIR"

# A free TCP port; the server listens only on its unix socket in $WORKDIR, but the port
# names the socket and must not clash with another server's.
port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q . || [[ -e /tmp/.s.PGSQL.$1 ]]; }
PORT=
for _ in $(seq 1 200); do
    candidate=$((20000 + RANDOM % 40000))
    if ! port_in_use "$candidate"; then PORT=$candidate; break; fi
done
[[ -n $PORT ]] || die "no free port found"

echo "bench: initdb in $WORKDIR (port $PORT)" >&2
"${AS_PG[@]}" "$BINDIR/initdb" -D "$DATA" -U "$DBUSER" -A trust -E UTF8 --locale=C >"$WORKDIR/initdb.log" 2>&1 \
    || { cat "$WORKDIR/initdb.log" >&2; die "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<EOF
# bench/run.sh: a throwaway cluster tuned for repeatable reads, not durability.
listen_addresses = ''
unix_socket_directories = '$WORKDIR'
port = $PORT
shared_buffers = '$SHARED_BUFFERS'
work_mem = '$WORK_MEM'
maintenance_work_mem = '1GB'
max_parallel_workers_per_gather = $WORKERS
max_worker_processes = 16
max_parallel_workers = 16
jit = $JIT
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = '20GB'
checkpoint_timeout = '1h'
autovacuum = off
EOF
"${AS_PG[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$WORKDIR/server.log" -w -t 120 start >/dev/null \
    || { cat "$WORKDIR/server.log" >&2; die "server did not start"; }
STARTED=1

PSQL=("$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORKDIR" -p "$PORT" -U "$DBUSER")
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE bench'
PSQL+=(-d bench)

# --------------------------------------------------------------------------------------
# Data: customers, orders, and the per-customer summary the stage and RFM queries read.
# --------------------------------------------------------------------------------------
echo "bench: generating $CUSTOMERS customers / ~$((CUSTOMERS * 10)) orders" >&2
T0=$(date +%s)
"${PSQL[@]}" -v customers="$CUSTOMERS" <<'SQL'
CREATE EXTENSION lifecycle;
CREATE SCHEMA bench;
SET max_parallel_workers_per_gather = 0;  -- random() in one process: same data every run

-- Customers: first purchase uniform over 2023-01-01..2024-12-31; an active lifetime
-- ~ Exponential(mean 180 days), cut at 2024-12-31; orders ~ 1 + Geometric, mean 10
-- (10% buy once, 1% more than 40 times).
SELECT setseed(0.20250101) \g /dev/null
CREATE TABLE bench.customers AS
SELECT c AS customer_id, first_day,
       least(lifetime, date '2024-12-31' - first_day) AS lifetime_days, n_orders
FROM (SELECT c,
             date '2023-01-01' + floor(random() * 731)::int AS first_day,
             floor(-ln(1 - random()) * 180)::int AS lifetime,
             1 + floor(-ln(1 - random()) * 9.49)::int AS n_orders
      FROM generate_series(1, :customers) AS c) s;

-- Orders: the first on first_day, the rest uniform over the lifetime; amounts log-normal
-- (median ~37, mean ~50), 2 decimals. Stored in date order, as an orders table grows.
CREATE TABLE bench.orders AS
SELECT row_number() OVER (ORDER BY order_date, customer_id) AS order_id,
       customer_id, order_date, amount
FROM (SELECT c.customer_id,
             c.first_day + CASE WHEN k = 1 THEN 0
                                ELSE floor(random() * (c.lifetime_days + 1))::int END AS order_date,
             round(exp(3.6 + 0.8 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::numeric, 2)
                 AS amount
      FROM bench.customers c CROSS JOIN LATERAL generate_series(1, c.n_orders) AS k) o;

-- The per-customer summary: n is the number of distinct purchase days (the n of the
-- stage rules and the RFM frequency); monetary is the total spend.
CREATE TABLE bench.summary AS
SELECT customer_id,
       min(order_date) AS first_order,
       max(order_date) AS last_order,
       count(DISTINCT order_date) AS n_days,
       count(*) AS n_orders,
       sum(amount)::double precision AS total_spend
FROM bench.orders
GROUP BY customer_id
ORDER BY customer_id;

VACUUM (FREEZE, ANALYZE) bench.customers, bench.orders, bench.summary;
CHECKPOINT;
SQL
echo "bench: data ready in $(( $(date +%s) - T0 )) s" >&2


# --------------------------------------------------------------------------------------
# The queries. Each side of a comparison has a per-customer form (`detail`), used to
# check that both ways give every customer the same answer, and the timed form, which
# reduces it to a few rows so that the client does not weigh in.
# as_of is 2025-01-01 (the day after the last order); the churn period is November 2024.
# --------------------------------------------------------------------------------------
"${PSQL[@]}" <<'SQL'
CREATE TABLE bench.queries (name text PRIMARY KEY, detail text NOT NULL, timed text NOT NULL);

-- a. Stage of every customer; timed: counted per stage.
INSERT INTO bench.queries (name, detail, timed)
SELECT name, detail, format('SELECT stage, count(*) FROM (%s) t GROUP BY stage', detail)
FROM (VALUES
('stage_immutable', $q$
SELECT customer_id,
       lifecycle.lifecycle_stage(first_order, last_order, n_days, date '2025-01-01',
                                 30, 30, 60, 90, 2.0, 3) AS stage
FROM bench.summary
$q$),
('stage_policy', $q$
SELECT customer_id,
       lifecycle.lifecycle_stage(first_order, last_order, n_days, date '2025-01-01', 'default') AS stage
FROM bench.summary
$q$),
-- The brief's 7 rules with the default windows, in the same order and arithmetic (rule 6
-- in double precision; rhythm_factor = 2 > 0 needs no test), to the same enum type.
('stage_case', $q$
SELECT customer_id,
       CASE
         WHEN first_order IS NULL OR n_days = 0 THEN 'prospect'::lifecycle.stage
         WHEN date '2025-01-01' - last_order > 90 THEN 'lapsed'::lifecycle.stage
         WHEN date '2025-01-01' - last_order > 60 THEN 'inactive'::lifecycle.stage
         WHEN date '2025-01-01' - last_order > 30 THEN 'at_risk'::lifecycle.stage
         WHEN date '2025-01-01' - first_order <= 30 THEN 'new'::lifecycle.stage
         WHEN n_days >= 3
              AND (date '2025-01-01' - last_order)::float8
                  > 2.0::float8 * (last_order - first_order) / (n_days - 1)::float8
           THEN 'at_risk'::lifecycle.stage
         ELSE 'active'::lifecycle.stage
       END AS stage
FROM bench.summary
$q$)) AS v(name, detail);

-- b. RFM scores of every customer within the whole population; timed: counted per
-- (R, F, M) cell. Recency = days since the last order, frequency = distinct purchase
-- days, monetary = total spend.
INSERT INTO bench.queries (name, detail, timed)
SELECT name, detail, format('SELECT r, f, m, count(*) FROM (%s) t GROUP BY r, f, m', detail)
FROM (VALUES
('rfm_window', $q$
SELECT customer_id, (s).r, (s).f, (s).m
FROM (SELECT customer_id,
             lifecycle.rfm_score((date '2025-01-01' - last_order)::float8, n_days, total_spend) OVER () AS s
      FROM bench.summary) w
$q$),
-- score = 1 + floor(5 (rank - 1) / N), rank ascending in goodness: an older last order
-- is worse (recency), fewer purchase days and less spend are worse. Integer division
-- of non-negative numbers is the floor.
('rfm_rank', $q$
SELECT customer_id,
       (1 + 5 * (rank() OVER (ORDER BY last_order) - 1) / count(*) OVER ())::int AS r,
       (1 + 5 * (rank() OVER (ORDER BY n_days) - 1) / count(*) OVER ())::int AS f,
       (1 + 5 * (rank() OVER (ORDER BY total_spend) - 1) / count(*) OVER ())::int AS m
FROM bench.summary
$q$)) AS v(name, detail);

-- c. Churn of November 2024 (inactive after 60, lapsed after 90 days) from the raw orders.
-- detail: each customer's status flags (1 base, 2 churned, 4 reactivated, 8 new);
-- timed: the churn rate.
INSERT INTO bench.queries (name, detail, timed) VALUES
('churn_lifecycle', $q$
SELECT customer_id,
       lifecycle.churn_status(order_date, date '2024-11-01', date '2024-12-01', 60, 90) AS status
FROM bench.orders GROUP BY customer_id
$q$, $q$
SELECT lifecycle.churn_rate(s)
FROM (SELECT lifecycle.churn_status(order_date, date '2024-11-01', date '2024-12-01', 60, 90) AS s
      FROM bench.orders GROUP BY customer_id) t
$q$),
-- Base: bought before start, the last time at most 90 days before start. Churned: of
-- the base, the last purchase before end more than 90 days before end. Reactivated: more
-- than 60 days idle at start and bought during the period. New: first purchase during it.
('churn_sql', $q$
SELECT customer_id,
       CASE WHEN idle_at_start <= 90 THEN 1 ELSE 0 END
       | CASE WHEN idle_at_start <= 90 AND idle_at_end > 90 THEN 2 ELSE 0 END
       | CASE WHEN idle_at_start > 60 AND bought_during THEN 4 ELSE 0 END
       | CASE WHEN idle_at_start IS NULL AND bought_during THEN 8 ELSE 0 END AS status
FROM (SELECT customer_id,
             date '2024-11-01' - max(order_date) FILTER (WHERE order_date < date '2024-11-01') AS idle_at_start,
             date '2024-12-01' - max(order_date) FILTER (WHERE order_date < date '2024-12-01') AS idle_at_end,
             count(*) FILTER (WHERE order_date >= date '2024-11-01'
                                AND order_date < date '2024-12-01') > 0 AS bought_during
      FROM bench.orders GROUP BY customer_id) c
$q$, $q$
SELECT count(*) FILTER (WHERE idle_at_start <= 90 AND idle_at_end > 90)::float8
       / nullif(count(*) FILTER (WHERE idle_at_start <= 90), 0)
FROM (SELECT date '2024-11-01' - max(order_date) FILTER (WHERE order_date < date '2024-11-01') AS idle_at_start,
             date '2024-12-01' - max(order_date) FILTER (WHERE order_date < date '2024-12-01') AS idle_at_end
      FROM bench.orders GROUP BY customer_id) c
$q$);

-- A mode is how a query may use parallel workers: '0' (serial), 'N' (up to N workers,
-- the planner decides) or 'N forced' (parallel_setup_cost = parallel_tuple_cost = 0, so
-- the planner takes a parallel plan whenever it has one).
CREATE FUNCTION bench.apply_mode(mode text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('max_parallel_workers_per_gather', split_part(mode, ' ', 1), false);
    PERFORM set_config('parallel_setup_cost', CASE WHEN mode LIKE '% forced' THEN '0' ELSE '1000' END, false);
    PERFORM set_config('parallel_tuple_cost', CASE WHEN mode LIKE '% forced' THEN '0' ELSE '0.1' END, false);
END
$$;

CREATE TABLE bench.timings (grp text, name text, mode text, run int, ms float8);

-- Times each query `runs` times, after one untimed warm-up each (caches warm for every
-- side). Run i starts with query i mod k and goes round, so each side in turn runs first.
-- (Odd runs go round forward, even runs backward.)
-- Timed on the server: clock_timestamp() around EXECUTE, parse and plan included, the
-- few result rows discarded; no client or network in the numbers.
CREATE PROCEDURE bench.measure(grp text, names text[], modes text[], runs int)
LANGUAGE plpgsql AS $$
DECLARE
    k int := cardinality(names);
    q text;
    idx int;
    t0 timestamptz;
    elapsed float8;
    line text;
BEGIN
    FOR j IN 1..k LOOP
        SELECT timed INTO STRICT q FROM bench.queries WHERE name = names[j];
        PERFORM bench.apply_mode(modes[j]);
        EXECUTE q;
    END LOOP;
    FOR i IN 1..runs LOOP
        line := format('%s run %s/%s:', grp, i, runs);
        FOR j IN 0..k - 1 LOOP
            -- Backward on even runs: a query does not always follow the same other one
            -- (what ran just before can matter: freed memory, caches).
            idx := 1 + (i - 1 + CASE WHEN i % 2 = 1 THEN j ELSE k - j END) % k;
            SELECT timed INTO STRICT q FROM bench.queries WHERE name = names[idx];
            PERFORM bench.apply_mode(modes[idx]);
            t0 := clock_timestamp();
            EXECUTE q;
            elapsed := 1000 * extract(epoch FROM clock_timestamp() - t0);
            INSERT INTO bench.timings VALUES (grp, names[idx], modes[idx], i, elapsed);
            line := line || format('  %s[%s] %s', names[idx], modes[idx], round(elapsed::numeric));
        END LOOP;
        RAISE NOTICE '% (ms)', line;
    END LOOP;
END
$$;

-- How many rows are in one answer and not in the other (multiset difference both ways).
CREATE FUNCTION bench.answer_diff(query_a text, query_b text, mode_a text, mode_b text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE diff bigint;
BEGIN
    PERFORM bench.apply_mode(mode_a);
    EXECUTE 'CREATE TEMP TABLE answer_a AS ' || query_a;
    PERFORM bench.apply_mode(mode_b);
    EXECUTE 'CREATE TEMP TABLE answer_b AS ' || query_b;
    SELECT count(*) INTO diff
    FROM ((TABLE answer_a EXCEPT ALL TABLE answer_b) UNION ALL (TABLE answer_b EXCEPT ALL TABLE answer_a)) d;
    DROP TABLE answer_a, answer_b;
    RETURN diff;
END
$$;

-- EXPLAIN ANALYZE (TIMING OFF) of a timed query, line by line.
CREATE FUNCTION bench.plan(query_name text, mode text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE q text; line text;
BEGIN
    SELECT timed INTO STRICT q FROM bench.queries WHERE name = query_name;
    PERFORM bench.apply_mode(mode);
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF) ' || q LOOP
        RETURN NEXT line;
    END LOOP;
END
$$;
SQL

# --------------------------------------------------------------------------------------
# Report: where and what.
# --------------------------------------------------------------------------------------
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$REPO" status --porcelain -- src 2>/dev/null) ]]; then COMMIT="$COMMIT (src/ has uncommitted changes)"; fi
SO=$PKGLIBDIR/lifecycle.so
SO_SUM=$(md5sum "$SO" | cut -c1-12)
echo
echo "== lifecycle bench  $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine:    $(uname -srm); $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)); $(awk '/MemTotal/ { printf "%.0f GB RAM", $2 / 1048576 }' /proc/meminfo)"
echo "load avg:   $(cut -d' ' -f1-3 /proc/loadavg) (at start of timing)"
echo "postgres:   $("${PSQL[@]}" -Atc 'SELECT version()')"
echo "lifecycle:  $("${PSQL[@]}" -Atc "SELECT extversion FROM pg_extension WHERE extname = 'lifecycle'"), $SO built $(date -u -r "$SO" '+%Y-%m-%d %H:%M UTC') (md5 $SO_SUM), repo at $COMMIT"
echo "settings:   SCALE=$SCALE RUNS=$RUNS WORKERS=$WORKERS PARALLEL_WORKERS=$PARALLEL_WORKERS shared_buffers=$SHARED_BUFFERS work_mem=$WORK_MEM jit=$JIT (other settings: PostgreSQL defaults)"
"${PSQL[@]}" -At -F' ' <<'SQL'
SELECT 'data:       ' || (SELECT count(*) FROM bench.summary) || ' customers, '
       || (SELECT count(*) FROM bench.orders) || ' orders from '
       || (SELECT min(order_date) || ' to ' || max(order_date) FROM bench.orders)
       || '; orders ' || pg_size_pretty(pg_table_size('bench.orders'))
       || ', summary ' || pg_size_pretty(pg_table_size('bench.summary'));
SELECT 'stages:     ' || string_agg(stage || ' ' || n, ', ' ORDER BY stage)
FROM (SELECT lifecycle.lifecycle_stage(first_order, last_order, n_days, date '2025-01-01') AS stage,
             count(*) AS n
      FROM bench.summary GROUP BY 1) s;
SELECT 'churn:      November 2024: base ' || base || ', churned ' || churned || ', reactivated '
       || reactivated || ', new ' || new || ', churn rate ' || round(churn_rate::numeric, 4)
FROM (SELECT (lifecycle.churn_counts(s)).*
      FROM (SELECT lifecycle.churn_status(order_date, date '2024-11-01', date '2024-12-01', 60, 90) AS s
            FROM bench.orders GROUP BY customer_id) t) c;
SQL

# --------------------------------------------------------------------------------------
# Same answers: per customer, and the timed queries' outputs. Any difference stops here.
# --------------------------------------------------------------------------------------
VARS=(-v w="'$WORKERS'" -v p="'$PARALLEL_WORKERS'" -v pf="'$PARALLEL_WORKERS forced'" -v runs="$RUNS" -v plans="$PLANS")
echo
echo "== same answers (rows in one answer and not in the other; all must be 0)"
"${PSQL[@]}" "${VARS[@]}" <<'SQL'
CREATE TABLE bench.checks AS
SELECT c.label AS "check", bench.answer_diff(a.q, b.q, c.mode_a, c.mode_b) AS mismatches
FROM (VALUES
    (1, 'a. stage per customer: IMMUTABLE vs CASE', 'stage_immutable', 'stage_case', true, :w, :w),
    (2, 'a. stage per customer: STABLE policy vs CASE', 'stage_policy', 'stage_case', true, :w, :w),
    (3, 'a. stage counts (timed output): IMMUTABLE vs CASE', 'stage_immutable', 'stage_case', false, :w, :w),
    (4, 'a. stage counts (timed output): STABLE policy vs CASE', 'stage_policy', 'stage_case', false, :w, :w),
    (5, 'b. RFM per customer: rfm_score vs rank()', 'rfm_window', 'rfm_rank', true, :w, :w),
    (6, 'b. RFM cell counts (timed output): rfm_score vs rank()', 'rfm_window', 'rfm_rank', false, :w, :w),
    (7, 'c. churn flags per customer: churn_status vs SQL', 'churn_lifecycle', 'churn_sql', true, '0', '0'),
    (8, 'c. churn rate (timed output): lifecycle vs SQL, serial', 'churn_lifecycle', 'churn_sql', false, '0', '0'),
    (9, 'c. churn rate (timed output): lifecycle vs SQL, ' || :p || ' workers', 'churn_lifecycle', 'churn_sql', false, :p, :p),
    (10, 'c. churn rate (timed output): lifecycle serial vs ' || :pf, 'churn_lifecycle', 'churn_lifecycle', false, '0', :pf)
) AS c(ord, label, name_a, name_b, per_customer, mode_a, mode_b)
CROSS JOIN LATERAL (SELECT CASE WHEN c.per_customer THEN detail ELSE timed END FROM bench.queries WHERE name = c.name_a) a(q)
CROSS JOIN LATERAL (SELECT CASE WHEN c.per_customer THEN detail ELSE timed END FROM bench.queries WHERE name = c.name_b) b(q)
ORDER BY c.ord;
TABLE bench.checks;
SQL
BAD=$("${PSQL[@]}" -Atc 'SELECT count(*) FROM bench.checks WHERE mismatches <> 0')
if [[ $BAD != 0 ]]; then
    echo "bench: FAILED: lifecycle and plain SQL give different answers in $BAD check(s) above" >&2
    exit 1
fi

# --------------------------------------------------------------------------------------
# Plans: one EXPLAIN ANALYZE run of each timed query (also a warm-up): which plan, did
# the workers launch, did anything spill to disk, was JIT used.
# --------------------------------------------------------------------------------------
echo
echo "== plans (one EXPLAIN ANALYZE run of each timed query)"
"${PSQL[@]}" "${VARS[@]}" <<'SQL'
\pset footer off
CREATE TABLE bench.plans AS
SELECT q.qord, q.name, q.mode, p.ord, p.line
FROM (VALUES (1, 'stage_immutable', :w), (2, 'stage_policy', :w), (3, 'stage_case', :w),
             (4, 'rfm_window', :w), (5, 'rfm_rank', :w),
             (6, 'churn_lifecycle', '0'), (7, 'churn_sql', '0'),
             (8, 'churn_lifecycle', :p), (9, 'churn_sql', :p), (10, 'churn_lifecycle', :pf))
     AS q(qord, name, mode)
CROSS JOIN LATERAL bench.plan(q.name, q.mode) WITH ORDINALITY AS p(line, ord);
CREATE VIEW bench.plan_summary AS
SELECT qord, name, mode,
       coalesce(max(substring(line FROM 'Workers Launched: (\d+)'))::int, 0) AS workers_launched,
       bool_or(line ~ 'Disk|external|Batches: ([2-9]|\d\d)') AS spilled,
       bool_or(line ~ '^JIT:') AS jit,
       string_agg(substring(line FROM '((Finalize |Partial )?(Hash|Mixed|Group)?Aggregate|WindowAgg|Sort|Gather( Merge)?)  \(cost'),
                  ' < ' ORDER BY ord) AS nodes
FROM bench.plans GROUP BY qord, name, mode;
SELECT name AS query, mode, workers_launched AS "workers launched",
       CASE WHEN spilled THEN 'SPILLED' ELSE 'in memory' END AS memory,
       CASE WHEN jit THEN 'yes' ELSE 'no' END AS jit,
       nodes AS "plan (top node first)"
FROM bench.plan_summary ORDER BY qord;
\if :plans
\pset format unaligned
\pset tuples_only on
SELECT CASE WHEN ord = 1 THEN E'\n-- ' || name || ' [' || mode || E']\n' ELSE '' END || line
FROM bench.plans ORDER BY qord, ord;
\endif
SQL

# --------------------------------------------------------------------------------------
# Timing.
# --------------------------------------------------------------------------------------
echo
echo "== timing: $RUNS runs per query after one warm-up, order rotated each run; [mode] = parallel workers"
echo "load avg:   $(cut -d' ' -f1-3 /proc/loadavg) (before timing)"
"${PSQL[@]}" "${VARS[@]}" <<'SQL' 2>&1 | sed 's/^NOTICE:  /  /'
CALL bench.measure('a', ARRAY['stage_immutable', 'stage_policy', 'stage_case'], ARRAY[:w, :w, :w], :runs);
CALL bench.measure('b', ARRAY['rfm_window', 'rfm_rank'], ARRAY[:w, :w], :runs);
CALL bench.measure('c', ARRAY['churn_lifecycle', 'churn_sql', 'churn_lifecycle', 'churn_sql', 'churn_lifecycle'],
                   ARRAY['0', '0', :p, :p, :pf], :runs);
SQL
echo "load avg:   $(cut -d' ' -f1-3 /proc/loadavg) (after timing)"
[[ $(md5sum "$SO" | cut -c1-12) == "$SO_SUM" ]] \
    || echo "bench: WARNING: $SO was replaced during the run (make install?); numbers may mix two builds" >&2

echo
echo "== results (median ms; ratio = baseline ms / lifecycle ms, > 1 means lifecycle faster;"
echo "   paired ratio = median over runs of the same ratio within each run; PASS/MISS judges ratio)"
"${PSQL[@]}" "${VARS[@]}" <<'SQL'
\pset footer off
WITH med AS (
    SELECT name, mode, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms
    FROM bench.timings GROUP BY name, mode
), cmp(ord, comparison, lc_name, lc_mode, base_name, base_mode, target, strict) AS (VALUES
    (1, 'a. lifecycle_stage IMMUTABLE vs CASE', 'stage_immutable', :w, 'stage_case', :w, 1.0, false),
    (2, 'a. lifecycle_stage STABLE (policy) vs CASE', 'stage_policy', :w, 'stage_case', :w, NULL, false),
    (3, 'b. rfm_score() OVER () vs 3 rank() windows', 'rfm_window', :w, 'rfm_rank', :w, 1.5, false),
    (4, 'c. churn, serial: lifecycle vs SQL', 'churn_lifecycle', '0', 'churn_sql', '0', 1.0, false),
    (5, 'c. churn, ' || :p || ' workers: lifecycle vs SQL', 'churn_lifecycle', :p, 'churn_sql', :p, NULL, false),
    (6, 'c. lifecycle churn: ' || :p || ' workers vs serial', 'churn_lifecycle', :p, 'churn_lifecycle', '0', 1.0, true),
    (7, 'c. lifecycle churn: ' || :pf || ' vs serial', 'churn_lifecycle', :pf, 'churn_lifecycle', '0', NULL, false),
    (8, 'c. SQL churn: ' || :p || ' workers vs serial', 'churn_sql', :p, 'churn_sql', '0', NULL, false)
 -- Each run measures both sides within seconds of each other: the median of the per-run
 -- ratios is less sensitive to load that drifts across runs than the ratio of medians.
), paired AS (
    SELECT c.ord, percentile_cont(0.5) WITHIN GROUP (ORDER BY tb.ms / tl.ms) AS ratio
    FROM cmp c
    JOIN bench.timings tl ON tl.name = c.lc_name AND tl.mode = c.lc_mode
    JOIN bench.timings tb ON tb.name = c.base_name AND tb.mode = c.base_mode AND tb.run = tl.run
    GROUP BY c.ord
)
SELECT c.comparison,
       round(l.ms::numeric, 1) AS "lifecycle ms",
       round(b.ms::numeric, 1) AS "baseline ms",
       round((b.ms / l.ms)::numeric, 2) AS ratio,
       round(pr.ratio::numeric, 2) AS "paired ratio",
       coalesce(CASE WHEN c.strict THEN '> ' ELSE '>= ' END || c.target, '-') AS target,
       CASE WHEN c.target IS NULL THEN 'info'
            WHEN ((c.strict AND b.ms / l.ms > c.target) OR (NOT c.strict AND b.ms / l.ms >= c.target))
                 AND NOT (c.lc_mode <> c.base_mode AND ps.workers_launched = 0) THEN 'PASS'
            ELSE 'MISS'
       END
       -- Comparing worker counts is moot when the planner took a serial plan anyway.
       || CASE WHEN c.lc_mode <> c.base_mode AND ps.workers_launched = 0 THEN ' (serial plan)' ELSE '' END AS result
FROM cmp c
JOIN med l ON l.name = c.lc_name AND l.mode = c.lc_mode
JOIN med b ON b.name = c.base_name AND b.mode = c.base_mode
JOIN paired pr ON pr.ord = c.ord
LEFT JOIN bench.plan_summary ps ON ps.name = c.lc_name AND ps.mode = c.lc_mode
ORDER BY c.ord;

\echo
SELECT name AS query, mode, count(*) AS runs,
       round(min(ms)::numeric, 1) AS "min ms",
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 1) AS "median ms",
       round(max(ms)::numeric, 1) AS "max ms"
FROM bench.timings GROUP BY name, mode ORDER BY min(grp), name, mode;
SQL
