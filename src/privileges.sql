------------------------------------------------------------------------------------
-- Who may do what (docs/security.md). Last in the install script: it covers every
-- object above. Five roles, created here unless they exist (roles belong to the whole
-- cluster: DROP EXTENSION leaves them):
--   lifecycle_reader   reads the stage table, the log, the sources, the models, the views
--   lifecycle_tracker  tracks, untracks and resyncs tables it owns (and reads)
--   lifecycle_editor   edits policies, segment rules and models (and reads)
--   lifecycle_sender   the application that sends: claims actions and reports outcomes,
--                      records consent, contact details and churn reasons (and reads)
--   lifecycle_worker   the background worker's login: runs the engine, nothing more
-- Everyone (PUBLIC) may use the schema's pure functions: stages, RFM, churn, the models'
-- fits and scores, which compute from their arguments with the caller's own rights.
------------------------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lifecycle_reader') THEN
        CREATE ROLE lifecycle_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lifecycle_tracker') THEN
        CREATE ROLE lifecycle_tracker NOLOGIN IN ROLE lifecycle_reader;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lifecycle_editor') THEN
        CREATE ROLE lifecycle_editor NOLOGIN IN ROLE lifecycle_reader;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lifecycle_sender') THEN
        CREATE ROLE lifecycle_sender NOLOGIN IN ROLE lifecycle_reader;
    END IF;
    -- LOGIN because a background worker of PostgreSQL 15 can connect only as a role that
    -- may log in. It has no password: a client can log in as it only where pg_hba.conf
    -- trusts everyone already.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lifecycle_worker') THEN
        CREATE ROLE lifecycle_worker LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE IN ROLE lifecycle_reader;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA lifecycle TO PUBLIC;

-- Functions: none for PUBLIC, then the pure ones back.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA lifecycle FROM PUBLIC;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid FROM pg_proc p
        WHERE p.pronamespace = 'lifecycle'::regnamespace
          AND p.proname NOT IN ('track', 'untrack', 'resync', 'refresh', 'fit_model',
                                'claim_actions', 'report_action', 'opt_in', 'opt_out',
                                'set_contact', 'record_churn_reason', 'stage_flow')
          AND (p.proname NOT LIKE '\_%'
               -- internal helpers that compute only from their arguments, which public
               -- functions call with the caller's rights
               OR p.proname IN ('_load', '_unit_days', '_holdout_purchases', '_rfm_of',
                                '_wake_on', '_churn_risk', '_expected_value', '_allowed_type',
                                '_risk_features', '_calibration_holdout', '_auc',
                                -- run by lifecycle.models' trigger as the editor writing it
                                '_model_problem',
                                -- the checks the playbook tables' triggers run as the
                                -- editor writing them
                                '_bad_argument', '_check_channel', '_check_stage',
                                '_check_value_tier', '_valid_time_zone', '_check_code',
                                '_zone_name', '_usable_zone'))
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION lifecycle.track(regclass, name, name, name, text, name),
                          lifecycle.untrack(regclass), lifecycle.resync(regclass)
    TO lifecycle_tracker;
GRANT EXECUTE ON FUNCTION lifecycle.fit_model(text, regclass, name, name, name, date, text, boolean, text, date, integer, text)
    TO lifecycle_editor;
GRANT EXECUTE ON FUNCTION lifecycle.claim_actions(text, integer, interval, text[]),
                          lifecycle.report_action(bigint, text, text, interval, text),
                          lifecycle.opt_in(regclass, text, text, text),
                          lifecycle.opt_out(regclass, text, text, text),
                          lifecycle.set_contact(regclass, text, text, date),
                          lifecycle.record_churn_reason(regclass, text, text, text, text)
    TO lifecycle_sender;
-- The worker runs the engine's functions with its own rights; it reads sources only
-- through _source_histories, as each table's owner.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA lifecycle TO lifecycle_worker;
-- (Among them _forget_gone_source, SECURITY DEFINER: no one else may execute it.)

-- Tables and views.
GRANT SELECT ON lifecycle.policies, lifecycle.rfm_default_segments, lifecycle.rfm_segments,
                lifecycle.rfm_segment_rules
    TO PUBLIC;
GRANT SELECT ON lifecycle.customer_stage, lifecycle.transitions, lifecycle.sources,
                lifecycle.models, lifecycle.stage_counts, lifecycle.transitions_per_day,
                lifecycle.rfm_segment_counts, lifecycle.churn_per_month,
                lifecycle.worker_status, lifecycle.source_status,
                lifecycle.channels, lifecycle.playbooks, lifecycle.playbook_steps,
                lifecycle.contact_policy, lifecycle.churn_reasons, lifecycle.enrollments,
                lifecycle.actions, lifecycle.action_outcomes, lifecycle.playbook_log,
                lifecycle.consent, lifecycle.consent_log, lifecycle.contacts,
                lifecycle.customer_reasons, lifecycle.actions_per_day, lifecycle.suppressions,
                lifecycle.playbook_progress, lifecycle.playbook_uplift, lifecycle.lapsed_by_reason,
                lifecycle.stage_history, lifecycle.stage_counts_daily, lifecycle.cohort_retention,
                lifecycle.rejected_rows
    TO lifecycle_reader;
GRANT EXECUTE ON FUNCTION lifecycle.stage_flow(regclass, date, date) TO lifecycle_reader;
GRANT INSERT, UPDATE, DELETE ON lifecycle.channels, lifecycle.playbooks,
                                lifecycle.playbook_steps, lifecycle.contact_policy,
                                lifecycle.churn_reasons
    TO lifecycle_editor;
GRANT INSERT, UPDATE, DELETE ON lifecycle.policies, lifecycle.rfm_segments, lifecycle.models
    TO lifecycle_editor;
-- fit_model(make_current) starts a rescoring pass of every source.
GRANT UPDATE (rfm_scored_at, rescoring, rescore_from) ON lifecycle.sources TO lifecycle_editor;
GRANT SELECT, INSERT, UPDATE, DELETE ON lifecycle.sources, lifecycle.change_queue,
                                        lifecycle.customer_stage, lifecycle.transitions,
                                        lifecycle.worker_state, lifecycle.models,
                                        lifecycle.enrollments, lifecycle.actions,
                                        lifecycle.playbook_log, lifecycle.consent,
                                        lifecycle.consent_log, lifecycle.playbook_dates,
                                        lifecycle.rejected_rows
    TO lifecycle_worker;
GRANT UPDATE ON lifecycle.refresh_lock TO lifecycle_worker;  -- to LOCK it
GRANT USAGE ON ALL SEQUENCES IN SCHEMA lifecycle TO lifecycle_worker;
