#!/usr/bin/env bash
# Writes the HTML report of the bundled CDNOW sample: one self-contained file (inline SVG
# and CSS, no script, nothing fetched) with six charts drawn from lifecycle's views.
#   scripts/report.sh [OUTPUT.html]     (default: lifecycle-report.html in the current folder)
# Builds and installs lifecycle, starts a throwaway PostgreSQL (port REPORT_PORT), tracks
# an empty copy of CDNOW from REPORT_TRACKED and replays it day by day to REPORT_UNTIL
# (each day's purchases inserted on their day, then lifecycle.refresh()), so the history
# views have the whole story; then scripts/report.sql reads the views as JSON and
# scripts/report_html.py draws them. The cluster is removed at the end. About a minute.
set -euo pipefail
out=$(realpath -m "${1:-lifecycle-report.html}")   # before the cd: relative to the caller
cd "$(dirname "$0")/.."
. scripts/cluster.sh
REPORT_TRACKED=${REPORT_TRACKED:-1996-12-31}   # the day before CDNOW's first purchase
REPORT_UNTIL=${REPORT_UNTIL:-1998-06-30}       # the day CDNOW's data ends
FLOW_FROM=${FLOW_FROM:-1998-03-31}             # stage_flow: the last quarter
CALIBRATION_END=${CALIBRATION_END:-1997-09-30} # the models: 39 weeks and 39 weeks of holdout

scripts/deps.sh
echo "report: building and installing lifecycle ..."
make -s PG_CONFIG="$PG_CONFIG" -j"$(nproc)" >/dev/null
install_extension

dir=$(mktemp -d /tmp/lifecycle-report.XXXXXX)
trap 'cluster_stop "$dir"; rm -rf "$dir"' EXIT
# RFM breakpoints are recomputed every lifecycle.rfm_interval: at 1 second, the refresh
# after the replay (a second after the last rescoring) scores everyone as of its last day.
cluster_start "$dir" "${REPORT_PORT:-54411}" "lifecycle.rfm_interval = 1"
psql() { command psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
psql -c "CREATE EXTENSION lifecycle" -c "CREATE TABLE cdnow_raw (line text)" \
     -c "\\copy cdnow_raw FROM 'data/cdnow_sample.txt'" -f data/cdnow.sql
echo "report: replaying CDNOW day by day from $REPORT_TRACKED to $REPORT_UNTIL ..."
psql -v tracked="$REPORT_TRACKED" -v until="$REPORT_UNTIL" <<'SQL'
SET TimeZone = 'UTC';
SET lifecycle.as_of = :'tracked';
SET report.until = :'until';   -- for the DO block, which sees no psql variables
-- cdnow_replay starts empty; every purchase arrives on its own day, as the shop's
-- application would insert it, and the engine steps one day at a time.
CREATE TABLE cdnow_replay (LIKE cdnow_orders);
CREATE INDEX ON cdnow_replay (customer_id, order_date);
SELECT lifecycle.track('cdnow_replay', 'customer_id', 'order_date', 'amount') \g /dev/null
DO $$
DECLARE
    first date := current_setting('lifecycle.as_of')::date + 1;
    last date := current_setting('report.until')::date;
BEGIN
    FOR d IN 0 .. last - first LOOP
        PERFORM set_config('lifecycle.as_of', (first + d)::text, false);
        INSERT INTO cdnow_replay SELECT * FROM cdnow_orders WHERE order_date = first + d;
        PERFORM lifecycle.refresh();
        COMMIT;
    END LOOP;
END
$$;
SELECT pg_sleep(1.1) \g /dev/null
SELECT lifecycle.refresh() \g /dev/null
SQL

PGOPTIONS="-c lifecycle.as_of=$REPORT_UNTIL" command psql -X -q -At -v ON_ERROR_STOP=1 -d postgres \
    -v source=cdnow_replay -v flow_from="$FLOW_FROM" -v flow_to="$REPORT_UNTIL" \
    -v calibration_end="$CALIBRATION_END" -v holdout_end="$REPORT_UNTIL" \
    -f scripts/report.sql >"$dir/report.json"
/usr/bin/python3 scripts/report_html.py <"$dir/report.json" >"$out.tmp"
mv "$out.tmp" "$out"
echo "report: wrote $out"
