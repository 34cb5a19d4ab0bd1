#!/usr/bin/env bash
# test/sqlsmith.sh SECONDS -- crash fuzzing of the lifecycle extension.
#
# Builds a database `lifecycle_fuzz` (orders with edge values, customer summaries,
# stored breakpoints, malformed aggregate states, views that call every lifecycle
# function), then for SECONDS seconds runs, side by side:
#   * sqlsmith, as the non-superuser role lifecycle_fuzzer, with a fixed seed;
#   * a deterministic loop (as the superuser) that calls every lifecycle function,
#     the internal lifecycle._* transition/combine/final functions included, with
#     random and extreme arguments and hand-made malformed states, and runs the
#     aggregates under forced JIT, forced parallel query, hash-aggregate spills,
#     moving window frames, grouping sets, scroll cursors and edited policy/segment
#     rows. ERRORs are expected and fine.
# PASS unless a backend crashed: a crash is seen in the server log ("terminated by
# signal", "PANIC", "all server processes terminated; reinitializing", ...), by a
# sentinel session that a crash-restart kills (pg_postmaster_start_time() does not
# change on a crash-restart), by sqlsmith or the loop losing their connection, or by
# pg_postmaster_start_time() changing. Also FAIL when the run cannot be done at all
# (no server, setup error) or sqlsmith ran no query: a fuzz step that tested nothing
# must not pass. A run takes SECONDS plus ~5 s of setup.
#
# Server: with PGHOST set, the running server the caller started (libpq variables
# PGHOST/PGPORT, superuser `postgres` reachable without a password; SQLSMITH_LOG is
# its log file). Without PGHOST, a throwaway cluster in a temp dir (run as the
# `postgres` OS user when root), stopped and removed at the end (kept on FAIL).
#
# Environment:
#   SQLSMITH_LOG        server log to inspect (with PGHOST; own cluster: its own log)
#   SQLSMITH_SEED       sqlsmith seed and loop seed base (default 20240601); a restarted
#                       sqlsmith uses SEED+1, SEED+2, ...
#   SQLSMITH_KEEP=1     keep the temp dir (and the database, with PGHOST) on PASS too
#   SQLSMITH_SELFTEST_CRASH=1  kill -SEGV one backend mid-run, to prove the detector
#                       (needs permission to signal the server's processes)
#
# Output: a short summary, and as the last line exactly
#   sqlsmith: 1 passed, 0 failed     (exit 0)   or
#   sqlsmith: 0 passed, 1 failed     (exit 1)
# Reproduce a sqlsmith run: same seed, same database (the tables are generated with a
# fixed setseed and sqlsmith gets no write privilege, so schema and data are equal; keep
# them with SQLSMITH_KEEP=1, restart the kept cluster with pg_ctl -D DIR/data start):
#   sqlsmith --target="dbname=lifecycle_fuzz user=lifecycle_fuzzer password=lifecycle_fuzzer_pw" \
#            --seed=S --exclude-catalog --dry-run --max-queries=N     prints the queries.
# On a crash the summary shows the server log lines, the query the crashed backend was
# running and, with an own cluster and gdb installed, the core file's backtrace.
set -u

usage() {
    echo "usage: $0 SECONDS   (PGHOST/PGPORT/SQLSMITH_LOG for an existing server)" >&2
    exit 2
}
[[ $# -eq 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
DURATION=$1
SEED=${SQLSMITH_SEED:-20240601}
[[ $SEED =~ ^[0-9]+$ ]] || { echo "SQLSMITH_SEED must be a non-negative integer" >&2; exit 2; }

DB=lifecycle_fuzz
FUZZ_ROLE=lifecycle_fuzzer
FUZZ_PW=lifecycle_fuzzer_pw
SU=postgres
OWN_CLUSTER=0
WORK=
DATA=
RESULT=fail
FAIL_REASONS=()
BG_PIDS=()

say() { echo "sqlsmith: $*"; }
fail_reason() { FAIL_REASONS+=("$1"); }

finish() {
    # Cleans up, then prints the verdict as the last line; exit 0 on PASS, 1 on FAIL.
    cleanup
    if [[ $RESULT == pass ]]; then
        echo "sqlsmith: 1 passed, 0 failed"
        exit 0
    fi
    echo "sqlsmith: 0 passed, 1 failed"
    exit 1
}

as_pg() {
    if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# psql as the superuser; extra arguments follow.
PSQL_SU=(psql -X -q -U "$SU")
psql_su() { "${PSQL_SU[@]}" "$@"; }

stop_background() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            pkill -TERM -P "$pid" 2>/dev/null
            kill -TERM "$pid" 2>/dev/null
        fi
    done
    for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    BG_PIDS=()
}

CLEANED=0
cleanup() {
    ((CLEANED)) && return
    CLEANED=1
    stop_background
    if [[ $OWN_CLUSTER -eq 1 && -n $DATA && -f $DATA/postmaster.pid ]]; then
        as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -t 30 stop >/dev/null 2>&1 ||
            as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1
    fi
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ $RESULT == pass && ${SQLSMITH_KEEP:-0} != 1 ]]; then
            rm -rf "$WORK"
        else
            if ((OWN_CLUSTER)); then
                say "kept $WORK (server log, data directory, sqlsmith and loop output)"
            else
                say "kept $WORK (sqlsmith and loop output; database $DB left in place)"
            fi
        fi
    fi
}
trap cleanup EXIT
trap 'say "interrupted"; RESULT=fail; finish' INT TERM

command -v sqlsmith >/dev/null || { say "sqlsmith is not installed"; finish; }
command -v psql >/dev/null || { say "psql is not installed"; finish; }
PGBIN=$(${PG_CONFIG:-pg_config} --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)

WORK=$(mktemp -d /tmp/lifecycle-sqlsmith.XXXXXX) || { say "mktemp failed"; finish; }
chmod 755 "$WORK"
[[ $EUID -eq 0 ]] && chown postgres: "$WORK"

# ---------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------
if [[ -z ${PGHOST:-} ]]; then
    OWN_CLUSTER=1
    DATA=$WORK/data
    export PGHOST=$WORK PGPORT=${SQLSMITH_PORT:-54329}
    SQLSMITH_LOG=$WORK/server.log
    if ! as_pg "$PGBIN/initdb" -D "$DATA" -A trust -U "$SU" -E UTF8 --locale=C --no-sync \
            >"$WORK/initdb.log" 2>&1; then
        say "initdb failed:"; cat "$WORK/initdb.log"; finish
    fi
    cat >>"$DATA/postgresql.conf" <<EOF

# lifecycle test/sqlsmith.sh
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PGPORT
max_connections = 40
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_worker_processes = 16
max_parallel_workers = 8
max_parallel_workers_per_gather = 2
track_activity_query_size = 65536
restart_after_crash = on
jit = on
# LOG keeps the postmaster's crash reports and drops the fuzzer's ERROR noise.
log_min_messages = log
log_min_error_statement = panic
log_line_prefix = '%m [%p] '
EOF
    # pg_ctl -c: allow core files (the core lands in the data directory).
    if ! as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$SQLSMITH_LOG" -c -w -t 60 start >/dev/null 2>&1; then
        say "could not start a throwaway cluster:"; cat "$SQLSMITH_LOG" 2>/dev/null; finish
    fi
    say "own throwaway cluster in $WORK (socket dir), log $SQLSMITH_LOG"
else
    export PGHOST PGPORT
    if [[ -z ${SQLSMITH_LOG:-} ]]; then
        # Ask the server where it logs (works with logging_collector only).
        f=$(psql_su -d postgres -Atc "SELECT CASE WHEN pg_current_logfile() LIKE '/%'
                THEN pg_current_logfile()
                ELSE current_setting('data_directory') || '/' || pg_current_logfile() END" 2>/dev/null)
        [[ -n $f && -r $f ]] && SQLSMITH_LOG=$f
    fi
    say "server PGHOST=$PGHOST PGPORT=${PGPORT:-default}, log ${SQLSMITH_LOG:-<none>}"
fi
unset PGDATABASE PGUSER PGOPTIONS

if ! psql_su -d postgres -Atc 'SELECT 1' >/dev/null 2>"$WORK/connect.err"; then
    say "cannot connect as $SU:"; cat "$WORK/connect.err"; finish
fi
if [[ -n ${SQLSMITH_LOG:-} && ! -r $SQLSMITH_LOG ]]; then
    say "WARNING: cannot read SQLSMITH_LOG=$SQLSMITH_LOG; crash detection without the log"
    SQLSMITH_LOG=
fi
[[ -z ${SQLSMITH_LOG:-} ]] &&
    say "WARNING: no server log; crashes are detected by lost connections only"

# ---------------------------------------------------------------------------------
# The database
# ---------------------------------------------------------------------------------
cat >"$WORK/setup.sql" <<'SQL'
SET client_min_messages = warning;
SET TimeZone = 'UTC';
CREATE EXTENSION lifecycle;
SELECT setseed(0.4242);

-- Extra policies at the limits of what lifecycle.policies accepts.
INSERT INTO lifecycle.policies (name, onboarding_days, at_risk_days, inactive_days, lapsed_days,
                                rhythm_factor, rhythm_min_purchases, description) VALUES
    ('fuzz_zero', 0, 0, 0, 0, 0, 2, 'every window zero'),
    ('fuzz_huge', 2147483647, 2147483647, 2147483647, 2147483647,
     1.7976931348623157e308, 2147483647, 'maximal windows'),
    ('fuzz_rhythm', 0, 0, 0, 2147483647, 1e308, 2, 'rhythm rule only'),
    ('fuzz_tiny_rhythm', 2147483647, 0, 0, 2147483647, 5e-324, 2, 'denormal rhythm factor'),
    (repeat('p', 127), 1, 2, 3, 4, 0.5, 2, 'longest name the cache takes');

CREATE TABLE orders (
    order_id    bigserial PRIMARY KEY,
    customer_id integer,
    order_date  date,
    ordered_at  timestamptz,
    amount      numeric,
    amount_f    double precision,
    policy      text
);
-- Ordinary orders: 500 customers, 1..12 orders each, 2015..2024.
INSERT INTO orders (customer_id, order_date, ordered_at, amount, amount_f, policy)
SELECT c, o.d, (o.d + make_interval(secs => floor(random() * 86400)))::timestamptz,
       round((random() * 500)::numeric, 2), random() * 500,
       (ARRAY['default', 'saas', 'fashion_retail', 'daily_consumer_goods', 'high_value_goods'])[1 + c % 5]
FROM generate_series(1, 500) AS c
CROSS JOIN LATERAL (
    SELECT DATE '2015-01-01' + floor(random() * 3653)::int AS d
    FROM generate_series(1, 1 + floor(random() * 12)::int + 0 * c)
) AS o;
-- Refunds and free orders among them.
UPDATE orders SET amount = -amount, amount_f = -amount_f WHERE order_id % 17 = 0;
UPDATE orders SET amount = 0, amount_f = 0 WHERE order_id % 23 = 0;
-- Edge orders: customers 9000..9036 (and NULL) with extreme dates and amounts.
INSERT INTO orders (customer_id, order_date, ordered_at, amount, amount_f, policy)
SELECT CASE WHEN i % 13 = 0 THEN NULL ELSE 9000 + i % 37 END,
       CASE WHEN i % 3 = 0 THEN DATE '2019-01-01' + i ELSE d[1 + i % cardinality(d)] END,
       t[1 + i % cardinality(t)], a[1 + i % cardinality(a)], f[1 + i % cardinality(f)],
       p[1 + i % cardinality(p)]
FROM generate_series(0, 599) AS i,
     (SELECT ARRAY[NULL, 'infinity', '-infinity', '4713-01-01 BC', '5874897-12-31', '0001-01-01',
                   '1399-12-31', '1400-01-01', '1400-01-02', '1969-12-31', '2000-01-01',
                   '2020-02-29', '9999-12-30', '9999-12-31', '10000-01-01', '2024-12-31']::date[] AS d,
             ARRAY[NULL, 'infinity', '-infinity', '4713-01-01 00:00:00+00 BC',
                   '294276-12-31 23:59:59+00', '1399-12-31 23:59:59+00', '1400-01-01 00:00:00+14',
                   '9999-12-31 23:59:59-12', '2000-01-01 00:00:00+00',
                   '2020-06-01 12:00:00+00']::timestamptz[] AS t,
             ARRAY[NULL, 'NaN', 'Infinity', '-Infinity', 0, -0.00, -1, -99999.99, 1e-100,
                   1e300, 0.01]::numeric[] AS a,
             ARRAY[NULL, 'NaN', 'Infinity', '-Infinity', 0, '-0', -1, -1e308, 5e-324,
                   1.7976931348623157e308, 0.01, 42]::float8[] AS f,
             ARRAY[NULL, 'default', 'saas', 'fuzz_zero', 'fuzz_huge', 'fuzz_rhythm', '',
                   'no such policy', repeat('p', 128), 'DEFAULT', 'default ', repeat('x', 3000)] AS p) AS v;
CREATE INDEX ON orders (customer_id, order_date);

CREATE TABLE customer_summary (
    customer_id integer,
    seg         integer,
    edge        boolean NOT NULL,
    first       date,
    last        date,
    n           bigint,
    as_of       date,
    first_at    timestamptz,
    last_at     timestamptz,
    as_of_at    timestamptz,
    recency     double precision,
    frequency   double precision,
    monetary    double precision,
    policy      text
);
INSERT INTO customer_summary
SELECT customer_id, customer_id % 7, false, min(order_date), max(order_date), count(*),
       DATE '2025-01-01', min(ordered_at), max(ordered_at), TIMESTAMPTZ '2025-01-01 12:00:00+00',
       DATE '2025-01-01' - max(order_date), count(*), sum(amount_f), min(policy)
FROM orders WHERE customer_id BETWEEN 1 AND 500 GROUP BY customer_id;
-- Prospects: no purchase.
INSERT INTO customer_summary
SELECT c, c % 7, false, NULL, NULL, 0, DATE '2025-01-01', NULL, NULL,
       TIMESTAMPTZ '2025-01-01 12:00:00+00', NULL, 0, 0, 'default'
FROM generate_series(501, 540) AS c;
-- Summaries of the edge customers, whatever they are.
INSERT INTO customer_summary
SELECT customer_id, 7 + coalesce(customer_id, 0) % 3, true, min(order_date), max(order_date),
       count(*), max(order_date), min(ordered_at), max(ordered_at), max(ordered_at),
       count(*) * 1.5 - 3, count(amount_f), sum(amount_f), min(policy)
FROM orders WHERE customer_id IS NULL OR customer_id >= 9000 GROUP BY customer_id;
-- Hand-made edge rows: every date tuple with every policy, measures cycling.
INSERT INTO customer_summary
SELECT 10000 + row_number() OVER (), 7 + (row_number() OVER ()) % 3, true,
       dt.first, dt.last, dt.n, dt.as_of,
       CASE WHEN dt.first < '200000-01-01' THEN dt.first::timestamptz END,
       CASE WHEN dt.last < '200000-01-01' THEN dt.last::timestamptz END,
       CASE WHEN dt.as_of < '200000-01-01' THEN dt.as_of::timestamptz END,
       r[1 + (di * 7 + pi) % cardinality(r)], r[1 + (di * 3 + pi * 5) % cardinality(r)],
       m[1 + (di + pi * 11) % cardinality(m)], p.name
FROM (VALUES
        (1, DATE '2020-01-01', DATE '2019-01-01', 3::bigint, DATE '2021-01-01'),
        (2, '2020-01-01', '2020-01-01', 0, '2021-01-01'),
        (3, '2020-01-01', '2020-06-01', -1, '2021-01-01'),
        (4, '2020-01-01', '2020-06-01', 9223372036854775807, '2021-01-01'),
        (5, '2020-01-01', '2020-06-01', -9223372036854775808, '2021-01-01'),
        (6, NULL, '2020-01-01', 1, '2021-01-01'),
        (7, '2020-01-01', NULL, 1, '2021-01-01'),
        (8, '2020-01-01', '2020-06-01', NULL, '2021-01-01'),
        (9, '2020-01-01', '2020-06-01', 2, NULL),
        (10, '2020-01-01', '2022-06-01', 2, '2021-01-01'),
        (11, '-infinity', 'infinity', 5, 'infinity'),
        (12, '1400-01-01', '9999-12-31', 2, '9999-12-31'),
        (13, '1399-12-31', '1400-01-01', 2, '1400-01-02'),
        (14, '9999-12-31', '9999-12-31', 1, '10000-01-01'),
        (15, '4713-01-01 BC', '5874897-12-31', 1, '5874897-12-31'),
        (16, '1400-01-01', '1400-01-01', 2147483648, '9999-12-31'),
        (17, '2020-01-01', '2020-01-02', 9223372036854775807, '2020-01-03'),
        (18, '2000-01-01', '2000-01-01', 1, '2000-01-01')
     ) AS dt(di, first, last, n, as_of)
CROSS JOIN (SELECT row_number() OVER () AS pi, name FROM unnest(ARRAY[
        NULL, 'default', 'saas', 'fuzz_zero', 'fuzz_huge', 'fuzz_rhythm', 'fuzz_tiny_rhythm', '',
        'no such policy', repeat('p', 127), repeat('p', 128), repeat('p', 5000), 'DEFAULT',
        'default ']) AS name) AS p,
     (SELECT ARRAY[NULL, 'NaN', 'Infinity', '-Infinity', -1, '-0', 0, 5e-324, 1e308, 3, 7.5]::float8[] AS r,
             ARRAY[NULL, 'NaN', 'Infinity', '-Infinity', -1e308, -5, '-0', 0, 5e-324, 1e308, 99.99]::float8[] AS m) AS v;
ANALYZE customer_summary;

-- Lifecycle policy names to join against.
CREATE TABLE policy_names (policy text);
INSERT INTO policy_names SELECT name FROM lifecycle.policies;
INSERT INTO policy_names VALUES (NULL), (''), ('no such policy'), (repeat('p', 128)),
    (repeat('x', 100000)), ('DEFAULT'), ('default '), (E'default\n'), ('défault');

-- Stored breakpoints: real ones, and malformed ones.
CREATE TABLE stored_breakpoints (name text PRIMARY KEY, bp lifecycle.rfm_breakpoints);
INSERT INTO stored_breakpoints
SELECT 'seg ' || seg, lifecycle.rfm_breakpoints(recency, frequency, monetary)
FROM customer_summary WHERE NOT edge GROUP BY seg;
INSERT INTO stored_breakpoints
SELECT 'all', lifecycle.rfm_breakpoints(recency, frequency, monetary)
FROM customer_summary WHERE NOT edge;
INSERT INTO stored_breakpoints
SELECT 'one customer', lifecycle.rfm_breakpoints(recency, frequency, monetary)
FROM customer_summary WHERE customer_id = 1;
INSERT INTO stored_breakpoints
SELECT 'none', lifecycle.rfm_breakpoints(recency, frequency, monetary)
FROM customer_summary WHERE false;
INSERT INTO stored_breakpoints VALUES
    ('null', NULL),
    ('all null', ROW(NULL, NULL, NULL, NULL)),
    ('empty arrays', ROW(0, '{}', '{}', '{}')),
    ('short', ROW(2, '{1,2}', '{1,2}', '{1,2}')),
    ('long', ROW(5, '{1,2,3,4,5}', '{1,2,3,4,5}', '{1,2,3,4,5}')),
    ('null element', ROW(4, '{1,2,NULL,4}', '{1,NULL,3,4}', '{NULL,2,3,4}')),
    ('2-D', ROW(4, '{{1,2},{3,4}}', '{{1,2},{3,4}}', '{{1,2},{3,4}}')),
    ('lower bound 0', ROW(4, '[0:3]={400,300,200,100}', '[0:3]={1,2,3,4}', '[0:3]={10,20,30,40}')),
    ('non-finite', ROW(4, '{NaN,NaN,NaN,NaN}', '{-Infinity,0,1,Infinity}', '{1,2,3,Infinity}')),
    ('huge', ROW(9223372036854775807, '{1e308,1e300,-1e300,-1e308}',
                 '{0,5e-324,1e-300,1.7976931348623157e308}',
                 '{-1.7976931348623157e308,-0,0,1.7976931348623157e308}')),
    ('unsorted', ROW(-1, '{100,200,300,400}', '{4,3,2,1}', '{40,30,20,10}')),
    ('negative', ROW(-9223372036854775808, '{-1,-2,-3,-4}', '{-4,-3,-2,-1}', '{-40,-30,-20,-10}')),
    ('recency only', ROW(4, '{300,200,100,50}', NULL, NULL)),
    ('large array', ROW(1000, array_fill(1.5::float8, ARRAY[1000]), '{1,2,3,4}', '{1,2,3,4}'));

-- Aggregate states as users could hand them to the internal functions.
CREATE TABLE churn_states (label text PRIMARY KEY, state bigint);
INSERT INTO churn_states VALUES
    ('initial', 0),
    ('null', NULL),
    ('all ones', -1),
    ('max', 9223372036854775807),
    ('min', -9223372036854775808),
    ('one', 1),
    ('made', lifecycle._churn_status_transfn(0, DATE '2020-03-01', DATE '2020-01-01', DATE '2021-01-01', 30, 90)),
    ('made, wide', lifecycle._churn_status_transfn(0, DATE '1500-03-01', DATE '2020-01-01', DATE '2021-01-01', 0, 32765));
CREATE TABLE churn_count_states (label text PRIMARY KEY, state bigint[]);
INSERT INTO churn_count_states VALUES
    ('initial', '{0,0,0,0}'),
    ('empty', '{}'),
    ('null', NULL),
    ('short', '{1,2}'),
    ('five', '{1,2,3,4,5}'),
    ('null element', '{1,NULL,0,0}'),
    ('2-D', '{{1,2},{3,4}}'),
    ('lower bound 0', '[0:3]={10,2,3,4}'),
    ('valid', '{100,10,5,7}'),
    ('max', '{9223372036854775807,9223372036854775807,9223372036854775807,9223372036854775807}'),
    ('min', '{-9223372036854775808,-9223372036854775808,-9223372036854775808,-9223372036854775808}'),
    ('negative', '{-1,-1,-1,-1}'),
    ('zero base', '{0,5,0,0}');
CREATE TABLE churn_flags (flag integer);
INSERT INTO churn_flags SELECT g FROM generate_series(-2, 17) AS g;
INSERT INTO churn_flags VALUES (NULL), (2147483647), (-2147483648), (1), (3), (5), (8), (9);

-- A tracked source for the deterministic loop's stage-engine calls (edge dates, NULLs,
-- infinities, refreshes at odd dates); readable by the fuzzer through lifecycle's tables.
CREATE TABLE engine_orders (customer_id integer, ordered_at timestamptz, amount float8);
CREATE INDEX ON engine_orders (customer_id);
INSERT INTO engine_orders
SELECT g % 50, TIMESTAMPTZ '2020-01-01 00:00:00+00' + g * interval '3 days', g FROM generate_series(1, 300) g;
SET lifecycle.as_of = '2022-06-01';
SELECT lifecycle.track('engine_orders', 'customer_id', 'ordered_at', 'amount');
RESET lifecycle.as_of;

-- A bigger table for the deterministic loop (parallel query, hash spills); not granted
-- to the fuzzer (sqlsmith's 1s statements would only time out on it).
CREATE TABLE orders_big AS
SELECT floor(random() * 20000)::int AS customer_id,
       DATE '2015-01-01' + floor(random() * 3653)::int AS order_date,
       random() * 500 AS amount_f,
       (ARRAY['default', 'saas', 'fashion_retail', 'daily_consumer_goods', 'high_value_goods'])[1 + floor(random() * 5)::int] AS policy
FROM generate_series(1, 200000);
ANALYZE orders_big;
ANALYZE orders;

------------------------------------------------------------------------------------
-- Views that call the extension, so sqlsmith's random queries reach it.
------------------------------------------------------------------------------------
CREATE VIEW v_stage_ok AS
SELECT customer_id, seg, policy, lifecycle.lifecycle_stage(first, last, n, as_of, policy) AS stage
FROM customer_summary WHERE NOT edge;
CREATE VIEW v_stage AS
SELECT customer_id, seg, edge, policy, first, last, n, as_of,
       lifecycle.lifecycle_stage(first, last, n, as_of, policy) AS stage
FROM customer_summary;
CREATE VIEW v_stage_default AS
SELECT customer_id, edge, lifecycle.lifecycle_stage(first, last, n) AS stage_today,
       lifecycle.lifecycle_stage(first, last, n, as_of) AS stage
FROM customer_summary;
CREATE VIEW v_stage_windows AS
SELECT s.customer_id, s.edge, p.name AS policy,
       lifecycle.lifecycle_stage(s.first, s.last, s.n, s.as_of, p.onboarding_days, p.at_risk_days,
                                 p.inactive_days, p.lapsed_days, p.rhythm_factor,
                                 p.rhythm_min_purchases) AS stage
FROM customer_summary s CROSS JOIN lifecycle.policies p;
CREATE VIEW v_stage_ts AS
SELECT customer_id, edge, lifecycle.lifecycle_stage(first_at, last_at, n, as_of_at, policy) AS stage,
       lifecycle.lifecycle_stage(first_at, last_at, n) AS stage_now
FROM customer_summary;
CREATE VIEW v_stage_orders AS
SELECT customer_id,
       lifecycle.lifecycle_stage(min(order_date), max(order_date), count(*), DATE '2025-01-01') AS stage,
       lifecycle.lifecycle_stage(min(ordered_at), max(ordered_at), count(*),
                                 TIMESTAMPTZ '2025-01-01 00:00:00+00', min(policy)) AS stage_ts
FROM orders GROUP BY customer_id;
CREATE VIEW v_stage_policies AS
SELECT s.customer_id, n.policy, lifecycle.lifecycle_stage(s.first, s.last, s.n, s.as_of, n.policy) AS stage
FROM customer_summary s CROSS JOIN policy_names n WHERE s.customer_id % 50 = 0;

CREATE VIEW v_rfm_ok AS
SELECT customer_id, seg, (s).r, (s).f, (s).m, (s).code, (s).segment, s AS rfm
FROM (SELECT customer_id, seg,
             lifecycle.rfm_score(recency, frequency, monetary) OVER (PARTITION BY seg) AS s
      FROM customer_summary WHERE NOT edge) x;
CREATE VIEW v_rfm AS
SELECT customer_id, seg, edge,
       lifecycle.rfm_score(recency, frequency, monetary) OVER (PARTITION BY seg) AS rfm,
       lifecycle.rfm_score(recency, frequency, monetary) OVER (PARTITION BY edge, policy ORDER BY customer_id) AS rfm_by_policy
FROM customer_summary;
CREATE VIEW v_rfm_orders AS
SELECT customer_id, lifecycle.rfm_score(recency, frequency, monetary) OVER () AS rfm
FROM (SELECT customer_id, (DATE '2025-01-01' - max(order_date))::float8 AS recency,
             count(*)::float8 AS frequency, sum(amount)::float8 AS monetary
      FROM orders WHERE customer_id IS NOT NULL GROUP BY customer_id) x;
CREATE VIEW v_rfm_breakpoints AS
SELECT seg, lifecycle.rfm_breakpoints(recency, frequency, monetary) AS bp
FROM customer_summary WHERE NOT edge GROUP BY seg;
CREATE VIEW v_rfm_breakpoints_all AS
SELECT seg, edge, lifecycle.rfm_breakpoints(recency, frequency, monetary) AS bp
FROM customer_summary GROUP BY seg, edge;
CREATE VIEW v_rfm_against AS
SELECT s.customer_id, s.edge, b.name, b.bp,
       lifecycle.rfm_score(s.recency, s.frequency, s.monetary, b.bp) AS rfm
FROM customer_summary s CROSS JOIN stored_breakpoints b;
CREATE VIEW v_rfm_segments_check AS SELECT * FROM lifecycle.rfm_segments_check();

CREATE VIEW v_churn_status AS
SELECT customer_id,
       lifecycle.churn_status(order_date, DATE '2020-01-01', DATE '2021-01-01', 30, 90) AS status,
       lifecycle.churn_status(order_date, DATE '2020-01-01', DATE '2021-01-01') AS status_default
FROM orders WHERE customer_id <= 500 GROUP BY customer_id;
CREATE VIEW v_churn_status_all AS
SELECT customer_id, policy,
       lifecycle.churn_status(order_date, DATE '2020-01-01', DATE '2021-01-01', policy) AS status,
       lifecycle.churn_status(order_date, DATE '2019-06-01', DATE '2019-07-01', 0, 2147483647) AS status_wide
FROM orders GROUP BY customer_id, policy;
CREATE VIEW v_churn_periods AS
SELECT p.period_start, p.period_end, o.customer_id,
       lifecycle.churn_status(o.order_date, p.period_start, p.period_end, 'default') AS status
FROM orders o
CROSS JOIN (VALUES (DATE '2017-01-01', DATE '2018-01-01'), ('2019-01-01', '2020-01-01'),
                   ('2021-01-01', '2022-01-01'), ('2023-01-01', '2024-01-01')) AS p(period_start, period_end)
WHERE o.customer_id <= 500
GROUP BY p.period_start, p.period_end, o.customer_id;
CREATE VIEW v_churn_rate AS
SELECT period_start, lifecycle.churn_rate(status) AS churn_rate, lifecycle.churn_counts(status) AS counts
FROM v_churn_periods GROUP BY period_start;
CREATE VIEW v_churn_flags AS
SELECT flag, lifecycle.churn_rate(flag) OVER w AS rate, lifecycle.churn_counts(flag) OVER w AS counts
FROM churn_flags WINDOW w AS (ORDER BY flag ROWS BETWEEN 2 PRECEDING AND CURRENT ROW);
CREATE VIEW v_churn_states AS
SELECT label, state, lifecycle._churn_status_final(state) AS status,
       lifecycle._churn_status_combine(state, state) AS combined,
       lifecycle._churn_status_transfn(state, DATE '2020-06-01', DATE '2020-01-01', DATE '2021-01-01', 30, 90) AS stepped
FROM churn_states;
CREATE VIEW v_churn_count_states AS
SELECT label, state, lifecycle._churn_rate_final(state) AS rate, lifecycle._churn_counts_final(state) AS counts,
       lifecycle._churn_counts_combine(state, state) AS combined, lifecycle._churn_counts_transfn(state, 3) AS stepped
FROM churn_count_states;

------------------------------------------------------------------------------------
-- The fuzzer's role: a plain user that reads the tables above and nothing more.
------------------------------------------------------------------------------------
GRANT CONNECT ON DATABASE lifecycle_fuzz TO lifecycle_fuzzer;
GRANT USAGE ON SCHEMA lifecycle TO lifecycle_fuzzer;
GRANT SELECT ON ALL TABLES IN SCHEMA lifecycle TO lifecycle_fuzzer;
GRANT SELECT ON orders, customer_summary, policy_names, stored_breakpoints, churn_states,
    churn_count_states, churn_flags, v_stage_ok, v_stage, v_stage_default, v_stage_windows,
    v_stage_ts, v_stage_orders, v_stage_policies, v_rfm_ok, v_rfm, v_rfm_orders,
    v_rfm_breakpoints, v_rfm_breakpoints_all, v_rfm_against, v_rfm_segments_check,
    v_churn_status, v_churn_status_all, v_churn_periods, v_churn_rate, v_churn_flags,
    v_churn_states, v_churn_count_states TO lifecycle_fuzzer;
-- In this database only: nothing that ends sessions or changes settings at random.
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint),
    pg_catalog.pg_cancel_backend(integer), pg_catalog.set_config(text, text, boolean),
    pg_catalog.pg_sleep(double precision), pg_catalog.pg_sleep_for(interval),
    pg_catalog.pg_sleep_until(timestamp with time zone) FROM PUBLIC;
ALTER ROLE lifecycle_fuzzer IN DATABASE lifecycle_fuzz SET search_path = public, lifecycle;
ALTER ROLE lifecycle_fuzzer IN DATABASE lifecycle_fuzz SET statement_timeout = '5s';
ALTER ROLE lifecycle_fuzzer IN DATABASE lifecycle_fuzz SET temp_file_limit = '256MB';
ALTER ROLE lifecycle_fuzzer IN DATABASE lifecycle_fuzz SET work_mem = '8MB';
ALTER ROLE lifecycle_fuzzer IN DATABASE lifecycle_fuzz SET parallel_setup_cost = 100;
ALTER ROLE lifecycle_fuzzer IN DATABASE lifecycle_fuzz SET parallel_tuple_cost = 0.01;
ALTER ROLE lifecycle_fuzzer IN DATABASE lifecycle_fuzz SET min_parallel_table_scan_size = 0;

------------------------------------------------------------------------------------
-- The deterministic loop's helpers (not visible to the fuzzer).
------------------------------------------------------------------------------------
CREATE SCHEMA fuzz_internal;
REVOKE ALL ON SCHEMA fuzz_internal FROM PUBLIC;

CREATE FUNCTION fuzz_internal.chance(p float8) RETURNS boolean
LANGUAGE sql VOLATILE AS $$ SELECT random() < p $$;

CREATE FUNCTION fuzz_internal.rdate() RETURNS date LANGUAGE plpgsql VOLATILE AS $$
DECLARE x float8 := random();
BEGIN
    IF x < 0.06 THEN RETURN NULL;
    ELSIF x < 0.30 THEN
        RETURN (ARRAY['infinity', '-infinity', '4713-01-01 BC', '5874897-12-31', '0001-01-01',
                      '1399-12-31', '1400-01-01', '1400-01-02', '1999-12-31', '2000-01-01',
                      '2000-01-02', '2020-02-29', '9999-12-30', '9999-12-31',
                      '10000-01-01']::date[])[1 + floor(random() * 15)::int];
    ELSIF x < 0.40 THEN RETURN DATE '2000-01-01' + (floor(random() * 4000000) - 2000000)::int;
    ELSE RETURN DATE '2018-01-01' + floor(random() * 2500)::int;
    END IF;
END $$;

CREATE FUNCTION fuzz_internal.rtz() RETURNS timestamptz LANGUAGE plpgsql VOLATILE AS $$
DECLARE x float8 := random();
BEGIN
    IF x < 0.06 THEN RETURN NULL;
    ELSIF x < 0.30 THEN
        RETURN (ARRAY['infinity', '-infinity', '4713-01-01 00:00:00+00 BC', '294276-12-31 23:59:59+00',
                      '1399-12-31 23:59:59+00', '1400-01-01 00:00:00+14', '1400-01-01 00:00:00-12',
                      '9999-12-31 23:59:59-12', '9999-12-31 23:59:59+14',
                      '2000-01-01 00:00:00+00']::timestamptz[])[1 + floor(random() * 10)::int];
    ELSE RETURN TIMESTAMPTZ '2018-01-01 00:00:00+00' + random() * interval '2500 days';
    END IF;
END $$;

CREATE FUNCTION fuzz_internal.rint() RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF random() < 0.5 THEN
        RETURN (ARRAY[NULL, 0, 1, -1, 2, 3, 7, 30, 60, 90, 365, 100000, 2147483647, -2147483648,
                      2147483646, -2147483647]::int[])[1 + floor(random() * 16)::int];
    END IF;
    RETURN floor(random() * 400)::int - 10;
END $$;

CREATE FUNCTION fuzz_internal.rbig() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF random() < 0.5 THEN
        RETURN (ARRAY[NULL, 0, 1, -1, 2, 3, 5, 1000, 2147483648, 9223372036854775807,
                      -9223372036854775808, 9223372036854775806]::bigint[])[1 + floor(random() * 12)::int];
    END IF;
    RETURN floor(random() * 50)::bigint;
END $$;

CREATE FUNCTION fuzz_internal.rf8() RETURNS float8 LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF random() < 0.4 THEN
        RETURN (ARRAY[NULL, 'NaN', 'Infinity', '-Infinity', 0, '-0', 5e-324, 2.2250738585072014e-308,
                      1e308, -1e308, 1.7976931348623157e308, -1, 0.5, 1e15,
                      9007199254740993]::float8[])[1 + floor(random() * 15)::int];
    END IF;
    RETURN floor(random() * 100) / 4;  -- ties on purpose
END $$;

-- A plausible measure: finite, non-negative, with ties.
CREATE FUNCTION fuzz_internal.rmeasure() RETURNS float8 LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN random() < 0.05 THEN NULL ELSE floor(random() * 20) * 3.5 END
$$;

CREATE FUNCTION fuzz_internal.rpolicy() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (ARRAY[NULL, 'default', 'saas', 'fashion_retail', 'daily_consumer_goods',
                  'high_value_goods', 'fuzz_zero', 'fuzz_huge', 'fuzz_rhythm', 'fuzz_tiny_rhythm',
                  '', 'no such policy', repeat('p', 127), repeat('p', 128), repeat('y', 20000),
                  'DEFAULT', 'default ', E'\\x', 'défault'])[1 + floor(random() * 19)::int];
END $$;

-- A bigint churn_status state: made by the functions, or any 64-bit value.
CREATE FUNCTION fuzz_internal.rstate() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    k integer := floor(random() * 8)::int;
    s date := DATE '2020-01-01' + floor(random() * 1000)::int;
BEGIN
    CASE k
    WHEN 0 THEN RETURN NULL;
    WHEN 1 THEN RETURN 0;
    WHEN 2 THEN RETURN -1;
    WHEN 3 THEN RETURN (random() * 9223372036854775807)::bigint;
    WHEN 4 THEN RETURN -(random() * 9223372036854775807)::bigint;
    WHEN 5 THEN RETURN lifecycle._churn_status_transfn(0, s - floor(random() * 500)::int, s, s + 30, 30, 90);
    WHEN 6 THEN RETURN lifecycle._churn_status_transfn(0, s, s, s + 1 + floor(random() * 400)::int, 0, 32765);
    ELSE RETURN fuzz_internal.rint()::bigint << floor(random() * 40)::int;
    END CASE;
END $$;

-- A bigint[] churn_rate/churn_counts state.
CREATE FUNCTION fuzz_internal.rcounts() RETURNS bigint[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE k integer := floor(random() * 10)::int;
BEGIN
    CASE k
    WHEN 0 THEN RETURN '{}';
    WHEN 1 THEN RETURN NULL;
    WHEN 2 THEN RETURN '{0,0,0,0}';
    WHEN 3 THEN RETURN ARRAY[fuzz_internal.rbig(), fuzz_internal.rbig(), fuzz_internal.rbig(), fuzz_internal.rbig()];
    WHEN 4 THEN RETURN ARRAY[fuzz_internal.rbig(), fuzz_internal.rbig()];
    WHEN 5 THEN RETURN '{{1,2},{3,4}}';
    WHEN 6 THEN RETURN '[3:6]={10,5,1,1}';
    WHEN 7 THEN RETURN ARRAY[10, 5, NULL, 1];
    WHEN 8 THEN RETURN array_fill(fuzz_internal.rbig(), ARRAY[1 + floor(random() * 10000)::int]);
    ELSE RETURN ARRAY[floor(random() * 1000)::bigint, floor(random() * 100)::bigint,
                      floor(random() * 100)::bigint, floor(random() * 100)::bigint];
    END CASE;
END $$;

CREATE FUNCTION fuzz_internal.rcuts() RETURNS float8[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE k integer := floor(random() * 10)::int;
BEGIN
    CASE k
    WHEN 0 THEN RETURN NULL;
    WHEN 1 THEN RETURN '{}';
    WHEN 2 THEN RETURN ARRAY[fuzz_internal.rf8(), fuzz_internal.rf8()];
    WHEN 3 THEN RETURN ARRAY[fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8()];
    WHEN 4 THEN RETURN '{{1,2},{3,4}}';
    WHEN 5 THEN RETURN '[0:3]={1,2,3,4}';
    WHEN 6 THEN RETURN ARRAY[1, 2, NULL, 4];
    WHEN 7 THEN RETURN array_fill(fuzz_internal.rf8(), ARRAY[floor(random() * 5000)::int]);
    ELSE RETURN ARRAY[random() * 10, random() * 20, random() * 30, random() * 40];
    END CASE;
END $$;

CREATE FUNCTION fuzz_internal.rbp() RETURNS lifecycle.rfm_breakpoints LANGUAGE plpgsql VOLATILE AS $$
DECLARE bp lifecycle.rfm_breakpoints;
BEGIN
    IF random() < 0.3 THEN
        SELECT b.bp INTO bp FROM stored_breakpoints b ORDER BY random() LIMIT 1;
        RETURN bp;
    END IF;
    RETURN ROW(fuzz_internal.rbig(), fuzz_internal.rcuts(), fuzz_internal.rcuts(),
               fuzz_internal.rcuts())::lifecycle.rfm_breakpoints;
END $$;

-- One round: `iterations` calls of a random lifecycle function with random arguments.
-- Every call is its own subtransaction; an ERROR is counted and the round goes on.
CREATE FUNCTION fuzz_internal.fuzz_round(seed integer, iterations integer,
                                         OUT calls bigint, OUT errors bigint)
LANGUAGE plpgsql AS $$
DECLARE
    c integer;
    d date;
    k integer;
    w integer[];
BEGIN
    calls := 0;
    errors := 0;
    PERFORM setseed(((seed::bigint * 7919) % 1000003) / 1000003.0);
    FOR i IN 1 .. iterations LOOP
        c := floor(random() * 38)::int;
        calls := calls + 1;
        BEGIN
            CASE c
            WHEN 0 THEN
                PERFORM lifecycle.lifecycle_stage(fuzz_internal.rdate(), fuzz_internal.rdate(),
                    fuzz_internal.rbig(), fuzz_internal.rdate(), fuzz_internal.rint(),
                    fuzz_internal.rint(), fuzz_internal.rint(), fuzz_internal.rint(),
                    fuzz_internal.rf8(), fuzz_internal.rint());
            WHEN 1 THEN  -- plausible arguments, so the rules themselves run
                d := DATE '2015-01-01' + floor(random() * 3000)::int;
                w := ARRAY[floor(random() * 100)::int, floor(random() * 100)::int,
                           floor(random() * 100)::int];
                w := (SELECT array_agg(x ORDER BY x) FROM unnest(w) AS x);
                PERFORM lifecycle.lifecycle_stage(d, d + floor(random() * 500)::int,
                    1 + floor(random() * 20)::bigint, d + 500 + floor(random() * 300)::int,
                    floor(random() * 60)::int, w[1], w[2], w[3], random() * 4,
                    2 + floor(random() * 5)::int);
            WHEN 2 THEN
                PERFORM lifecycle.lifecycle_stage(fuzz_internal.rdate(), fuzz_internal.rdate(),
                    fuzz_internal.rbig(), fuzz_internal.rdate(), fuzz_internal.rpolicy());
            WHEN 3 THEN
                d := DATE '2015-01-01' + floor(random() * 3000)::int;
                PERFORM lifecycle.lifecycle_stage(d, d + floor(random() * 500)::int,
                    1 + floor(random() * 20)::bigint, d + 500 + floor(random() * 300)::int,
                    fuzz_internal.rpolicy());
            WHEN 4 THEN
                PERFORM lifecycle.lifecycle_stage(fuzz_internal.rdate(), fuzz_internal.rdate(),
                    fuzz_internal.rbig());
            WHEN 5 THEN
                PERFORM set_config('TimeZone', (ARRAY['UTC', 'Pacific/Kiritimati', 'America/Adak',
                    '+14', '-12', 'Europe/Berlin'])[1 + floor(random() * 6)::int], true);
                PERFORM lifecycle.lifecycle_stage(fuzz_internal.rtz(), fuzz_internal.rtz(),
                    fuzz_internal.rbig(), fuzz_internal.rtz(), fuzz_internal.rpolicy());
            WHEN 6 THEN
                PERFORM lifecycle._churn_status_transfn(fuzz_internal.rstate(), fuzz_internal.rdate(),
                    fuzz_internal.rdate(), fuzz_internal.rdate(), fuzz_internal.rint(),
                    fuzz_internal.rint());
            WHEN 7 THEN
                PERFORM lifecycle._churn_status_policy_transfn(fuzz_internal.rstate(),
                    fuzz_internal.rdate(), fuzz_internal.rdate(), fuzz_internal.rdate(),
                    fuzz_internal.rpolicy());
            WHEN 8 THEN
                PERFORM lifecycle._churn_status_default_transfn(fuzz_internal.rstate(),
                    fuzz_internal.rdate(), fuzz_internal.rdate(), fuzz_internal.rdate());
            WHEN 9 THEN
                PERFORM lifecycle._churn_status_combine(fuzz_internal.rstate(), fuzz_internal.rstate());
            WHEN 10 THEN
                PERFORM lifecycle._churn_status_final(fuzz_internal.rstate());
            WHEN 11 THEN  -- chained: a state made by the functions themselves
                d := DATE '2019-01-01' + floor(random() * 700)::int;
                PERFORM lifecycle._churn_status_final(lifecycle._churn_status_combine(
                    lifecycle._churn_status_transfn(fuzz_internal.rstate(), d, DATE '2020-01-01',
                        DATE '2021-01-01', fuzz_internal.rint(), fuzz_internal.rint()),
                    lifecycle._churn_status_default_transfn(0, d - 30,
                        DATE '2020-01-01', DATE '2021-01-01')));
            WHEN 12 THEN
                PERFORM lifecycle._churn_counts_transfn(fuzz_internal.rcounts(), fuzz_internal.rint());
            WHEN 13 THEN
                PERFORM lifecycle._churn_counts_combine(fuzz_internal.rcounts(), fuzz_internal.rcounts());
            WHEN 14 THEN
                PERFORM lifecycle._churn_rate_final(fuzz_internal.rcounts());
            WHEN 15 THEN
                PERFORM lifecycle._churn_counts_final(fuzz_internal.rcounts());
            WHEN 16 THEN
                PERFORM lifecycle._churn_counts_final(lifecycle._churn_counts_transfn(
                    lifecycle._churn_counts_combine(fuzz_internal.rcounts(), '{1,1,0,0}'),
                    floor(random() * 16)::int));
            WHEN 17 THEN
                PERFORM lifecycle.rfm_score(fuzz_internal.rf8(), fuzz_internal.rf8(),
                    fuzz_internal.rf8(), fuzz_internal.rbp());
            WHEN 18 THEN
                PERFORM lifecycle.rfm_score(fuzz_internal.rmeasure(), fuzz_internal.rmeasure(),
                    fuzz_internal.rmeasure() - 20, b.bp)
                FROM stored_breakpoints b;
            WHEN 19 THEN  -- the window function over a random population
                k := floor(random() * 300)::int;
                PERFORM count((s).code) FROM (
                    SELECT lifecycle.rfm_score(r, f, m) OVER (PARTITION BY g) AS s
                    FROM (SELECT fuzz_internal.rmeasure() AS r, fuzz_internal.rmeasure() AS f,
                                 fuzz_internal.rmeasure() - 10 AS m, floor(random() * 4) AS g
                          FROM generate_series(1, k)) AS pop) AS x;
            WHEN 20 THEN
                k := floor(random() * 50)::int;
                PERFORM count((s).code) FROM (
                    SELECT lifecycle.rfm_score(r, f, m) OVER (ORDER BY r ROWS 1 PRECEDING) AS s
                    FROM (SELECT fuzz_internal.rf8() AS r, fuzz_internal.rf8() AS f,
                                 fuzz_internal.rf8() AS m FROM generate_series(1, k)) AS pop) AS x;
            WHEN 21 THEN  -- breakpoints of a population, then a score against them
                k := floor(random() * 3000)::int;
                PERFORM lifecycle.rfm_score(fuzz_internal.rmeasure(), fuzz_internal.rmeasure(),
                    fuzz_internal.rmeasure(), bp)
                FROM (SELECT lifecycle.rfm_breakpoints(r, f, m) AS bp
                      FROM (SELECT fuzz_internal.rmeasure() AS r,
                                   CASE WHEN random() < 0.5 THEN fuzz_internal.rmeasure() END AS f,
                                   fuzz_internal.rmeasure() - 30 AS m
                            FROM generate_series(1, k)) AS pop) AS x;
            WHEN 22 THEN
                k := floor(random() * 20)::int;
                PERFORM lifecycle.rfm_breakpoints(fuzz_internal.rf8(), fuzz_internal.rf8(),
                    fuzz_internal.rf8()) FROM generate_series(1, k);
            WHEN 23 THEN  -- the churn aggregates over random orders
                d := DATE '2016-01-01' + floor(random() * 2000)::int;
                PERFORM lifecycle.churn_rate(st), lifecycle.churn_counts(st)
                FROM (SELECT lifecycle.churn_status(od, d, d + 1 + floor(random() * 400)::int,
                                                    30, 90) AS st
                      FROM (SELECT g % 17 AS cust,
                                   DATE '2015-01-01' + floor(random() * 3000)::int AS od
                            FROM generate_series(1, floor(random() * 400)::int) AS g) AS o
                      GROUP BY cust) AS s;
            WHEN 24 THEN
                PERFORM lifecycle.churn_status(fuzz_internal.rdate(), fuzz_internal.rdate(),
                    fuzz_internal.rdate(), fuzz_internal.rint(), fuzz_internal.rint())
                FROM generate_series(1, 1 + floor(random() * 5)::int);
            WHEN 25 THEN
                PERFORM lifecycle.churn_status(fuzz_internal.rdate(), fuzz_internal.rdate(),
                    fuzz_internal.rdate(), fuzz_internal.rpolicy())
                FROM generate_series(1, 1 + floor(random() * 5)::int);
            WHEN 26 THEN
                PERFORM lifecycle.churn_status(fuzz_internal.rdate(), DATE '2020-01-01',
                    DATE '2021-01-01') FROM generate_series(1, 1 + floor(random() * 5)::int);
            WHEN 27 THEN
                PERFORM lifecycle.churn_rate(fuzz_internal.rint()),
                        lifecycle.churn_counts(floor(random() * 16)::int)
                FROM generate_series(1, floor(random() * 50)::int);
            WHEN 28 THEN
                PERFORM lifecycle.churn_status(o.order_date, DATE '2020-01-01', DATE '2021-01-01',
                                               fuzz_internal.rpolicy())
                FROM orders o WHERE o.customer_id = floor(random() * 520)::int;
            WHEN 30 THEN
                PERFORM lifecycle.next_stage_change(fuzz_internal.rdate(), fuzz_internal.rdate(),
                    fuzz_internal.rbig(), fuzz_internal.rdate(), fuzz_internal.rpolicy());
            WHEN 31 THEN  -- the stage engine: odd orders, corrections, then a refresh
                INSERT INTO engine_orders
                SELECT floor(random() * 60)::int, fuzz_internal.rtz(), fuzz_internal.rf8()
                FROM generate_series(1, floor(random() * 5)::int);
                IF fuzz_internal.chance(0.3) THEN
                    DELETE FROM engine_orders WHERE customer_id = floor(random() * 60)::int;
                END IF;
                IF fuzz_internal.chance(0.2) THEN
                    UPDATE engine_orders SET ordered_at = fuzz_internal.rtz()
                    WHERE customer_id = floor(random() * 60)::int;
                END IF;
                PERFORM lifecycle.refresh(1 + floor(random() * 40)::int);
            WHEN 32 THEN  -- time moves, to any date the setting accepts
                PERFORM set_config('lifecycle.as_of', coalesce(fuzz_internal.rdate()::text, ''), false);
                PERFORM lifecycle.refresh(1 + floor(random() * 40)::int);
                PERFORM set_config('lifecycle.as_of', '', false);
            WHEN 33 THEN  -- the models' scores with any parameters and customers
                PERFORM lifecycle.p_alive(ROW(fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8(),
                            fuzz_internal.rf8(), NULL, NULL, NULL, NULL)::lifecycle.bgnbd_model,
                            fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8()),
                        lifecycle.expected_purchases(ROW(fuzz_internal.rf8(), fuzz_internal.rf8(),
                            fuzz_internal.rf8(), fuzz_internal.rf8(), NULL, NULL, NULL, NULL)::lifecycle.bgnbd_model,
                            fuzz_internal.rf8(), floor(random() * 50), random() * 30, 30 + random() * 30),
                        lifecycle.customer_lifetime_value(ROW(random(), 1 + random() * 9, random(), 1 + random(),
                            NULL, NULL, NULL, NULL)::lifecycle.bgnbd_model,
                            ROW(fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8(), NULL, NULL, NULL,
                                NULL)::lifecycle.gamma_gamma_model,
                            fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8(),
                            fuzz_internal.rf8(), fuzz_internal.rint(), fuzz_internal.rf8());
            WHEN 34 THEN  -- fits over small random populations, penalized or not
                PERFORM lifecycle.bgnbd_fit(x, least(r, t), t, CASE WHEN fuzz_internal.chance(0.3)
                                                                    THEN random() END),
                        lifecycle.gamma_gamma_fit(x, m)
                FROM (SELECT floor(random() * 8) AS x, random() * 40 AS r, random() * 40 AS t,
                             CASE WHEN fuzz_internal.chance(0.05) THEN fuzz_internal.rf8()
                                  ELSE 1 + random() * 90 END AS m
                      FROM generate_series(1, floor(random() * 60)::int)) AS p;
            WHEN 35 THEN
                PERFORM lifecycle.bgnbd_log_likelihood(fuzz_internal.rf8(), fuzz_internal.rf8(),
                    fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8(),
                    fuzz_internal.rf8());
            WHEN 36 THEN  -- MBG/NBD, Pareto/NBD and logistic scores with any parameters
                PERFORM lifecycle.probability_no_purchase(ROW(fuzz_internal.rf8(), fuzz_internal.rf8(),
                            fuzz_internal.rf8(), fuzz_internal.rf8(), NULL, NULL, NULL, NULL)::lifecycle.mbgnbd_model,
                            fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8()),
                        lifecycle.p_alive(ROW(fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8(),
                            fuzz_internal.rf8(), NULL, NULL, NULL, NULL)::lifecycle.pareto_nbd_model,
                            fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8()),
                        lifecycle.expected_purchases(ROW(random() * 2, random() * 20, random() * 2,
                            random() * 20, NULL, NULL, NULL, NULL)::lifecycle.pareto_nbd_model,
                            fuzz_internal.rf8(), floor(random() * 5000), random() * 30, 30 + random() * 30),
                        lifecycle.probability_no_purchase(ROW(fuzz_internal.rf8(), fuzz_internal.rf8(),
                            fuzz_internal.rf8(), fuzz_internal.rf8(), NULL, NULL, NULL, NULL)::lifecycle.pareto_nbd_model,
                            fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8(), fuzz_internal.rf8()),
                        lifecycle.logistic_score(ROW(ARRAY[fuzz_internal.rf8(), fuzz_internal.rf8()], NULL,
                            NULL, NULL, NULL)::lifecycle.logistic_model, ARRAY[fuzz_internal.rf8()]);
            WHEN 37 THEN  -- MBG/NBD, Pareto/NBD and logistic fits over small random populations
                PERFORM lifecycle.mbgnbd_fit(x, least(r, t), t), lifecycle.pareto_nbd_fit(x, least(r, t), t),
                        lifecycle.logistic_fit(random() < 0.5, ARRAY[x, r, CASE WHEN fuzz_internal.chance(0.05)
                                                                          THEN fuzz_internal.rf8() ELSE t END])
                FROM (SELECT floor(random() * 8) AS x, random() * 40 AS r, random() * 40 AS t
                      FROM generate_series(1, floor(random() * 25)::int)) AS p;
            ELSE
                PERFORM * FROM lifecycle.rfm_segments_check();
            END CASE;
        EXCEPTION WHEN OTHERS THEN
            errors := errors + 1;
        END;
    END LOOP;
END $$;
SQL

# The loop's fixed statements, run once per pass (psql variable :seed; ERRORs are fine).
cat >"$WORK/pass.sql" <<'SQL'
\set VERBOSITY terse
SET statement_timeout = '30s';
SET search_path = public, lifecycle;
SET client_min_messages = warning;
SELECT setseed(((:seed::bigint * 104729) % 1000003) / 1000003.0);
-- The views, plain (the edge rows make some of them fail: fine).
SELECT count(stage) FROM v_stage_ok;
SELECT count(stage) FROM v_stage;
SELECT count(stage) FROM v_stage WHERE edge;
SELECT count(stage_today), count(stage) FROM v_stage_default;
SELECT count(stage) FROM v_stage_windows WHERE NOT edge;
SELECT count(stage) FROM v_stage_windows;
SELECT count(stage), count(stage_now) FROM v_stage_ts WHERE NOT edge;
SELECT count(stage), count(stage_ts) FROM v_stage_orders WHERE customer_id <= 500;
SELECT count(stage) FROM v_stage_policies;
SELECT count(*), count(DISTINCT code) FROM v_rfm_ok;
SELECT count(rfm), count(rfm_by_policy) FROM v_rfm;
SELECT count(rfm) FROM v_rfm_orders;
SELECT count(bp) FROM v_rfm_breakpoints;
SELECT count(bp) FROM v_rfm_breakpoints_all;
SELECT name, count(rfm) FROM v_rfm_against WHERE NOT edge GROUP BY name ORDER BY name;
SELECT count(rfm) FROM v_rfm_against;
SELECT count(status), count(status_default) FROM v_churn_status;
SELECT count(status), count(status_wide) FROM v_churn_status_all;
SELECT * FROM v_churn_rate;
SELECT count(rate), count(counts) FROM v_churn_flags;
SELECT label, status FROM v_churn_states WHERE label = 'valid';
SELECT count(status), count(combined), count(stepped) FROM v_churn_states;
SELECT count(rate), count(counts), count(combined), count(stepped) FROM v_churn_count_states;
SELECT label, lifecycle._churn_status_final(state) FROM churn_states WHERE label IN ('valid', 'initial');
SELECT label, lifecycle._churn_counts_final(state) FROM churn_count_states WHERE label IN ('valid', 'max', 'min');
-- Each malformed state alone, through every internal function.
SELECT lifecycle._churn_status_final(state) FROM churn_states WHERE label = 'empty';
SELECT lifecycle._churn_status_final(state) FROM churn_states WHERE label = 'short';
SELECT lifecycle._churn_status_final(state) FROM churn_states WHERE label = 'nine';
SELECT lifecycle._churn_status_final(state) FROM churn_states WHERE label = 'null element';
SELECT lifecycle._churn_status_final(state) FROM churn_states WHERE label = '2-D';
SELECT lifecycle._churn_status_final(state) FROM churn_states WHERE label = '3-D';
SELECT lifecycle._churn_status_final(state) FROM churn_states WHERE label = 'lower bound 5';
SELECT lifecycle._churn_status_final(state) FROM churn_states WHERE label = 'extreme';
SELECT lifecycle._churn_status_final(state) FROM churn_states WHERE label = 'initialized -1';
SELECT lifecycle._churn_status_final(state) FROM churn_states WHERE label = 'long';
SELECT lifecycle._churn_status_combine(a.state, b.state) FROM churn_states a, churn_states b WHERE a.label = 'valid' AND b.label = 'valid, no purchase';
SELECT lifecycle._churn_status_combine(a.state, b.state) FROM churn_states a, churn_states b WHERE a.label = 'initial' AND b.label = 'extreme';
SELECT lifecycle._churn_status_combine(a.state, b.state) FROM churn_states a, churn_states b WHERE a.label = 'valid' AND b.label = 'end before start';
SELECT lifecycle._churn_status_transfn(state, '2020-06-01', '2020-01-01', '2021-01-01', 30, 90) FROM churn_states WHERE label = 'extreme';
SELECT lifecycle._churn_status_transfn(state, '2020-06-01', '2020-01-01', '2021-01-01', 30, 90) FROM churn_states WHERE label = 'uninitialized garbage';
SELECT lifecycle._churn_status_policy_transfn(state, '2020-06-01', '2020-01-01', '2021-01-01', repeat('p', 127)) FROM churn_states WHERE label = 'initial';
SELECT lifecycle._churn_status_policy_transfn(state, '2020-06-01', '2020-01-01', '2021-01-01', repeat('p', 128)) FROM churn_states WHERE label = 'initial';
SELECT lifecycle._churn_counts_combine(a.state, b.state) FROM churn_count_states a, churn_count_states b WHERE a.label = 'max' AND b.label = 'max';
SELECT lifecycle._churn_counts_combine(a.state, b.state) FROM churn_count_states a, churn_count_states b WHERE a.label = 'valid' AND b.label = 'lower bound 0';
SELECT lifecycle._churn_counts_transfn(state, f.flag) FROM churn_count_states, churn_flags f WHERE label = 'valid';
SELECT lifecycle._churn_rate_final(state) FROM churn_count_states WHERE label = 'zero base';
SELECT lifecycle._churn_rate_final(state) FROM churn_count_states WHERE label = '2-D';
SELECT lifecycle._churn_counts_final(state) FROM churn_count_states WHERE label = 'null element';
SELECT lifecycle._churn_counts_final(state) FROM churn_count_states WHERE label = 'five';
-- Malformed breakpoints, one at a time.
SELECT name, lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name LIKE 'seg%' OR name IN ('all', 'one customer', 'none', 'null', 'all null', 'recency only');
SELECT lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name = 'empty arrays';
SELECT lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name = 'short';
SELECT lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name = 'long';
SELECT lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name = 'null element';
SELECT lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name = '2-D';
SELECT lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name = 'lower bound 0';
SELECT lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name = 'non-finite';
SELECT lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name = 'huge';
SELECT lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name = 'unsorted';
SELECT lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name = 'negative';
SELECT lifecycle.rfm_score(10, 3, 50, bp) FROM stored_breakpoints WHERE name = 'large array';
SELECT lifecycle.rfm_score(NULL, NULL, NULL, bp) FROM stored_breakpoints WHERE name = 'all';
SELECT lifecycle.rfm_score('NaN', 1, 1, bp) FROM stored_breakpoints WHERE name = 'all';
SELECT lifecycle.rfm_score(1, -1, 1, bp) FROM stored_breakpoints WHERE name = 'all';
SELECT lifecycle.rfm_score(1, 1, '-Infinity', bp) FROM stored_breakpoints WHERE name = 'all';
SELECT lifecycle.rfm_score(1, 1, 1, (SELECT bp FROM stored_breakpoints WHERE name = 'all'));
SELECT lifecycle.rfm_score(1, 1, 1, NULL::lifecycle.rfm_breakpoints);
SELECT lifecycle.rfm_score(1, 1, 1, ROW(1, NULL, '{1,2,3,4}', '{5,6,7,8}'));
-- Aggregates as window functions, moving frames (restarts), running totals.
SELECT count(st) FROM (SELECT lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01', 30, 90)
    OVER (PARTITION BY customer_id ORDER BY order_date ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS st
    FROM orders WHERE customer_id <= 500) x;
SELECT count(st) FROM (SELECT lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01', policy)
    OVER (PARTITION BY customer_id ORDER BY order_date) AS st FROM orders WHERE customer_id <= 500) x;
SELECT count(st) FROM (SELECT lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01')
    OVER (ORDER BY order_id ROWS BETWEEN 5 PRECEDING AND 5 FOLLOWING) AS st FROM orders) x;
SELECT count(r) FROM (SELECT lifecycle.churn_rate(flag) OVER (ORDER BY flag ROWS BETWEEN 1 FOLLOWING AND 3 FOLLOWING) AS r
    FROM churn_flags WHERE flag BETWEEN 0 AND 15) x;
SELECT lifecycle.rfm_breakpoints(recency, frequency, monetary) OVER () FROM customer_summary LIMIT 1;
SELECT count(s) FROM (SELECT lifecycle.rfm_score(recency, frequency, monetary)
    OVER (PARTITION BY seg ORDER BY customer_id ROWS BETWEEN CURRENT ROW AND CURRENT ROW) AS s
    FROM customer_summary WHERE NOT edge) x;
SELECT count(s) FROM (SELECT lifecycle.rfm_score(recency, frequency, monetary) OVER w AS s, lag(customer_id) OVER w
    FROM customer_summary WHERE NOT edge WINDOW w AS (ORDER BY customer_id)) x;
SELECT count(s) FROM (SELECT lifecycle.rfm_score(1, 1, 1) OVER () AS s FROM generate_series(1, 10)) x;
SELECT count(s) FROM (SELECT lifecycle.rfm_score(NULL, NULL, NULL) OVER () AS s FROM generate_series(1, 10)) x;
SELECT count(s) FROM (SELECT lifecycle.rfm_score(floor(random() * 5), floor(random() * 3), random() - 0.5)
    OVER (PARTITION BY g % 3) AS s FROM generate_series(1, 1000 + :seed % 1000) g) x;
SELECT count(s) FROM (SELECT lifecycle.rfm_score(0, '-0', '-0') OVER () AS s FROM generate_series(1, 7)) x;
SELECT count(s) FROM (SELECT lifecycle.rfm_score(5e-324, 1e308, -1e308) OVER (ORDER BY g) AS s FROM generate_series(1, 7) g) x;
-- Grouping sets, DISTINCT, ORDER BY and FILTER inside the aggregates.
SELECT seg, policy, lifecycle.rfm_breakpoints(recency, frequency, monetary) FROM customer_summary
    WHERE NOT edge GROUP BY GROUPING SETS ((seg), (policy), ()) ORDER BY 1, 2;
SELECT customer_id % 5, policy, lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01', 30, 90),
       lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01')
    FROM orders WHERE customer_id <= 500 GROUP BY CUBE (customer_id % 5, policy);
SELECT lifecycle.rfm_breakpoints(DISTINCT recency, frequency, monetary) FROM customer_summary WHERE NOT edge;
SELECT lifecycle.rfm_breakpoints(recency, frequency, monetary ORDER BY monetary DESC)
    FILTER (WHERE seg > 2) FROM customer_summary WHERE NOT edge;
SELECT lifecycle.churn_status(DISTINCT order_date, '2020-01-01', '2021-01-01', 30, 90) FROM orders WHERE customer_id = 7;
SELECT lifecycle.churn_rate(DISTINCT flag) FILTER (WHERE flag IN (0, 1, 3, 5, 8)) FROM churn_flags;
SELECT lifecycle.churn_counts(flag ORDER BY flag DESC) FROM churn_flags WHERE flag IN (0, 1, 3, 5, 8, 9);
SELECT lifecycle.churn_counts(flag) FROM churn_flags;
-- Forced parallel query: partial aggregation calls the combine functions.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 4;
SET force_parallel_mode = on;
SELECT lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01', 30, 90) FROM orders_big;
SELECT lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01', policy) FROM orders_big;
SELECT lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01') FROM orders_big;
SELECT customer_id % 10, lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01', 30, 90) FROM orders_big GROUP BY 1;
SELECT lifecycle.churn_rate(st), lifecycle.churn_counts(st) FROM (
    SELECT customer_id, lifecycle.churn_status(order_date, '2019-01-01', '2020-01-01', policy) AS st
    FROM orders_big GROUP BY customer_id) x;
SELECT lifecycle.churn_counts(f) FROM (SELECT (ARRAY[0, 1, 3, 5, 8])[1 + customer_id % 5] AS f FROM orders_big) x;
SELECT lifecycle.rfm_breakpoints(amount_f, customer_id, amount_f - 250) FROM orders_big;
SELECT count(stage) FROM v_stage_ok;
SELECT count(status), count(status_default) FROM v_churn_status;
SELECT lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01', 30, 90) FROM orders;
RESET force_parallel_mode;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
-- Hash aggregation spilling to disk.
SET work_mem = '64kB';
SET hash_mem_multiplier = 1;
SET enable_sort = off;
SELECT count(*), count(bp) FROM (SELECT customer_id, lifecycle.rfm_breakpoints(amount_f, 1, amount_f) AS bp FROM orders_big GROUP BY customer_id) x;
SELECT count(*), count(st) FROM (SELECT customer_id, lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01', policy) AS st FROM orders_big GROUP BY customer_id) x;
SELECT count(st) FROM (SELECT customer_id, policy, lifecycle.churn_status(order_date, '2018-01-01', '2019-01-01') AS st FROM orders_big GROUP BY customer_id, policy) x;
RESET enable_sort;
RESET hash_mem_multiplier;
RESET work_mem;
-- The window function over a big partition.
SELECT count(s) FROM (SELECT lifecycle.rfm_score(amount_f, customer_id % 40, amount_f - 250) OVER () AS s FROM orders_big) x;
-- Scroll cursors: window and aggregate results read backwards.
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT customer_id, lifecycle.rfm_score(recency, frequency, monetary) OVER (PARTITION BY seg) FROM customer_summary WHERE NOT edge;
FETCH LAST c;
FETCH FIRST c;
FETCH BACKWARD 10 c;
FETCH ABSOLUTE 300 c;
MOVE ALL c;
FETCH BACKWARD 5 c;
CLOSE c;
DECLARE d SCROLL CURSOR FOR SELECT customer_id, lifecycle.churn_status(order_date, '2020-01-01', '2021-01-01') OVER (PARTITION BY customer_id ORDER BY order_date) FROM orders WHERE customer_id <= 500;
FETCH 100 d;
FETCH BACKWARD 50 d;
FETCH LAST d;
FETCH PRIOR d;
CLOSE d;
COMMIT;
-- Prepared statements, generic plans.
PREPARE st(date, date, bigint, date, text) AS SELECT lifecycle.lifecycle_stage($1, $2, $3, $4, $5);
SET plan_cache_mode = force_generic_plan;
EXECUTE st('2020-01-01', '2020-06-01', 3, '2021-01-01', 'default');
EXECUTE st('2020-01-01', '2020-06-01', 3, '2021-01-01', 'saas');
EXECUTE st('2020-01-01', '2020-06-01', 3, '2021-01-01', NULL);
EXECUTE st('2020-01-01', '2020-06-01', 0, '2021-01-01', 'default');
EXECUTE st(NULL, NULL, NULL, NULL, NULL);
EXECUTE st('infinity', 'infinity', 1, 'infinity', 'default');
PREPARE sc(lifecycle.rfm_breakpoints) AS SELECT lifecycle.rfm_score(1, 2, 3, $1);
EXECUTE sc(NULL);
EXECUTE sc(ROW(4, '{1,2,3,4}', '{1,2,3,4}', '{1,2,3,4}'));
EXECUTE sc(ROW(4, '{1,2,3}', '{1,2,3,4}', '{1,2,3,4}'));
RESET plan_cache_mode;
DEALLOCATE st;
DEALLOCATE sc;
-- Errors inside subtransactions, with caches in fn_extra (a policy disappears mid-session).
BEGIN;
SAVEPOINT a;
SELECT lifecycle.lifecycle_stage('2020-01-01', '2020-06-01', 3, '2021-01-01', 'fuzz_zero');
DELETE FROM lifecycle.policies WHERE name = 'fuzz_zero';
SELECT lifecycle.lifecycle_stage('2020-01-01', '2020-06-01', 3, '2021-01-01', 'fuzz_zero');
ROLLBACK TO SAVEPOINT a;
SELECT lifecycle.lifecycle_stage('2020-01-01', '2020-06-01', 3, '2021-01-01', 'fuzz_zero');
ROLLBACK;
-- Users' own policies and segment rules, edited the supported way, rolled back.
BEGIN;
UPDATE lifecycle.policies SET onboarding_days = 2147483647, rhythm_factor = 1e-300 WHERE name = 'default';
INSERT INTO lifecycle.policies (name, at_risk_days, inactive_days, lapsed_days) VALUES ('saas', 0, 0, 0);
SELECT count(stage) FROM v_stage_ok;
SELECT * FROM v_churn_rate;
ROLLBACK;
-- (lifecycle.rfm_segments: the user's rules, replacing lifecycle.rfm_default_segments
-- when not empty; where the extension predates that split, the rules themselves.)
BEGIN;
DELETE FROM lifecycle.rfm_segments;
DELETE FROM lifecycle.rfm_default_segments;
SELECT count(*) FROM lifecycle.rfm_segments_check();
SELECT count(code), count(DISTINCT segment) FROM v_rfm_ok;
SELECT lifecycle.rfm_score(1, 2, 3, (SELECT bp FROM stored_breakpoints WHERE name = 'all'));
ROLLBACK;
BEGIN;
INSERT INTO lifecycle.rfm_segments VALUES ('everything', 1, 5, 1, 5, 1, 5);
SELECT count(code), count(DISTINCT segment) FROM v_rfm_ok;
ROLLBACK;
BEGIN;
INSERT INTO lifecycle.rfm_segments VALUES ('only champions', 5, 5, 4, 5, 1, 5);
SELECT count(code), count(DISTINCT segment) FROM v_rfm_ok;
SELECT lifecycle.rfm_score(1, 2, 3, (SELECT bp FROM stored_breakpoints WHERE name = 'all'));
ROLLBACK;
BEGIN;
DELETE FROM lifecycle.rfm_default_segments WHERE segment = 'champions';
SELECT count(code), count(DISTINCT segment) FROM v_rfm_ok;
ROLLBACK;
BEGIN;
INSERT INTO lifecycle.rfm_segments SELECT 'overlap ' || g, 1, 1, 1, 1, 1, 1 FROM generate_series(1, 300) g;
SELECT count(code), count(DISTINCT segment) FROM v_rfm_ok;
ROLLBACK;
BEGIN;
DELETE FROM lifecycle.rfm_segments;
INSERT INTO lifecycle.rfm_segments SELECT 'cell ' || r || f || m, r, r, f, f, m, m
    FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m;
SELECT count(code), count(DISTINCT segment) FROM v_rfm_ok;
SELECT count(rfm) FROM v_rfm_against WHERE NOT edge;
ROLLBACK;
BEGIN;
DELETE FROM lifecycle.rfm_segments;
INSERT INTO lifecycle.rfm_segments VALUES (repeat('é', 20000), 1, 5, 1, 5, 1, 5);
SELECT count(code), max(length(segment)) FROM v_rfm_ok;
ROLLBACK;
BEGIN;
DELETE FROM lifecycle.rfm_segments;
INSERT INTO lifecycle.rfm_segments VALUES ('', 1, 5, 1, 5, 1, 5);
SELECT count(code), max(length(segment)) FROM v_rfm_ok;
ROLLBACK;
-- Time zones for the timestamptz form.
SET TimeZone = 'Pacific/Kiritimati';
SELECT count(stage), count(stage_now) FROM v_stage_ts WHERE NOT edge;
SELECT lifecycle.lifecycle_stage('1400-01-01 00:00:00+00'::timestamptz, '9999-12-31 23:59:59+00'::timestamptz, 2, '9999-12-31 23:59:59+00'::timestamptz);
SET TimeZone = 'America/Adak';
SELECT count(stage), count(stage_now) FROM v_stage_ts WHERE NOT edge;
SELECT lifecycle.lifecycle_stage('1400-01-01 00:00:00+00'::timestamptz, '1400-01-01 00:00:00+00'::timestamptz, 1, '1400-01-02 00:00:00+00'::timestamptz);
RESET TimeZone;
-- Big inputs.
SELECT lifecycle.rfm_breakpoints(g, g % 1000, -g) FROM generate_series(1, 500000) g;
SELECT lifecycle._churn_status_final(array_fill(1, ARRAY[1000000]));
SELECT lifecycle._churn_counts_final(array_fill(1::bigint, ARRAY[1000000]));
SELECT lifecycle.lifecycle_stage('2020-01-01', '2020-01-02', 2, '2020-02-01', repeat('z', 1000000));
SQL

# Forced JIT, inlining the extension's bitcode. A session's first inlining of it takes
# seconds, so this runs on the first pass and every fourth one after it.
cat >"$WORK/jit.sql" <<'SQL'
\set VERBOSITY terse
SET statement_timeout = '60s';
SET search_path = public, lifecycle;
SET client_min_messages = warning;
SET jit = on;
SET jit_above_cost = 0;
SET jit_inline_above_cost = 0;
SET jit_optimize_above_cost = 0;
SELECT count(stage) FROM v_stage_ok;
SELECT count(stage) FROM v_stage_windows WHERE NOT edge;
SELECT count(stage), count(stage_now) FROM v_stage_ts WHERE NOT edge;
SELECT count(code), count(DISTINCT segment) FROM v_rfm_ok;
SELECT count(rfm) FROM v_rfm_against WHERE NOT edge;
SELECT * FROM v_churn_rate;
SELECT count(status), count(combined), count(stepped) FROM v_churn_states;
SELECT count(rate), count(counts), count(combined), count(stepped) FROM v_churn_count_states;
SELECT lifecycle.lifecycle_stage(d, d + 10, 3, d + 100, 30, 30, 60, 90, 2.0, 3), count(*)
    FROM generate_series(DATE '2020-01-01', DATE '2021-01-01', interval '1 day') g, LATERAL (SELECT g::date AS d) x GROUP BY 1;
SELECT lifecycle.lifecycle_stage(DATE '2020-01-01', g::date, 3, DATE '2022-01-01', 'no such policy')
    FROM generate_series(DATE '2020-01-01', DATE '2021-01-01', interval '1 day') g;
RESET jit_above_cost;
RESET jit_inline_above_cost;
RESET jit_optimize_above_cost;
SQL

if ! psql_su -d postgres -v ON_ERROR_STOP=1 >"$WORK/setup.out" 2>&1 <<EOF
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $DB WITH (FORCE);
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$FUZZ_ROLE') THEN
        CREATE ROLE $FUZZ_ROLE;
    END IF;
END \$\$;
ALTER ROLE $FUZZ_ROLE LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    CONNECTION LIMIT 10 PASSWORD '$FUZZ_PW';
CREATE DATABASE $DB TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C';
EOF
then
    say "could not create database $DB:"; cat "$WORK/setup.out"; finish
fi
if ! psql_su -d "$DB" -v ON_ERROR_STOP=1 -f "$WORK/setup.sql" >>"$WORK/setup.out" 2>&1; then
    say "setup of $DB failed:"; tail -20 "$WORK/setup.out"; finish
fi

# How sqlsmith logs in: as the fuzzer role itself; if the server's pg_hba refuses it,
# as the superuser with the session switched to the role (options=-c role=...).
TARGET="dbname=$DB user=$FUZZ_ROLE password=$FUZZ_PW application_name=lifecycle_sqlsmith"
if ! PGPASSWORD=$FUZZ_PW psql -X -d "$TARGET" -Atc "SELECT 1" >/dev/null 2>&1; then
    TARGET="dbname=$DB user=$SU options='-c role=$FUZZ_ROLE' application_name=lifecycle_sqlsmith"
    say "WARNING: $FUZZ_ROLE cannot log in here; sqlsmith runs as $SU with role=$FUZZ_ROLE"
fi
if [[ $(psql -X -d "$TARGET" -Atc "SELECT current_setting('is_superuser')" 2>/dev/null) != off ]]; then
    say "refusing to fuzz: the sqlsmith session is a superuser or cannot connect"
    finish
fi

# ---------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------
START_TIME=$(psql_su -d "$DB" -Atc "SELECT pg_postmaster_start_time()")
LOG_OFFSET=0
[[ -n ${SQLSMITH_LOG:-} ]] && LOG_OFFSET=$(stat -c %s "$SQLSMITH_LOG")
T0=$(date +%s)
DEADLINE=$((T0 + DURATION))
say "seed $SEED, $DURATION s, sqlsmith as $FUZZ_ROLE on $DB (reproduce: SQLSMITH_SEED=$SEED $0 $DURATION)"

# Sentinel: a session that sleeps through the run. A backend crash makes the postmaster
# end every session, so the sentinel's early end with "connection lost" shows one.
psql_su -d "$DB" -v ON_ERROR_STOP=1 -c "SET statement_timeout = 0" \
    -c "SET application_name = 'lifecycle_sqlsmith_sentinel'" \
    -c "SELECT pg_sleep($DURATION + 3600)" >"$WORK/sentinel.out" 2>&1 &
SENTINEL_PID=$!
BG_PIDS+=("$SENTINEL_PID")

run_sqlsmith() {
    local run=0 left seed
    while :; do
        left=$((DEADLINE - $(date +%s)))
        ((left >= 2)) || break
        seed=$((SEED + run))
        echo "$seed" >>"$WORK/sqlsmith.seeds"
        # sqlsmith does not parse libpq variables in --target, but libpq reads the
        # environment (PGHOST, PGPORT).
        timeout -k 5 "$left" sqlsmith --target="$TARGET" --seed="$seed" --exclude-catalog \
            --verbose >"$WORK/sqlsmith.$run.out" 2>"$WORK/sqlsmith.$run.err" </dev/null
        echo "$seed $?" >>"$WORK/sqlsmith.exits"
        run=$((run + 1))
        sleep 1
    done
}

run_loop() {
    local pass=0 left rc
    while :; do
        left=$((DEADLINE - $(date +%s)))
        ((left >= 1)) || break
        rc=0
        timeout -k 5 $((left + 3)) "${PSQL_SU[@]}" -d "$DB" -At -c "SET statement_timeout = '60s'" \
            -c "SELECT calls, errors FROM fuzz_internal.fuzz_round($((SEED + pass)), 2000)" \
            >>"$WORK/loop.rounds" 2>>"$WORK/loop.err" </dev/null || rc=$?
        echo "round $pass $rc" >>"$WORK/loop.exits"
        left=$((DEADLINE - $(date +%s)))
        ((left >= 1)) || break
        rc=0
        timeout -k 5 $((left + 3)) "${PSQL_SU[@]}" -d "$DB" -v seed=$((SEED + pass)) -f "$WORK/pass.sql" \
            >/dev/null 2>>"$WORK/loop.err" </dev/null || rc=$?
        echo "pass $pass $rc" >>"$WORK/loop.exits"
        if ((pass % 4 == 0)); then
            left=$((DEADLINE - $(date +%s)))
            ((left >= 1)) || break
            rc=0
            timeout -k 5 $((left + 3)) "${PSQL_SU[@]}" -d "$DB" -f "$WORK/jit.sql" \
                >/dev/null 2>>"$WORK/loop.err" </dev/null || rc=$?
            echo "jit $pass $rc" >>"$WORK/loop.exits"
        fi
        pass=$((pass + 1))
    done
}

run_sqlsmith &
BG_PIDS+=("$!")
SQLSMITH_RUNNER=$!
run_loop &
BG_PIDS+=("$!")
LOOP_RUNNER=$!

if [[ ${SQLSMITH_SELFTEST_CRASH:-0} == 1 ]]; then
    sleep $((DURATION / 2))
    victim=$(psql_su -d "$DB" -Atc "SELECT pid FROM pg_stat_activity
        WHERE datname = '$DB' AND usename = '$FUZZ_ROLE' AND pid <> pg_backend_pid() LIMIT 1")
    if [[ -n $victim ]] && kill -SEGV "$victim" 2>/dev/null; then
        say "self-test: sent SIGSEGV to backend $victim"
    else
        say "self-test: could not signal a backend"
    fi
fi

wait "$SQLSMITH_RUNNER"
wait "$LOOP_RUNNER"
T1=$(date +%s)

# ---------------------------------------------------------------------------------
# The verdict
# ---------------------------------------------------------------------------------
CRASH=0

# The sentinel must still be sleeping: cancel it, and its psql must report the cancel.
if ! kill -0 "$SENTINEL_PID" 2>/dev/null; then
    wait "$SENTINEL_PID"; rc=$?
    CRASH=1; fail_reason "sentinel session ended early (exit $rc): $(tr '\n' ' ' <"$WORK/sentinel.out" | cut -c1-300)"
else
    psql_su -d "$DB" -Atc "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
        WHERE application_name = 'lifecycle_sqlsmith_sentinel'" >/dev/null 2>&1
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$SENTINEL_PID" 2>/dev/null || break; sleep 0.5; done
    kill -TERM "$SENTINEL_PID" 2>/dev/null
    wait "$SENTINEL_PID"
    if ! grep -q 'canceling statement due to user request' "$WORK/sentinel.out"; then
        CRASH=1; fail_reason "sentinel session did not survive: $(tr '\n' ' ' <"$WORK/sentinel.out" | cut -c1-300)"
    fi
fi
BG_PIDS=()

END_TIME=$(psql_su -d "$DB" -Atc "SELECT pg_postmaster_start_time()" 2>/dev/null)
if [[ -z $END_TIME ]]; then
    CRASH=1; fail_reason "server not reachable after the run"
elif [[ $END_TIME != "$START_TIME" ]]; then
    CRASH=1; fail_reason "postmaster restarted: start time $START_TIME -> $END_TIME"
fi

CRASH_LINES=
if [[ -n ${SQLSMITH_LOG:-} && -r $SQLSMITH_LOG ]]; then
    size=$(stat -c %s "$SQLSMITH_LOG")
    ((size < LOG_OFFSET)) && LOG_OFFSET=0
    tail -c +$((LOG_OFFSET + 1)) "$SQLSMITH_LOG" >"$WORK/run.log"
    CRASH_LINES=$(grep -n -E 'terminated by signal|server process .* was terminated|was terminated by exception|PANIC: |all server processes terminated; reinitializing|terminating any other active server processes' \
        "$WORK/run.log" | head -20)
    if [[ -n $CRASH_LINES ]]; then
        CRASH=1; fail_reason "crash in the server log"
    fi
fi

# sqlsmith: one progress character per statement (. ok, e error, t timeout, S syntax,
# C connection broken).
cat "$WORK"/sqlsmith.*.err 2>/dev/null | grep -E '^[.etSC]+$' | tr -d '\n' >"$WORK/sqlsmith.progress"
SS_TOTAL=$(wc -c <"$WORK/sqlsmith.progress")
SS_OK=$(tr -cd '.' <"$WORK/sqlsmith.progress" | wc -c)
SS_ERR=$(tr -cd 'eSt' <"$WORK/sqlsmith.progress" | wc -c)
SS_BROKEN=$(tr -cd 'C' <"$WORK/sqlsmith.progress" | wc -c)
SS_RUNS=$(cat "$WORK/sqlsmith.seeds" 2>/dev/null | wc -l)
if ((SS_BROKEN > 0)); then
    CRASH=1; fail_reason "sqlsmith lost its connection $SS_BROKEN time(s)"
fi
if ((SS_TOTAL == 0)); then
    fail_reason "sqlsmith ran no query: $(cat "$WORK"/sqlsmith.*.err 2>/dev/null | grep -v -E '^[.etSC]*$' | tail -3 | tr '\n' ' ' | cut -c1-300)"
fi

# The loop.
LOOP_CALLS=$(awk -F'|' '{c += $1} END {print c + 0}' "$WORK/loop.rounds" 2>/dev/null || echo 0)
LOOP_CALL_ERRORS=$(awk -F'|' '{e += $2} END {print e + 0}' "$WORK/loop.rounds" 2>/dev/null || echo 0)
LOOP_PASSES=$(grep -c '^pass ' "$WORK/loop.exits" 2>/dev/null || true)
PASS_STATEMENTS=$(grep -c -E ';[[:space:]]*$' "$WORK/pass.sql")
JIT_STATEMENTS=$(grep -c -E ';[[:space:]]*$' "$WORK/jit.sql")
JIT_PASSES=$(grep -c '^jit ' "$WORK/loop.exits" 2>/dev/null || true)
LOOP_STMT_ERRORS=$(grep -c 'ERROR:' "$WORK/loop.err" 2>/dev/null || true)
if grep -q -E 'server closed the connection unexpectedly|connection to server was lost|terminating connection because of crash' \
        "$WORK/loop.err" 2>/dev/null || grep -q -E ' 2$' "$WORK/loop.exits" 2>/dev/null; then
    CRASH=1; fail_reason "the deterministic loop lost its connection"
fi

say "ran $((T1 - T0)) s; sqlsmith seed(s) $(paste -sd, "$WORK/sqlsmith.seeds" 2>/dev/null) ($SS_RUNS run(s))"
say "queries run by sqlsmith: $SS_TOTAL (ok $SS_OK, ERRORs incl. timeouts $SS_ERR, connection lost $SS_BROKEN)"
say "loop: $LOOP_PASSES pass(es) of ~$PASS_STATEMENTS statements + $JIT_PASSES forced-JIT pass(es) of ~$JIT_STATEMENTS ($LOOP_STMT_ERRORS ERRORs); $LOOP_CALLS random calls ($LOOP_CALL_ERRORS ERRORs)"
if [[ -s $WORK/loop.err ]]; then
    say "loop's most frequent errors:"
    sed -n 's/.*ERROR:  *//p' "$WORK/loop.err" | cut -c1-100 | sort | uniq -c | sort -rn | head -5 |
        sed 's/^/    /'
fi
if ((CRASH)); then
    say "crash: YES"
    [[ -n $CRASH_LINES ]] && { say "server log (from line 1 = start of this run, $WORK/run.log):"; echo "$CRASH_LINES" | cut -c1-400 | sed 's/^/    /'; }
    if [[ -s $WORK/run.log ]]; then
        grep -A1 -E 'terminated by signal|was terminated by exception' "$WORK/run.log" |
            grep 'Failed process was running' | cut -c1-2000 | head -5 | sed 's/^/    /'
    fi
    if [[ $OWN_CLUSTER -eq 1 ]]; then
        for core in "$DATA"/core*; do
            [[ -f $core ]] || continue
            say "core file $core"
            if command -v gdb >/dev/null; then
                gdb -batch -ex bt "$PGBIN/postgres" "$core" 2>/dev/null | grep -E '^#' |
                    awk '!seen[$0]++' | head -30 |
                    sed 's/^/    /'
            fi
        done
    fi
else
    say "crash: no"
fi
for r in "${FAIL_REASONS[@]}"; do say "FAIL: $r"; done

if ((CRASH == 0 && SS_TOTAL > 0)); then
    RESULT=pass
    if [[ $OWN_CLUSTER -eq 0 && ${SQLSMITH_KEEP:-0} != 1 ]]; then
        psql_su -d postgres -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $FUZZ_ROLE" \
            >/dev/null 2>&1
    fi
fi
finish
