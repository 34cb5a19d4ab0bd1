#!/usr/bin/env bash
# Integration tests of the stage engine with the background worker: builds the libpq +
# GoogleTest client in test/integration/, starts a throwaway server with
# shared_preload_libraries = lifecycle and the worker on database lifecycle_it, runs the
# tests (which also stop and start that server), and ends with
# "integration: N passed, N failed". Needs the extension installed (make install).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
dir=$(mktemp -d /tmp/lifecycle-it.XXXXXX)
trap 'cluster_stop "$dir"; rm -rf "$dir"' EXIT
fail() { echo "integration: $*"; echo "integration: 0 passed, 1 failed"; exit 1; }

binary=$dir/integration_tests
g++ -std=c++17 -O1 -Wall -Wextra -Werror -I/usr/include/postgresql test/integration/*.cpp \
    -o "$binary" -lpq -lgtest -lgtest_main -pthread 2>"$dir/build.log" \
    || { cat "$dir/build.log"; fail "the tests did not build"; }
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"

cluster_start "$dir" "${IT_PORT:-54333}" "shared_preload_libraries = 'lifecycle'" \
    "lifecycle.databases = 'lifecycle_it'" "lifecycle.refresh_interval = '200ms'" \
    "max_worker_processes = 8" || fail "the server did not start"
psql -X -q -d postgres -c "CREATE DATABASE lifecycle_it" || fail "no database"
psql -X -q -d lifecycle_it -c "CREATE EXTENSION lifecycle" || fail "no extension"

pgctl="$PG_BIN/pg_ctl -D $dir/data -l $dir/server.log"
[ "$(id -u)" -eq 0 ] && pgctl="runuser -u postgres -- $pgctl"
# Every test with sources tracked by triggers, then the Worker tests again with sources
# tracked by their watermark (track(..., watermark_column => 'id')).
IT_DB=lifecycle_it IT_PGCTL="$pgctl" "$binary" --gtest_color=no >"$dir/run.log" 2>&1
echo "== watermark capture" >>"$dir/run.log"
IT_CAPTURE=watermark IT_DB=lifecycle_it IT_PGCTL="$pgctl" "$binary" --gtest_color=no \
    --gtest_filter='Worker.*' >>"$dir/run.log" 2>&1
grep -E '^\[ +(RUN|OK|FAILED|PASSED) +\]|^== watermark|Failure|Expected|Which is|actual|seed|error|^\[ cancel ' "$dir/run.log"
passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$dir/run.log" | awk '{ s += $1 } END { print s + 0 }')
failed=$(grep -c '^\[  FAILED  \] [A-Za-z]*\.[A-Za-z]* (' "$dir/run.log")
if [ "${passed:-0}" -eq 0 ] && [ "$failed" -eq 0 ]; then
    tail -n 30 "$dir/run.log"; tail -n 30 "$dir/server.log"; fail "the tests did not run"
fi
if [ "$failed" -ne 0 ]; then
    echo "integration: the failures in full:"
    awk '/^\[ RUN/ { block = "" } { block = block $0 "\n" } /^\[  FAILED  \] [A-Za-z]+\.[A-Za-z]+ \(/ { printf "%s", block }' "$dir/run.log"
    grep -E 'ERROR|FATAL|PANIC' "$dir/server.log" | tail -n 20
fi
# Last: DROP EXTENSION while the worker is connected (its session keeps refresh()'s
# scratch tables, which must not depend on the extension's types).
if psql -X -q -d lifecycle_it -c "SELECT 1 FROM pg_stat_activity WHERE backend_type = 'lifecycle worker'" \
       -c "DROP EXTENSION lifecycle CASCADE" >"$dir/drop.log" 2>&1; then
    echo "[       OK ] DropExtensionWhileTheWorkerRuns"; passed=$((passed + 1))
else
    cat "$dir/drop.log"; echo "[  FAILED  ] DropExtensionWhileTheWorkerRuns"; failed=$((failed + 1))
fi
echo "integration: ${passed:-0} passed, $failed failed"
[ "$failed" -eq 0 ]
