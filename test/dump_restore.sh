#!/usr/bin/env bash
# pg_dump keeps what the user changed: a database with lifecycle, a user's own policy, an
# edited preset, replaced RFM segment rules, a tracked source and a fitted model is dumped and restored into a new
# database, and the restored tables equal the originals (and CREATE EXTENSION's rows
# are not doubled). Starts its own throwaway cluster. Exit 0 when they are equal.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster.sh
dir=$(mktemp -d /tmp/lifecycle-dump.XXXXXX)
trap 'cluster_stop "$dir"; rm -rf "$dir"' EXIT
cluster_start "$dir" "${DUMP_TEST_PORT:-54331}"
q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

q -d postgres -c "CREATE DATABASE original" -c "CREATE DATABASE restored"
q -d original -o /dev/null <<'SQL'
CREATE EXTENSION lifecycle;
SET client_min_messages = warning;
INSERT INTO lifecycle.policies (name, onboarding_days, at_risk_days, inactive_days, lapsed_days)
VALUES ('weekly_box', 7, 10, 20, 40);
UPDATE lifecycle.policies SET lapsed_days = 120 WHERE name = 'default';
INSERT INTO lifecycle.rfm_segments VALUES ('low', 1, 2, 1, 5, 1, 5), ('high', 3, 5, 1, 5, 1, 5);
CREATE TABLE summary AS SELECT date '2024-01-01' AS first, date '2024-01-01' AS last, 1::bigint AS n;
CREATE VIEW stages AS SELECT lifecycle.lifecycle_stage(first, last, n, date '2024-04-10') AS stage FROM summary;
-- A tracked source with its stage table, log and a change still queued.
CREATE TABLE orders (customer_id integer, ordered_at date, amount numeric);
INSERT INTO orders SELECT i % 20, date '2024-01-01' + i, 1 FROM generate_series(1, 60) i;
SET lifecycle.as_of = '2024-03-15';
SELECT lifecycle.track('orders', 'customer_id', 'ordered_at', 'amount', 'weekly_box');
SET lifecycle.as_of = '2024-04-01';
SELECT lifecycle.refresh();
INSERT INTO orders VALUES (99, '2024-04-01', 5);
-- A fitted model, the current one.
SELECT lifecycle.fit_model('spring', 'orders', 'customer_id', 'ordered_at', 'amount', '2024-03-01', 'day');
SQL
as_server_user pg_dump -h "$dir" -p "$PGPORT" -U postgres -Fc -f "$dir/original.dump" original
as_server_user pg_restore -h "$dir" -p "$PGPORT" -U postgres --exit-on-error -d restored "$dir/original.dump"

snapshot() {
    q -d "$1" -c "SELECT name, onboarding_days, at_risk_days, inactive_days, lapsed_days, rhythm_factor,
                         rhythm_min_purchases, builtin FROM lifecycle.policies ORDER BY name" \
              -c "SELECT * FROM lifecycle.rfm_segment_rules ORDER BY segment" \
              -c "SELECT stage FROM stages" \
              -c "SELECT source, customer_column, time_column, policy, tracked_on FROM lifecycle.sources" \
              -c "SELECT * FROM lifecycle.customer_stage ORDER BY customer" \
              -c "SELECT * FROM lifecycle.transitions ORDER BY id" \
              -c "SELECT source_id, customer FROM lifecycle.change_queue ORDER BY id" \
              -c "SELECT name, source, calibration_end, unit, customers, bgnbd, gamma_gamma, is_current
                  FROM lifecycle.models"
}
snapshot original >"$dir/original.txt"
snapshot restored >"$dir/restored.txt"
if diff -u "$dir/original.txt" "$dir/restored.txt"; then
    echo "dump_restore: policies, segment rules and a view over lifecycle_stage survive pg_dump/pg_restore"
    # The view still says inactive: the edited default (lapsed 120) came back.
    grep -qx inactive "$dir/restored.txt" || { echo "dump_restore: the edited default policy was lost"; exit 1; }
    # The restored engine goes on: the queued customer and a new order are picked up.
    after=$(q -d restored -c "SET lifecycle.as_of = '2024-04-02'" \
              -c "INSERT INTO orders VALUES (98, '2024-04-02', 5)" \
              -c "SELECT queued FROM lifecycle.refresh()" \
              -c "SELECT string_agg(customer || ':' || stage, ',' ORDER BY customer)
                  FROM lifecycle.customer_stage WHERE customer IN ('98', '99')")
    [ "$after" = $'2\n98:new,99:new' ] || { echo "dump_restore: the restored engine did not pick up the changes ($after)"; exit 1; }
    echo "dump_restore: the tracked source, its stage table, log and queue survive, and refresh goes on"
else
    echo "dump_restore: the restored database differs from the original"
    exit 1
fi
