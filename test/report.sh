#!/usr/bin/env bash
# The HTML report in a browser: scripts/report.sh (which builds and installs lifecycle)
# writes the report of the CDNOW sample from a throwaway cluster; headless Chromium
# screenshots it; test/report_check.py checks the file fetches nothing, every chart's svg
# has marks and every chart's box in the screenshot has coloured pixels (it drew). Then a
# control: the same report with one chart's marks removed (its axes, labels and legend
# left) must be found blank, so a chart that does not draw cannot pass.
# Ends with "report: N passed, M failed". REPORT_PNG=path keeps the screenshot (the
# README's docs/report.png comes from `REPORT_PNG=docs/report.png test/report.sh`).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=$(mktemp -d /tmp/lifecycle-report-test.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0
failed=0
fail() { echo "report: $*"; echo "report: $passed passed, $((failed + 1)) failed"; exit 1; }

# One Chromium run: the page at its own size, one CSS pixel per screenshot pixel. As
# root Chromium needs --no-sandbox; its own profile folder keeps runs apart.
screenshot() {  # html png
    local size
    size=$(sed -n 's/.*\.page { position: relative; width: \([0-9]*\)px; height: \([0-9]*\)px.*/\1,\2/p' "$1")
    timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --force-device-scale-factor=1 --user-data-dir="$dir/chromium" \
        --window-size="${size:-1200,1800}" --screenshot="$2" "file://$1" >"$dir/chromium.log" 2>&1
}

checks() {  # report_check.py's arguments; adds its verdicts to the counts
    /usr/bin/python3 test/report_check.py "$@" | tee "$dir/check.log"
    passed=$((passed + $(grep -c '^ok - ' "$dir/check.log")))
    failed=$((failed + $(grep -c '^not ok - ' "$dir/check.log")))
}

command -v chromium >/dev/null || fail "chromium is not installed (scripts/deps.sh installs it)"
REPORT_PORT=${REPORT_TEST_PORT:-54412} scripts/report.sh "$dir/report.html" >"$dir/report.log" 2>&1 \
    || { cat "$dir/report.log"; fail "scripts/report.sh failed"; }
grep '^report: wrote' "$dir/report.log"

screenshot "$dir/report.html" "$dir/report.png" \
    || { cat "$dir/chromium.log"; fail "chromium took no screenshot"; }
checks "$dir/report.html" "$dir/report.png"
if [ -n "${REPORT_PNG:-}" ]; then cp "$dir/report.png" "$root/$REPORT_PNG" && echo "report: kept $REPORT_PNG"; fi

# The control: the churn chart's marks (bars, line, dots) removed; what is left of it is
# its axes, grid, labels (the right axis's in colour) and legend.
/usr/bin/python3 - "$dir/report.html" "$dir/control.html" <<'PY'
import re, sys
page = open(sys.argv[1], encoding="utf-8").read()
def strip(m):
    return re.sub(r"<(rect|polygon|polyline|circle)\b[^>]*?(/>|>.*?</\1>)", "", m[0], flags=re.S)
page, n = re.subn(r'<svg id="chart-churn".*?</svg>', strip, page, flags=re.S)
assert n == 1, "no churn chart"
open(sys.argv[2], "w", encoding="utf-8").write(page)
PY
screenshot "$dir/control.html" "$dir/control.png" \
    || { cat "$dir/chromium.log"; fail "chromium took no screenshot of the control"; }
checks "$dir/control.html" "$dir/control.png" --expect-blank churn

echo "report: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
