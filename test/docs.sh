#!/usr/bin/env bash
# The docs suite: every ```sql block of README.md and docs/*.md run as written. For each
# file, a fresh database with the CDNOW sample loaded (data/cdnow.sql: the table
# cdnow_orders) gets the file's blocks in order, in one psql session; a block fails on
# any ERROR it does not declare, on a figure it quotes that the output does not give, or
# on an output that differs from the ```text block after it. Markers (an HTML comment on
# the line before the fence) are read by test/docs_blocks.py, which says what they mean:
# `<!-- docs-test: skip: REASON -->` (printed), `<!-- docs-test: error SQLSTATE -->`,
# `<!-- docs-test: expect FIGURES -->`. The extension is created before the file's first
# block (README.md's CREATE EXTENSION block is marked skip). psql runs quiet (-q: no
# command tags), as the outputs in the docs are shown. Counts blocks (skipped ones not);
# ends with "docs: N passed, N failed". Needs the extension installed (make install);
# DOCS_PORT (default 54391) is the throwaway server's port. The server preloads the
# library (its settings, such as lifecycle.as_of, are known from the start) and runs no
# worker: the blocks call lifecycle.refresh() themselves, so every output is the same
# on every run.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
dir=$(mktemp -d /tmp/lifecycle-docs.XXXXXX)
trap 'cluster_stop "$dir"; rm -rf "$dir"' EXIT
fail() { echo "docs: $*"; echo "docs: 0 passed, 1 failed"; exit 1; }

cluster_start "$dir" "${DOCS_PORT:-54391}" "shared_preload_libraries = 'lifecycle'" \
    "lifecycle.databases = ''" || fail "the server did not start"
passed=0
failed=0
n=0
for md in README.md docs/*.md; do
    grep -q '^```sql' "$md" || continue
    n=$((n + 1))
    db=docs_$n
    psql -X -q -d postgres -c "CREATE DATABASE $db" || fail "no database $db"
    {
        echo 'CREATE TABLE cdnow_raw (line text);'
        echo "\\copy cdnow_raw FROM 'data/cdnow_sample.txt'"
        echo '\i data/cdnow.sql'
        echo 'CREATE EXTENSION lifecycle;'
    } | psql -X -q -v ON_ERROR_STOP=1 -d "$db" >"$dir/load_$n.log" 2>&1 \
        || { cat "$dir/load_$n.log"; fail "the sample did not load into $db"; }
    python3 test/docs_blocks.py script "$md" "$dir/$n.sql" || fail "cannot read $md"
    stdbuf -oL -eL psql -X -q -d "$db" -f "$dir/$n.sql" >"$dir/$n.log" 2>&1
    python3 test/docs_blocks.py check "$md" "$dir/$n.log" >"$dir/$n.check"
    cat "$dir/$n.check"
    line=$(sed -n 's/^docs_file: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$dir/$n.check")
    [ -n "$line" ] || { echo "FAIL $md: the output could not be judged"; line="0 1"; }
    set -- $line
    passed=$((passed + $1))
    failed=$((failed + $2))
done
echo "docs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
