------------------------------------------------------------------------------------
-- 0.3.0: what every column of the stage table, the log and the views means, for BI
-- tools that read COMMENTs (docs/engine.md lists the same). The names here are the
-- public interface: they stay stable across versions.
------------------------------------------------------------------------------------

COMMENT ON COLUMN lifecycle.customer_stage.source_id IS 'The tracked orders table (lifecycle.sources.id)';
COMMENT ON COLUMN lifecycle.customer_stage.customer IS 'The customer id, as text';
COMMENT ON COLUMN lifecycle.customer_stage.first_purchase IS 'Day of the first purchase (NULL while every order is dated in the future)';
COMMENT ON COLUMN lifecycle.customer_stage.last_purchase IS 'Day of the last purchase up to the engine''s date';
COMMENT ON COLUMN lifecycle.customer_stage.purchases IS 'Distinct purchase days up to the engine''s date';
COMMENT ON COLUMN lifecycle.customer_stage.spend IS 'Total amount of those orders (NULL without an amount column)';
COMMENT ON COLUMN lifecycle.customer_stage.stage IS 'Lifecycle stage as of the engine''s date (DESIGN.md''s definitions, the source''s policy)';
COMMENT ON COLUMN lifecycle.customer_stage.stage_since IS 'Day the customer entered the current stage';
COMMENT ON COLUMN lifecycle.customer_stage.next_change IS 'Day the stage changes if nothing is bought (NULL: never)';
COMMENT ON COLUMN lifecycle.customer_stage.next_order IS 'First order dated after the engine''s date, if any';
COMMENT ON COLUMN lifecycle.customer_stage.r IS 'RFM recency score, 1 (longest ago) to 5';
COMMENT ON COLUMN lifecycle.customer_stage.f IS 'RFM frequency score, 1 to 5 (most purchases)';
COMMENT ON COLUMN lifecycle.customer_stage.m IS 'RFM monetary score, 1 to 5 (highest spend)';
COMMENT ON COLUMN lifecycle.customer_stage.segment IS 'RFM segment (lifecycle.rfm_segment_rules)';
COMMENT ON COLUMN lifecycle.customer_stage.churn_risk IS 'Probability of no purchase within the horizon under the current model';
COMMENT ON COLUMN lifecycle.customer_stage.expected_value IS 'Expected lifetime value under the current model';
COMMENT ON COLUMN lifecycle.customer_stage.updated_at IS 'When the row was last written';
COMMENT ON COLUMN lifecycle.customer_stage.wake_on IS 'When refresh() next looks at the customer: on or before next_change (a purchase leaves it be)';
COMMENT ON COLUMN lifecycle.customer_stage.moved_from IS 'Engine bookkeeping: the stage the last purchase written at once moved the customer from (NULL: it stayed)';

COMMENT ON COLUMN lifecycle.transitions.id IS 'Order of the transitions (commit order: refreshes run one at a time)';
COMMENT ON COLUMN lifecycle.transitions.source_id IS 'The tracked orders table (lifecycle.sources.id)';
COMMENT ON COLUMN lifecycle.transitions.customer IS 'The customer id, as text';
COMMENT ON COLUMN lifecycle.transitions.from_stage IS 'Stage before (prospect: not a customer yet)';
COMMENT ON COLUMN lifecycle.transitions.to_stage IS 'Stage after (prospect: every order deleted)';
COMMENT ON COLUMN lifecycle.transitions.effective IS 'Day the stage changed';
COMMENT ON COLUMN lifecycle.transitions.cause IS 'purchase, time (no purchase), correction (orders changed or resync) or initial (tracking began)';
COMMENT ON COLUMN lifecycle.transitions.logged_at IS 'When the transition was logged';

COMMENT ON VIEW lifecycle.stage_counts IS 'Customers per stage and tracked source, now';
COMMENT ON COLUMN lifecycle.stage_counts.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.stage_counts.stage IS 'Lifecycle stage';
COMMENT ON COLUMN lifecycle.stage_counts.customers IS 'Customers in the stage';
COMMENT ON COLUMN lifecycle.stage_counts.percent IS 'Share of the source''s customers, in percent';

COMMENT ON VIEW lifecycle.transitions_per_day IS 'Stage changes per day, from and to stage, and cause (initial ones left out)';
COMMENT ON COLUMN lifecycle.transitions_per_day.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.transitions_per_day.day IS 'Day the stages changed';
COMMENT ON COLUMN lifecycle.transitions_per_day.from_stage IS 'Stage before';
COMMENT ON COLUMN lifecycle.transitions_per_day.to_stage IS 'Stage after';
COMMENT ON COLUMN lifecycle.transitions_per_day.cause IS 'purchase, time or correction';
COMMENT ON COLUMN lifecycle.transitions_per_day.transitions IS 'Number of such changes that day';

COMMENT ON VIEW lifecycle.rfm_segment_counts IS 'Customers per RFM segment, with their average spend and purchases';
COMMENT ON COLUMN lifecycle.rfm_segment_counts.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.rfm_segment_counts.segment IS 'RFM segment';
COMMENT ON COLUMN lifecycle.rfm_segment_counts.customers IS 'Customers in the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_counts.average_spend IS 'Average total spend';
COMMENT ON COLUMN lifecycle.rfm_segment_counts.average_purchases IS 'Average number of purchase days';

COMMENT ON VIEW lifecycle.churn_per_month IS 'Churn per complete month since tracking began, by DESIGN.md''s definition, from the log';
COMMENT ON COLUMN lifecycle.churn_per_month.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.churn_per_month.month IS 'First day of the month';
COMMENT ON COLUMN lifecycle.churn_per_month.base IS 'Customers new, active, at_risk or inactive at the month''s start';
COMMENT ON COLUMN lifecycle.churn_per_month.churned IS 'Of the base, lapsed at the month''s end';
COMMENT ON COLUMN lifecycle.churn_per_month.reactivated IS 'Inactive or lapsed at the start who bought during the month';
COMMENT ON COLUMN lifecycle.churn_per_month.new IS 'Customers whose first purchase was in the month';
COMMENT ON COLUMN lifecycle.churn_per_month.churn_rate IS 'churned / base';

COMMENT ON VIEW lifecycle.rfm_segment_rules IS 'The RFM segment rules in force';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.segment IS 'Segment name';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.r_low IS 'Lowest recency score of the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.r_high IS 'Highest recency score of the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.f_low IS 'Lowest frequency score of the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.f_high IS 'Highest frequency score of the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.m_low IS 'Lowest monetary score of the segment';
COMMENT ON COLUMN lifecycle.rfm_segment_rules.m_high IS 'Highest monetary score of the segment';

COMMENT ON COLUMN lifecycle.worker_status.database IS 'This database';
COMMENT ON COLUMN lifecycle.worker_status.pid IS 'Process id of the worker''s last tick';
COMMENT ON COLUMN lifecycle.worker_status.running IS 'Whether that process is alive';
COMMENT ON COLUMN lifecycle.worker_status.state IS 'Its state in pg_stat_activity';
COMMENT ON COLUMN lifecycle.worker_status.started_at IS 'When the process started';
COMMENT ON COLUMN lifecycle.worker_status.ticks IS 'Ticks completed';
COMMENT ON COLUMN lifecycle.worker_status.errors IS 'Ticks failed';
COMMENT ON COLUMN lifecycle.worker_status.consecutive_errors IS 'Ticks failed in a row, now';
COMMENT ON COLUMN lifecycle.worker_status.last_tick_at IS 'When the last tick ended';
COMMENT ON COLUMN lifecycle.worker_status.last_tick_ms IS 'How long it took, in milliseconds';
COMMENT ON COLUMN lifecycle.worker_status.last_customers IS 'Customers it recomputed or stepped';
COMMENT ON COLUMN lifecycle.worker_status.last_transitions IS 'Transitions it logged';
COMMENT ON COLUMN lifecycle.worker_status.last_error IS 'Message of the last failed tick';
COMMENT ON COLUMN lifecycle.worker_status.last_error_at IS 'When it failed';
COMMENT ON COLUMN lifecycle.worker_status.queued IS
    'Changes waiting in the queue: orders inserted, customers updated or deleted';
COMMENT ON COLUMN lifecycle.worker_status.due IS 'Customers whose stage change is due';

COMMENT ON COLUMN lifecycle.actions_per_day.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.actions_per_day.day IS 'Day the actions were due, in the source''s time zone';
COMMENT ON COLUMN lifecycle.actions_per_day.channel IS 'Channel';
COMMENT ON COLUMN lifecycle.actions_per_day.kind IS 'message or sunset';
COMMENT ON COLUMN lifecycle.actions_per_day.actions IS 'Actions made due';
COMMENT ON COLUMN lifecycle.actions_per_day.pending IS 'Not yet reported (due or claimed)';
COMMENT ON COLUMN lifecycle.actions_per_day.sent IS 'Reported sent or further (delivered, opened, clicked, replied)';
COMMENT ON COLUMN lifecycle.actions_per_day.engaged IS 'Opened, clicked or replied';
COMMENT ON COLUMN lifecycle.actions_per_day.failed IS 'Failed or bounced';
COMMENT ON COLUMN lifecycle.actions_per_day.canceled IS 'Cancelled (a purchase, a click, an opt-out)';

COMMENT ON COLUMN lifecycle.suppressions.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.suppressions.channel IS 'Channel';
COMMENT ON COLUMN lifecycle.suppressions.via IS 'Where the opt-out came from (sunset: the engine)';
COMMENT ON COLUMN lifecycle.suppressions.customers IS 'Customers not to contact on the channel';

COMMENT ON COLUMN lifecycle.playbook_progress.playbook IS 'Playbook';
COMMENT ON COLUMN lifecycle.playbook_progress.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.playbook_progress.status IS 'running, held_out, finished, converted, engaged, opted_out or sunset';
COMMENT ON COLUMN lifecycle.playbook_progress.customers IS 'Enrolments in that state';
COMMENT ON COLUMN lifecycle.playbook_progress.reactivated IS 'Of those, with a purchase in the attribution window';

COMMENT ON COLUMN lifecycle.playbook_uplift.playbook IS 'Playbook';
COMMENT ON COLUMN lifecycle.playbook_uplift.month IS 'Month of enrolment (windows closed)';
COMMENT ON COLUMN lifecycle.playbook_uplift.treated IS 'Customers contacted (not held out)';
COMMENT ON COLUMN lifecycle.playbook_uplift.treated_reactivated IS 'Of those, with a purchase in the window';
COMMENT ON COLUMN lifecycle.playbook_uplift.treated_rate IS 'treated_reactivated / treated';
COMMENT ON COLUMN lifecycle.playbook_uplift.held_out IS 'Customers held out';
COMMENT ON COLUMN lifecycle.playbook_uplift.held_out_reactivated IS 'Of those, with a purchase in the window';
COMMENT ON COLUMN lifecycle.playbook_uplift.held_out_rate IS 'held_out_reactivated / held_out';
COMMENT ON COLUMN lifecycle.playbook_uplift.uplift IS 'treated_rate - held_out_rate';
COMMENT ON COLUMN lifecycle.playbook_uplift.uplift_low IS 'Lower end of the 95 % interval of the uplift';
COMMENT ON COLUMN lifecycle.playbook_uplift.uplift_high IS 'Upper end of the 95 % interval of the uplift';
COMMENT ON COLUMN lifecycle.playbook_uplift.revenue_per_treated IS 'Revenue in the window per treated customer';
COMMENT ON COLUMN lifecycle.playbook_uplift.revenue_per_held_out IS 'Revenue in the window per held-out customer';

COMMENT ON COLUMN lifecycle.lapsed_by_reason.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.lapsed_by_reason.reason IS 'Reason code recorded last for the customer, or unknown';
COMMENT ON COLUMN lifecycle.lapsed_by_reason.value_tier IS 'low, mid or high (RFM monetary score)';
COMMENT ON COLUMN lifecycle.lapsed_by_reason.customers IS 'Lapsed customers';
COMMENT ON COLUMN lifecycle.lapsed_by_reason.spend IS 'Their total spend';
COMMENT ON COLUMN lifecycle.lapsed_by_reason.average_expected_value IS 'Their average expected lifetime value';

COMMENT ON VIEW lifecycle.stage_history IS 'Each customer''s stages as intervals of days, from the log';
COMMENT ON COLUMN lifecycle.stage_history.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.stage_history.customer IS 'The customer id, as text';
COMMENT ON COLUMN lifecycle.stage_history.stage IS 'Lifecycle stage';
COMMENT ON COLUMN lifecycle.stage_history.since IS 'First day in the stage';
COMMENT ON COLUMN lifecycle.stage_history.until IS 'Day the next stage began (NULL: still in it)';
COMMENT ON COLUMN lifecycle.stage_history.cause IS 'Cause of the transition into the stage';
COMMENT ON COLUMN lifecycle.stage_history.transition_id IS 'That transition (lifecycle.transitions.id)';

COMMENT ON VIEW lifecycle.stage_counts_daily IS 'Customers per stage at the end of every day since tracking began';
COMMENT ON COLUMN lifecycle.stage_counts_daily.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.stage_counts_daily.day IS 'Day';
COMMENT ON COLUMN lifecycle.stage_counts_daily.stage IS 'Lifecycle stage';
COMMENT ON COLUMN lifecycle.stage_counts_daily.customers IS 'Customers in the stage at the end of the day';

COMMENT ON VIEW lifecycle.cohort_retention IS 'Customers by month of first purchase, and how many were not lapsed at the end of each later month';
COMMENT ON COLUMN lifecycle.cohort_retention.source IS 'Tracked orders table';
COMMENT ON COLUMN lifecycle.cohort_retention.cohort IS 'Month of the first purchase';
COMMENT ON COLUMN lifecycle.cohort_retention.customers IS 'Customers of the cohort';
COMMENT ON COLUMN lifecycle.cohort_retention.month IS 'A complete month since tracking began';
COMMENT ON COLUMN lifecycle.cohort_retention.months_since IS 'Months from the cohort''s month';
COMMENT ON COLUMN lifecycle.cohort_retention.retained IS 'Customers of the cohort in any stage but lapsed at the month''s end';
COMMENT ON COLUMN lifecycle.cohort_retention.retention IS 'retained / customers';

COMMENT ON FUNCTION lifecycle.stage_flow(regclass, date, date) IS
    'Customers per (stage at the end of from_day, stage at the end of to_day), from the log';
