#!/usr/bin/env bash
# Isolation tests of the stage engine: the specs in test/isolation/specs/*.spec run with
# pg_isolation_regress against a temporary instance (no worker: the specs call refresh()
# themselves), their output compared with test/isolation/expected/*.out. Writers
# committing during a refresh, two refreshes at once, untrack and TRUNCATE during a
# refresh; each ends by comparing the stage table with a recomputation from the orders
# and checking the transitions log's chains. Ends with "isolation: N passed, N failed".
# Needs the extension installed (make install). As root the instance runs as `postgres`
# from a copy of the specs that it owns (as scripts/test.sh runs pg_regress).
#   test/isolation.sh [spec ...]      (default: every spec; ISO_PORT, default 54411)
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
pgxs_dir=$(dirname "$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")")
regress=$pgxs_dir/src/test/isolation/pg_isolation_regress
fail() { echo "isolation: $*"; echo "isolation: 0 passed, 1 failed"; exit 1; }
[ -x "$regress" ] || fail "no pg_isolation_regress at $regress"

if [ $# -gt 0 ]; then specs=("$@")
else specs=($(cd test/isolation/specs && ls *.spec | sed 's/\.spec$//')); fi
work=$(mktemp -d /tmp/lifecycle-iso.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r test/isolation/specs test/isolation/expected test/regress.conf "$work/"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$work"
(cd "$work" && as_server_user "$regress" --inputdir=. --outputdir=. --bindir="$PG_BIN" \
    --temp-instance=./tmp_check --temp-config=./regress.conf --port="${ISO_PORT:-54411}" \
    "${specs[@]}") >"$work/run.log" 2>&1
grep -E '^(test| ?[a-z0-9_]+ +\.\.\.)|^(ok|not ok) |tests? (passed|failed)' "$work/run.log" || true
# (pg_regress of PostgreSQL 15 prints 'name ... ok', of 16 and later TAP's 'ok N - name')
passed=$(grep -cE '\.\.\. ok |^ok [0-9]+ ' "$work/run.log")
failed=$(grep -cE '\.\.\. FAILED |^not ok [0-9]+ ' "$work/run.log")
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
    cat "$work/run.log"; tail -n 30 "$work"/tmp_check/log/postmaster.log 2>/dev/null
    fail "the specs did not run"
fi
[ -f "$work/regression.diffs" ] && cat "$work/regression.diffs"
# the outputs stay in test/isolation/results/ for a look (or to be checked and copied)
rm -rf test/isolation/results
[ -d "$work/results" ] && cp -r "$work/results" test/isolation/results
echo "isolation: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
