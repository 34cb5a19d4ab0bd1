#!/usr/bin/env bash
# bench/plans.sh: the stage engine's cost must follow the rows touched, whatever the
# planner's statistics say (issue: tracking a second 100k source after ANALYZE took over
# 150 s, a quadratic nested loop on stale statistics). On demand, not in CI.
#
#   bash bench/plans.sh                 # 100k customers per source, 3 orders each
#   CUSTOMERS=300000 bash bench/plans.sh
#
# Tracks source 1 on a fresh stage table (the baseline); ANALYZEs the stage table;
# tracks source 2 (statistics say: one source, none of it source 2); drops source 1 and
# tracks source 3 (statistics say: source 1, which is gone); has a tenth of source 3's
# customers buy again (the plain-purchase path, on those statistics); then grows source 2 tenfold
# in new customers without an ANALYZE and times the refresh that takes them in, and a
# full rescoring of source 2. Prints each time and its ratio to the baseline track.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
CUSTOMERS=${CUSTOMERS:-100000}
dir=$(mktemp -d /tmp/lifecycle-bench-plans.XXXXXX)
trap 'cluster_stop "$dir"; rm -rf "$dir"' EXIT
cluster_start "$dir" "${BENCH_PORT:-55441}" "shared_buffers = '1GB'" "autovacuum = off" \
    "max_parallel_workers_per_gather = 0" "jit = off"
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d postgres "$@"; }
ms() { q -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1; }
q -c "CREATE EXTENSION lifecycle" -c "ALTER DATABASE postgres SET lifecycle.as_of = '2026-06-30'"
orders() {  # table, customers
    q -c "CREATE TABLE $1 (customer_id bigint NOT NULL, ordered date NOT NULL, amount numeric)" \
      -c "INSERT INTO $1 SELECT i % $2, '2026-01-01'::date + (i * 7 % 170), 10
          FROM generate_series(1, 3 * $2) i" \
      -c "CREATE INDEX ON $1 (customer_id)" -c "ANALYZE $1"
}
orders o1 "$CUSTOMERS"; orders o2 "$CUSTOMERS"; orders o3 "$CUSTOMERS"
base=$(ms "SELECT lifecycle.track('o1', 'customer_id', 'ordered', 'amount')")
q -c "ANALYZE lifecycle.customer_stage"
second=$(ms "SELECT lifecycle.track('o2', 'customer_id', 'ordered', 'amount')")
q -c "DROP TABLE o1"
third=$(ms "SELECT lifecycle.track('o3', 'customer_id', 'ordered', 'amount')")
q -c "INSERT INTO o3 SELECT i, '2026-06-29', 10 FROM generate_series(0, $CUSTOMERS / 10 - 1) i"
again=$(ms "SELECT lifecycle.refresh()")
# Source 2 grows tenfold in new customers since the statistics were taken.
q -c "INSERT INTO o2 SELECT $CUSTOMERS + i % (9 * $CUSTOMERS), '2026-06-01'::date + i % 29, 10
      FROM generate_series(1, 9 * $CUSTOMERS) i"
grown=$(ms "SELECT lifecycle.refresh()")
rescore=$(ms "SELECT lifecycle._rescore((SELECT id FROM lifecycle.sources WHERE source = 'o2'::regclass), '2026-06-30')")
rows=$(q -c "SELECT count(*) FROM lifecycle.customer_stage")
ratio() { awk -v a="$1" -v b="$base" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-62s %10s %7s\n' "step ($CUSTOMERS customers a source)" "ms" "ratio"
printf '%-62s %10.0f %7s\n' "track source 1 (fresh stage table: the baseline)" "$base" "1.00"
printf '%-62s %10.0f %7s\n' "track source 2 after ANALYZE of the stage table" "$second" "$(ratio "$second")"
printf '%-62s %10.0f %7s\n' "track source 3 after source 1 was dropped" "$third" "$(ratio "$third")"
printf '%-62s %10.0f %7s\n' "refresh: a tenth of source 3 buys again ($((CUSTOMERS / 10)))" "$again" "$(ratio "$again")"
printf '%-62s %10.0f %7s\n' "refresh: source 2 grew tenfold (9x new customers), no ANALYZE" "$grown" "$(ratio "$grown")"
printf '%-62s %10.0f %7s\n' "rescoring all of source 2 ($((10 * CUSTOMERS)) customers)" "$rescore" "$(ratio "$rescore")"
echo "stage table: $rows rows; load: $(cut -d' ' -f1-3 /proc/loadavg)"
