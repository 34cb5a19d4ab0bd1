-- The data of the HTML report (scripts/report.sh), as one JSON document on stdout, read
-- only from lifecycle's views and functions for BI. Any database with a tracked source
-- will do:
--   psql -X -At -v source=orders -v flow_from=2024-03-31 -v flow_to=2024-06-30 \
--        -v calibration_end=2023-12-31 -v holdout_end=2024-06-30 -f scripts/report.sql \
--     | python3 scripts/report_html.py > report.html
-- source: the tracked table (as in lifecycle.sources); flow_from/flow_to: the two days
-- stage_flow compares; calibration_end/holdout_end: the model comparison's periods (the
-- source's own customer, time and amount columns, from lifecycle.sources, in weeks).
\set ON_ERROR_STOP on
SELECT json_build_object(
    'source', s.source::text,
    'tracked_on', s.tracked_on,
    'engine_date', lifecycle.engine_date(),
    'customers', (SELECT count(*) FROM lifecycle.customer_stage c
                  WHERE c.source_id = s.id AND c.purchases > 0),
    'purchase_days', (SELECT sum(c.purchases) FROM lifecycle.customer_stage c
                      WHERE c.source_id = s.id),
    -- (a) customers per stage at the end of every day
    'stage_counts_daily', (
        SELECT json_agg(json_build_object('day', d.day, 'stage', d.stage,
                                          'customers', d.customers) ORDER BY d.day, d.stage)
        FROM lifecycle.stage_counts_daily d WHERE d.source = s.source::text),
    -- (b) churn and reactivation per complete month
    'churn_per_month', (
        SELECT json_agg(json_build_object('month', m.month, 'base', m.base,
                                          'churned', m.churned, 'reactivated', m.reactivated,
                                          'new', m.new, 'churn_rate', m.churn_rate)
                        ORDER BY m.month)
        FROM lifecycle.churn_per_month m WHERE m.source = s.source::text),
    -- (c) customers per recency and frequency score (NULL scores: not scored yet)
    'rfm_grid', (
        SELECT json_agg(json_build_object('r', g.r, 'f', g.f, 'customers', g.customers)
                        ORDER BY g.r, g.f)
        FROM (SELECT c.r, c.f, count(*) AS customers FROM lifecycle.customer_stage c
              WHERE c.source_id = s.id AND c.r IS NOT NULL AND c.f IS NOT NULL
              GROUP BY c.r, c.f) g),
    -- (d) retention per first-purchase month and months since
    'cohort_retention', (
        SELECT json_agg(json_build_object('cohort', k.cohort, 'customers', k.customers,
                                          'months_since', k.months_since,
                                          'retained', k.retained, 'retention', k.retention)
                        ORDER BY k.cohort, k.months_since)
        FROM lifecycle.cohort_retention k WHERE k.source = s.source::text),
    -- (e) where the customers of flow_from's end were at flow_to's end
    'flow_from', :'flow_from'::date,
    'flow_to', :'flow_to'::date,
    'stage_flow', (
        SELECT json_agg(json_build_object('from', f.from_stage, 'to', f.to_stage,
                                          'customers', f.customers))
        FROM lifecycle.stage_flow(s.source, :'flow_from', :'flow_to') f),
    -- (f) the purchase models fitted up to calibration_end against the holdout
    'calibration_end', :'calibration_end'::date,
    'holdout_end', :'holdout_end'::date,
    'model_by_frequency', (
        SELECT json_agg(row_to_json(x) ORDER BY x.frequency)
        FROM lifecycle.compare_models_by_frequency(s.source, s.customer_column, s.time_column,
                                                   s.amount_column, :'calibration_end',
                                                   :'holdout_end', 'week') x)
)
FROM lifecycle.sources s WHERE s.source = :'source'::regclass;
