#!/usr/bin/env bash
# Runs every test suite of lifecycle and ends with one line "N passed, N failed":
#   1. unit      GoogleTest tests of the C++ core (CMake + CTest)
#   2. regress   pg_regress against a temporary instance (make installcheck)
#   3. package   the Debian package: built (debian/), installed with apt-get, its files
#                checked, pg_regress against them with no build tree (test/package.sh)
#   4. dump_restore  pg_dump/pg_restore keeps what the user changed (test/dump_restore.sh)
#   5. integration   the stage engine with the background worker, through libpq
#                    (test/integration.sh: LISTEN, failures, kills, crash restarts)
#   6. upgrade       ALTER EXTENSION UPDATE of a live 0.2.0 database (test/upgrade.sh)
#   7. isolation     interleavings of writers, refresh(), untrack and TRUNCATE
#                    (test/isolation.sh: pg_isolation_regress specs)
#   8. crash_cycle   kill -9 of the worker or a writer, immediate stops, under a pgbench
#                    load (test/crash_cycle.sh, CRASH_CYCLES cycles, default 3); then
#                    again with the table tracked by its watermark (crash_cycle_watermark)
#   9. clients   the example LISTEN clients (examples/: Python, Node, C) while their
#                connections are killed: every transition processed once (test/clients.sh)
#  10. sqlsmith  random SQL against the extension for SQLSMITH_SECONDS; fails on a crash
#  11. report    the HTML report of the CDNOW sample in headless Chromium: a screenshot,
#                every chart drew (test/report.sh)
#  12. docs      every sql block of README.md and docs/*.md run as written against the
#                CDNOW sample, quoted outputs compared (test/docs.sh)
#  13. citus     the engine on a 3-node Citus cluster (test/citus.sh); prints SKIP and
#                counts nothing where Citus is not installed for PG_CONFIG (as in CI)
# Installs missing Debian packages first (scripts/deps.sh). Safe to run as root.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. scripts/cluster.sh
SQLSMITH_SECONDS=${SQLSMITH_SECONDS:-150}
CRASH_CYCLES=${CRASH_CYCLES:-3}
passed=0
failed=0
failures=()

count() {  # suite passed failed
    passed=$((passed + $2))
    failed=$((failed + $3))
    [ "$3" -eq 0 ] || failures+=("$1")
    echo "== $1: $2 passed, $3 failed"
}

scripts/deps.sh || { echo "could not install the dependencies"; exit 1; }

echo "== unit: building the core and its GoogleTest tests"
if cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLIFECYCLE_WERROR=ON >build.log 2>&1 &&
   cmake --build build -j"$(nproc)" >>build.log 2>&1; then
    ctest --test-dir build --output-on-failure >build/ctest.log 2>&1
    tail -n 3 build/ctest.log
    total=$(sed -n 's/.* tests failed out of \([0-9]*\)/\1/p' build/ctest.log)
    bad=$(sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p' build/ctest.log)
    [ -n "$total" ] || { total=1; bad=1; cat build/ctest.log; }
    count unit $((total - bad)) "$bad"
    [ "$bad" -eq 0 ] || grep -E 'Failed|FAILED' build/ctest.log
else
    cat build.log
    count unit 0 1
fi

echo "== regress: building and installing the extension"
if make -s WERROR=1 PG_CONFIG="$PG_CONFIG" -j"$(nproc)" >build.log 2>&1 && install_extension; then
    # pg_regress starts its own instance, which cannot run as root: run it from a copy
    # owned by the server account.
    work=$(mktemp -d /tmp/lifecycle-regress.XXXXXX)
    cp -r Makefile lifecycle.control src sql expected data test docs "$work/"
    [ "$(id -u)" -eq 0 ] && chown -R postgres "$work"
    (cd "$work" && as_server_user make -s installcheck PG_CONFIG="$PG_CONFIG") >"$work/installcheck.log" 2>&1
    grep -E '^(test| ?[a-z0-9_]+ +\.\.\.)|^(ok|not ok) ' "$work/installcheck.log" || true
    # (pg_regress of PostgreSQL 15 prints 'name ... ok', of 16 and later TAP's 'ok N - name')
    ok=$(grep -cE '\.\.\. ok |^ok [0-9]+ ' "$work/installcheck.log")
    bad=$(grep -cE '\.\.\. FAILED |^not ok [0-9]+ ' "$work/installcheck.log")
    if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then cat "$work/installcheck.log"; bad=1; fi
    [ -f "$work/regression.diffs" ] && cat "$work/regression.diffs"
    count regress "$ok" "$bad"
    rm -rf "$work"
else
    cat build.log
    count regress 0 1
fi

echo "== package: the .deb built, installed with apt-get, pg_regress against its files"
# It builds from a copy with the objects the regress suite just compiled (the compile is
# most of its time); it removes the package at the end and puts back the files
# `make install` had put at the same paths, which the suites after use.
mkdir -p build
PACKAGE_REUSE_OBJECTS=1 test/package.sh >build/package.log 2>&1
cat build/package.log
pk_line=$(sed -n 's/^package: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' build/package.log | tail -n 1)
if [ -n "$pk_line" ]; then count package $pk_line; else count package 0 1; fi

echo "== dump_restore: pg_dump keeps the user's policies and segment rules"
if test/dump_restore.sh; then count dump_restore 1 0; else count dump_restore 0 1; fi

echo "== integration: the engine and the worker against a live server"
test/integration.sh >build/integration.log 2>&1
cat build/integration.log
it_line=$(sed -n 's/^integration: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' build/integration.log | tail -n 1)
if [ -n "$it_line" ]; then count integration $it_line; else count integration 0 1; fi

echo "== upgrade: ALTER EXTENSION UPDATE of a live 0.2.0 database, against a fresh install"
test/upgrade.sh >build/upgrade.log 2>&1
cat build/upgrade.log
up_line=$(sed -n 's/^upgrade: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' build/upgrade.log | tail -n 1)
if [ -n "$up_line" ]; then count upgrade $up_line; else count upgrade 0 1; fi

echo "== isolation: writers, refreshes, untrack and TRUNCATE interleaved (pg_isolation_regress)"
test/isolation.sh >build/isolation.log 2>&1
cat build/isolation.log
iso_line=$(sed -n 's/^isolation: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' build/isolation.log | tail -n 1)
if [ -n "$iso_line" ]; then count isolation $iso_line; else count isolation 0 1; fi

echo "== crash_cycle: $CRASH_CYCLES crash cycles under a write load, then stages vs recomputation"
test/crash_cycle.sh "$CRASH_CYCLES" >build/crash_cycle.log 2>&1
cat build/crash_cycle.log
cc_line=$(sed -n 's/^crash_cycle: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' build/crash_cycle.log | tail -n 1)
if [ -n "$cc_line" ]; then count crash_cycle $cc_line; else count crash_cycle 0 1; fi

echo "== crash_cycle_watermark: the same, the table tracked by its watermark (no INSERT trigger)"
CAPTURE=watermark test/crash_cycle.sh "$CRASH_CYCLES" >build/crash_cycle_watermark.log 2>&1
cat build/crash_cycle_watermark.log
cw_line=$(sed -n 's/^crash_cycle: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' build/crash_cycle_watermark.log | tail -n 1)
if [ -n "$cw_line" ]; then count crash_cycle_watermark $cw_line; else count crash_cycle_watermark 0 1; fi

echo "== clients: the example LISTEN clients, their connections killed mid-stream"
test/clients.sh >build/clients.log 2>&1
cat build/clients.log
cl_line=$(sed -n 's/^clients: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' build/clients.log | tail -n 1)
if [ -n "$cl_line" ]; then count clients $cl_line; else count clients 0 1; fi

echo "== sqlsmith: ${SQLSMITH_SECONDS}s of random SQL, failing on any backend crash"
if test/sqlsmith.sh "$SQLSMITH_SECONDS"; then count sqlsmith 1 0; else count sqlsmith 0 1; fi

echo "== report: the HTML report (scripts/report.sh) screenshot in headless Chromium"
test/report.sh >build/report.log 2>&1
cat build/report.log
rp_line=$(sed -n 's/^report: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' build/report.log | tail -n 1)
if [ -n "$rp_line" ]; then count report $rp_line; else count report 0 1; fi

echo "== docs: every sql block of README.md and docs/*.md, run as written"
test/docs.sh >build/docs.log 2>&1
cat build/docs.log
dc_line=$(sed -n 's/^docs: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' build/docs.log | tail -n 1)
if [ -n "$dc_line" ]; then count docs $dc_line; else count docs 0 1; fi

echo "== citus: the engine on a coordinator and two workers (SKIP without Citus)"
test/citus.sh >build/citus.log 2>&1
cat build/citus.log
ct_line=$(sed -n 's/^citus: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' build/citus.log | tail -n 1)
if [ -n "$ct_line" ]; then count citus $ct_line; else count citus 0 1; fi

[ ${#failures[@]} -eq 0 ] || echo "failed suites: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
