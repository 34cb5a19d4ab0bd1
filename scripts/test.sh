#!/usr/bin/env bash
# Runs the test suites of lifecycle and ends with one line "N passed, N failed":
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
#  13. standby   the engine under replication: a physical standby (no worker there, the
#                stage table replayed, promotion) and a logical subscriber (the apply
#                fires no statement trigger: the gap resync() repairs) (test/standby.sh)
#  14. citus     the engine on a 3-node Citus cluster (test/citus.sh); prints SKIP and
#                counts nothing where Citus is not installed for PG_CONFIG (as in CI)
#  15. versions  the other PostgreSQL majors Debian's registry offers (17, 18, 19 on
#                2026-12-08), in a Debian tree built once per machine outside the clone:
#                regress, integration, isolation on each, and pg_upgrade from this
#                machine's major to the newest (test/versions.sh)
#   scripts/test.sh [SUITE ...]   runs only those suites (names as above), in that order.
# Installs missing Debian packages first (scripts/deps.sh; LIFECYCLE_DEPS=skip where the
# caller has installed them, as test/versions.sh does). Safe to run as root.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. scripts/cluster.sh
SQLSMITH_SECONDS=${SQLSMITH_SECONDS:-150}
CRASH_CYCLES=${CRASH_CYCLES:-3}
all_suites=(unit regress package dump_restore integration upgrade isolation crash_cycle
            crash_cycle_watermark clients sqlsmith report docs standby citus versions)
passed=0
failed=0
failures=()

count() {  # suite passed failed
    passed=$((passed + $2))
    failed=$((failed + $3))
    [ "$3" -eq 0 ] || failures+=("$1")
    echo "== $1: $2 passed, $3 failed"
}

# A script's own closing line "NAME: N passed, N failed" counted as suite SUITE; none
# (it died, or printed no count) counts as one failure.
count_script() {  # suite name log
    cat "$3"
    local line
    line=$(sed -n "s/^$2: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p" "$3" | tail -n 1)
    if [ -n "$line" ]; then count "$1" $line; else count "$1" 0 1; fi
}

built=""
build_extension() {  # once: make and make install; what every server suite needs
    [ -n "$built" ] && { [ "$built" = ok ]; return; }
    echo "== build: the extension for $("$PG_CONFIG" --version)"
    if make -s WERROR=1 PG_CONFIG="$PG_CONFIG" -j"$(nproc)" >build.log 2>&1 && install_extension; then
        built=ok
    else
        cat build.log
        built=failed
        count build 0 1
        return 1
    fi
}

suite_unit() {
    echo "== unit: building the core and its GoogleTest tests"
    if cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLIFECYCLE_WERROR=ON >build.log 2>&1 &&
       cmake --build build -j"$(nproc)" >>build.log 2>&1; then
        ctest --test-dir build --output-on-failure >build/ctest.log 2>&1
        tail -n 3 build/ctest.log
        local total bad
        total=$(sed -n 's/.* tests failed out of \([0-9]*\)/\1/p' build/ctest.log)
        bad=$(sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p' build/ctest.log)
        [ -n "$total" ] || { total=1; bad=1; cat build/ctest.log; }
        count unit $((total - bad)) "$bad"
        [ "$bad" -eq 0 ] || grep -E 'Failed|FAILED' build/ctest.log
    else
        cat build.log
        count unit 0 1
    fi
}

suite_regress() {
    echo "== regress: pg_regress against a temporary instance"
    build_extension || return
    # pg_regress starts its own instance, which cannot run as root: run it from a copy
    # owned by the server account.
    local work ok bad
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
}

suite_package() {
    # It builds from a copy with the objects the build just compiled (the compile is most
    # of its time); it removes the package at the end and puts back the files `make
    # install` had put at the same paths, which the suites after use.
    script_suite package package "the .deb built, installed with apt-get, pg_regress against its files" \
        env PACKAGE_REUSE_OBJECTS=1 test/package.sh
}

suite_dump_restore() {
    echo "== dump_restore: pg_dump keeps the user's policies and segment rules"
    build_extension || return
    if test/dump_restore.sh; then count dump_restore 1 0; else count dump_restore 0 1; fi
}

# A suite that is one of test/'s scripts, ending with "NAME: N passed, N failed": its
# output goes to build/SUITE.log, shown whole, then counted.
script_suite() {  # suite name what command...
    echo "== $1: $3"
    [ "$1" = versions ] || build_extension || return
    mkdir -p build
    "${@:4}" >"build/$1.log" 2>&1
    count_script "$1" "$2" "build/$1.log"
}

suite_integration() {
    script_suite integration integration "the engine and the worker against a live server" \
        test/integration.sh
}
suite_upgrade() {
    script_suite upgrade upgrade "ALTER EXTENSION UPDATE of a live 0.2.0 database, against a fresh install" \
        test/upgrade.sh
}
suite_isolation() {
    script_suite isolation isolation "writers, refreshes, untrack and TRUNCATE interleaved (pg_isolation_regress)" \
        test/isolation.sh
}
suite_crash_cycle() {
    script_suite crash_cycle crash_cycle "$CRASH_CYCLES crash cycles under a write load, then stages vs recomputation" \
        test/crash_cycle.sh "$CRASH_CYCLES"
}
suite_crash_cycle_watermark() {
    script_suite crash_cycle_watermark crash_cycle "the same, the table tracked by its watermark (no INSERT trigger)" \
        env CAPTURE=watermark test/crash_cycle.sh "$CRASH_CYCLES"
}
suite_clients() {
    script_suite clients clients "the example LISTEN clients, their connections killed mid-stream" \
        test/clients.sh
}
suite_sqlsmith() {
    echo "== sqlsmith: ${SQLSMITH_SECONDS}s of random SQL, failing on any backend crash"
    build_extension || return
    if test/sqlsmith.sh "$SQLSMITH_SECONDS"; then count sqlsmith 1 0; else count sqlsmith 0 1; fi
}

suite_report() {
    script_suite report report "the HTML report (scripts/report.sh) screenshot in headless Chromium" \
        test/report.sh
}
suite_docs() {
    script_suite docs docs "every sql block of README.md and docs/*.md, run as written" test/docs.sh
}
suite_standby() {
    script_suite standby standby "a physical standby and its promotion, a logical subscriber, and the engine" \
        test/standby.sh
}
suite_citus() {
    script_suite citus citus "the engine on a coordinator and two workers (SKIP without Citus)" \
        test/citus.sh
}
suite_versions() {
    script_suite versions versions "the other PostgreSQL majors, in a Debian tree outside the clone" \
        test/versions.sh
}

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=("${all_suites[@]}")
for s in "${suites[@]}"; do
    declare -F "suite_$s" >/dev/null || { echo "no suite '$s' (suites: ${all_suites[*]})"; exit 2; }
done
if [ "${LIFECYCLE_DEPS:-}" != skip ]; then
    scripts/deps.sh || { echo "could not install the dependencies"; exit 1; }
fi
for s in "${suites[@]}"; do "suite_$s"; done

[ ${#failures[@]} -eq 0 ] || echo "failed suites: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
