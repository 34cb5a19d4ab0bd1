------------------------------------------------------------------------------------
-- Models kept, how well they predict, and what the stage engine takes from them
------------------------------------------------------------------------------------

-- Fitted models by name. Each row keeps the three purchase models fitted on the same
-- data (BG/NBD, MBG/NBD, Pareto/NBD), Gamma-Gamma for spend, and which purchase model
-- the stage engine uses (`kind`) and why (`chosen_by`). The current one (at most one)
-- fills churn_risk and expected_value in the stage table. Kept by pg_dump.
CREATE TABLE lifecycle.models (
    name            text PRIMARY KEY,
    fitted_at       timestamptz NOT NULL DEFAULT now(),
    source          text NOT NULL,
    customer_column name NOT NULL,
    time_column     name NOT NULL,
    amount_column   name NOT NULL,
    calibration_end date NOT NULL,
    unit            text NOT NULL CHECK (unit IN ('day', 'week')),
    customers       bigint NOT NULL,
    kind            text NOT NULL DEFAULT 'bgnbd'
                    CHECK (kind IN ('bgnbd', 'mbgnbd', 'pareto_nbd')),
    chosen_by       text,            -- 'user', 'log-likelihood (BIC)', 'holdout AUC …'
    bgnbd           lifecycle.bgnbd_model NOT NULL,
    mbgnbd          lifecycle.mbgnbd_model,
    pareto_nbd      lifecycle.pareto_nbd_model,
    gamma_gamma     lifecycle.gamma_gamma_model,   -- NULL with fewer than two repeat buyers
    -- churn risk is P(no purchase within this many days); NULL: the source policy's
    -- lapsed window (lifecycle.policies.lapsed_days)
    horizon_days    integer CHECK (horizon_days > 0),
    -- expected_value: lifetime value over value_horizon_days, in value_steps steps, each
    -- discounted by discount_rate
    value_horizon_days integer NOT NULL DEFAULT 365 CHECK (value_horizon_days > 0),
    value_steps     integer NOT NULL DEFAULT 12 CHECK (value_steps > 0),
    discount_rate   double precision NOT NULL DEFAULT 0.01
                    CHECK (discount_rate >= 0 AND discount_rate < 'Infinity'),
    -- a churn risk calibrated on the holdout (fit_calibrated_risk), kept only when it
    -- ranked held-out customers better than the recency rule; `risk` says which risk the
    -- engine writes: 'model' (P(no purchase) of `kind`) or 'calibrated'
    calibrated      lifecycle.logistic_model,
    calibrated_horizon_days integer,     -- what it predicts: no purchase within this
    calibrated_auc  double precision,    -- its AUC on the held-out customers
    recency_auc     double precision,    -- the recency rule's on the same customers
    risk            text NOT NULL DEFAULT 'model' CHECK (risk IN ('model', 'calibrated')),
    is_current      boolean NOT NULL DEFAULT false,
    -- Set by the stage engine when the model failed to score its customers (or was found
    -- with parameters the checks below refuse, stored before them): the engine then
    -- scores without it (churn_risk and expected_value NULL) until the model changes.
    -- (0.3.0; last, as ALTER TABLE ADD COLUMN puts them.)
    scoring_error    text,
    scoring_error_at timestamptz,
    CONSTRAINT risk_fitted CHECK (risk = 'model' OR calibrated IS NOT NULL),
    CONSTRAINT kind_fitted CHECK (kind = 'bgnbd' OR (kind = 'mbgnbd' AND mbgnbd IS NOT NULL)
                                  OR (kind = 'pareto_nbd' AND pareto_nbd IS NOT NULL))
);
CREATE UNIQUE INDEX models_one_current ON lifecycle.models (is_current) WHERE is_current;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.models', '');
COMMENT ON TABLE lifecycle.models IS
    'Fitted purchase models (BG/NBD, MBG/NBD, Pareto/NBD) and Gamma-Gamma (lifecycle.fit_model)';

-- A new or changed current model (a fit, a refit, an edited horizon or value setting)
-- makes the stage engine rescore every customer from its next refresh on.
CREATE FUNCTION lifecycle._current_model_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE lifecycle.sources SET rfm_scored_at = NULL, rescoring = false, rescore_from = NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER current_model_changed AFTER INSERT OR UPDATE ON lifecycle.models
    FOR EACH ROW WHEN (NEW.is_current) EXECUTE FUNCTION lifecycle._current_model_changed();

-- What is wrong with model `m`'s parameters for the engine's scoring, or NULL: every
-- parameter of its purchase models and of Gamma-Gamma a finite number > 0 (their shapes
-- and scales), the calibrated risk's coefficients finite, one per feature of
-- _risk_features and the intercept, its horizon a positive number of days. The table's
-- trigger refuses such a row; refresh() sets aside a current one stored before the check.
CREATE FUNCTION lifecycle._model_problem(m lifecycle.models) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    n integer;
BEGIN
    FOR p IN
        SELECT x.col, x.param, x.v
        FROM (VALUES (1, 'bgnbd', 'r', (m.bgnbd).r, true), (2, 'bgnbd', 'alpha', (m.bgnbd).alpha, true),
                     (3, 'bgnbd', 'a', (m.bgnbd).a, true), (4, 'bgnbd', 'b', (m.bgnbd).b, true),
                     (5, 'mbgnbd', 'r', (m.mbgnbd).r, NOT m.mbgnbd IS NULL),
                     (6, 'mbgnbd', 'alpha', (m.mbgnbd).alpha, NOT m.mbgnbd IS NULL),
                     (7, 'mbgnbd', 'a', (m.mbgnbd).a, NOT m.mbgnbd IS NULL),
                     (8, 'mbgnbd', 'b', (m.mbgnbd).b, NOT m.mbgnbd IS NULL),
                     (9, 'pareto_nbd', 'r', (m.pareto_nbd).r, NOT m.pareto_nbd IS NULL),
                     (10, 'pareto_nbd', 'alpha', (m.pareto_nbd).alpha, NOT m.pareto_nbd IS NULL),
                     (11, 'pareto_nbd', 's', (m.pareto_nbd).s, NOT m.pareto_nbd IS NULL),
                     (12, 'pareto_nbd', 'beta', (m.pareto_nbd).beta, NOT m.pareto_nbd IS NULL),
                     (13, 'gamma_gamma', 'p', (m.gamma_gamma).p, NOT m.gamma_gamma IS NULL),
                     (14, 'gamma_gamma', 'q', (m.gamma_gamma).q, NOT m.gamma_gamma IS NULL),
                     (15, 'gamma_gamma', 'gamma', (m.gamma_gamma).gamma, NOT m.gamma_gamma IS NULL))
             AS x (i, col, param, v, present)
        WHERE x.present
          AND NOT coalesce(x.v > 0 AND x.v < 'Infinity'::float8 AND x.v <> 'NaN'::float8, false)
        ORDER BY x.i LIMIT 1
    LOOP
        RETURN format('column "%s" of lifecycle.models: parameter "%s" must be a finite number > 0, got %s',
                      p.col, p.param, coalesce(p.v::text, 'NULL'));
    END LOOP;
    IF NOT m.calibrated IS NULL THEN
        n := cardinality((m.calibrated).coefficients);
        IF array_ndims((m.calibrated).coefficients) IS DISTINCT FROM 1 OR n <> 7 THEN
            RETURN format('column "calibrated" of lifecycle.models: "coefficients" must be 7 numbers (the intercept and one per risk feature), got %s',
                          coalesce((m.calibrated).coefficients::text, 'NULL'));
        END IF;
        IF EXISTS (SELECT FROM unnest((m.calibrated).coefficients) c
                   WHERE NOT coalesce(c > '-Infinity'::float8 AND c < 'Infinity'::float8
                                      AND c <> 'NaN'::float8, false)) THEN
            RETURN format('column "calibrated" of lifecycle.models: "coefficients" must be finite numbers, got %s',
                          (m.calibrated).coefficients);
        END IF;
        IF NOT coalesce(m.calibrated_horizon_days > 0, false) THEN
            RETURN format('column "calibrated_horizon_days" of lifecycle.models must be > 0 with a calibrated risk, got %s',
                          coalesce(m.calibrated_horizon_days::text, 'NULL'));
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- Refuses a model whose parameters the engine could not score with (_model_problem), as
-- it is stored; a model changed in what it scores with is scored again (its
-- scoring_error cleared). Rows whose scoring columns did not change pass as they are:
-- the engine records a scoring error on the row it set aside.
CREATE FUNCTION lifecycle._check_model() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    problem text;
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.unit, NEW.kind, NEW.bgnbd, NEW.mbgnbd, NEW.pareto_nbd, NEW.gamma_gamma,
            NEW.horizon_days, NEW.value_horizon_days, NEW.value_steps, NEW.discount_rate,
            NEW.calibrated, NEW.calibrated_horizon_days, NEW.risk)
           IS NOT DISTINCT FROM
           (OLD.unit, OLD.kind, OLD.bgnbd, OLD.mbgnbd, OLD.pareto_nbd, OLD.gamma_gamma,
            OLD.horizon_days, OLD.value_horizon_days, OLD.value_steps, OLD.discount_rate,
            OLD.calibrated, OLD.calibrated_horizon_days, OLD.risk) THEN
        RETURN NEW;
    END IF;
    problem := lifecycle._model_problem(NEW);
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '%', problem USING ERRCODE = '22023';
    END IF;
    NEW.scoring_error := NULL;
    NEW.scoring_error_at := NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER check_model BEFORE INSERT OR UPDATE ON lifecycle.models
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_model();

-- The current model the engine scores with: none while the current one is set aside.
-- (Read once per statement by the functions that score.)
CREATE FUNCTION lifecycle._scoring_model() RETURNS lifecycle.models
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT k FROM lifecycle.models k WHERE k.is_current AND k.scoring_error IS NULL);

-- Sets the current model aside if its parameters are ones the checks refuse (a row stored
-- before them, or with the table's triggers off). refresh() calls it first, once a tick.
CREATE FUNCTION lifecycle._check_current_model() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k lifecycle.models := lifecycle._scoring_model();
    problem text;
BEGIN
    IF k.name IS NOT NULL THEN
        problem := lifecycle._model_problem(k);
        IF problem IS NOT NULL THEN
            PERFORM lifecycle._set_model_aside(k.name, problem);
            RAISE WARNING 'lifecycle: the current model "%" is set aside: %', k.name, problem
                USING DETAIL = 'Customers are scored without it (churn_risk and expected_value NULL) until the model changes; see lifecycle.models.scoring_error.',
                      HINT = 'Fit it again (lifecycle.fit_model) or correct its parameters.';
        END IF;
    END IF;
END
$$;

-- Sets the current model aside (named `model_name`, with what went wrong): the engine
-- scores without it until it changes (the table's trigger then clears scoring_error).
-- Its trigger current_model_changed starts a rescoring pass of every source, which
-- takes away the scores it gave. Called by refresh(), which says so.
CREATE FUNCTION lifecycle._set_model_aside(model_name text, message text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE lifecycle.models SET scoring_error = message, scoring_error_at = now()
    WHERE name = model_name;
END
$$;

-- Fits the models on a source's orders up to calibration_end and keeps them as `name`
-- (replacing a model of that name); with make_current the stage engine uses it from its
-- next refresh. `model` picks the purchase model the engine uses: 'bgnbd', 'mbgnbd',
-- 'pareto_nbd', or 'auto': the best churn AUC on the holdout (calibration_end,
-- holdout_end] when holdout_end is given (lifecycle.compare_models), else the highest
-- log-likelihood (the same as the lowest BIC: every model has four parameters).
CREATE FUNCTION lifecycle.fit_model(name text, source regclass, customer_column name,
                                    time_column name, amount_column name,
                                    calibration_end date DEFAULT lifecycle.engine_date(),
                                    unit text DEFAULT 'week', make_current boolean DEFAULT true,
                                    model text DEFAULT 'auto', holdout_end date DEFAULT NULL,
                                    horizon_days integer DEFAULT NULL, risk text DEFAULT 'model')
RETURNS lifecycle.models
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m lifecycle.models;
BEGIN
    PERFORM lifecycle._unit_days(unit);
    IF model NOT IN ('auto', 'bgnbd', 'mbgnbd', 'pareto_nbd') THEN
        RAISE EXCEPTION 'argument "model" must be ''auto'', ''bgnbd'', ''mbgnbd'' or ''pareto_nbd'', got %',
            quote_literal(model) USING ERRCODE = '22023';
    END IF;
    IF holdout_end <= calibration_end THEN
        RAISE EXCEPTION 'argument "holdout_end" (%) must be after "calibration_end" (%)',
            holdout_end, calibration_end USING ERRCODE = '22023';
    END IF;
    IF risk NOT IN ('model', 'calibrated') THEN
        RAISE EXCEPTION 'argument "risk" must be ''model'' or ''calibrated'', got %',
            quote_literal(risk) USING ERRCODE = '22023';
    END IF;
    IF risk = 'calibrated' AND holdout_end IS NULL THEN
        RAISE EXCEPTION 'argument "risk": a calibrated risk needs "holdout_end"'
            USING ERRCODE = '22023';
    END IF;
    IF holdout_end IS NOT NULL THEN
        SELECT c.model, c.calibrated_auc, c.recency_auc, holdout_end - calibration_end
        INTO m.calibrated, m.calibrated_auc, m.recency_auc, m.calibrated_horizon_days
        FROM lifecycle.fit_calibrated_risk(source, customer_column, time_column, amount_column,
                                           calibration_end, holdout_end, unit) AS c;
        IF NOT m.calibrated_auc > m.recency_auc THEN
            m.calibrated := NULL;   -- kept only when it beats the recency rule
        END IF;
    END IF;
    m.risk := risk;
    IF risk = 'calibrated' AND m.calibrated IS NULL THEN
        RAISE EXCEPTION 'argument "risk": the calibrated risk did not beat the recency rule on held-out customers (AUC % against %)',
            round(m.calibrated_auc::numeric, 4), round(m.recency_auc::numeric, 4)
            USING ERRCODE = '22023', HINT = 'Use risk => ''model''.';
    END IF;
    SELECT lifecycle.bgnbd_fit(s.frequency, s.recency, s.t),
           lifecycle.mbgnbd_fit(s.frequency, s.recency, s.t),
           lifecycle.pareto_nbd_fit(s.frequency, s.recency, s.t), count(*),
           CASE WHEN count(*) FILTER (WHERE s.frequency > 0) >= 2
                THEN lifecycle.gamma_gamma_fit(s.frequency, s.monetary_value) END
    INTO m.bgnbd, m.mbgnbd, m.pareto_nbd, m.customers, m.gamma_gamma
    FROM lifecycle.model_summary(source, customer_column, time_column, amount_column,
                                 calibration_end, unit) AS s;
    IF model <> 'auto' THEN
        m.kind := model;
        m.chosen_by := 'user';
    ELSIF holdout_end IS NOT NULL THEN
        SELECT c.model, format('holdout AUC %s (%s to %s)', round(c.churn_auc::numeric, 4),
                               calibration_end, holdout_end)
        INTO m.kind, m.chosen_by
        FROM lifecycle.compare_models(source, customer_column, time_column, amount_column,
                                      calibration_end, holdout_end, unit) AS c
        WHERE c.model <> 'recency' ORDER BY c.churn_auc DESC, c.model LIMIT 1;
    ELSE
        SELECT k.kind, format('log-likelihood %s (lowest BIC)', round(k.ll::numeric, 2))
        INTO m.kind, m.chosen_by
        FROM (VALUES ('bgnbd', (m.bgnbd).log_likelihood), ('mbgnbd', (m.mbgnbd).log_likelihood),
                     ('pareto_nbd', (m.pareto_nbd).log_likelihood)) AS k (kind, ll)
        WHERE k.ll IS NOT NULL ORDER BY k.ll DESC, k.kind LIMIT 1;
    END IF;
    IF make_current THEN
        UPDATE lifecycle.models SET is_current = false WHERE is_current;
    END IF;
    INSERT INTO lifecycle.models AS k (name, source, customer_column, time_column, amount_column,
                                       calibration_end, unit, customers, kind, chosen_by, bgnbd,
                                       mbgnbd, pareto_nbd, gamma_gamma, horizon_days, calibrated,
                                       calibrated_horizon_days, calibrated_auc, recency_auc,
                                       risk, is_current)
    VALUES (fit_model.name, source::text, customer_column, time_column, amount_column,
            calibration_end, unit, m.customers, m.kind, m.chosen_by, m.bgnbd, m.mbgnbd,
            m.pareto_nbd, m.gamma_gamma, horizon_days, m.calibrated, m.calibrated_horizon_days,
            m.calibrated_auc, m.recency_auc, m.risk, make_current)
    ON CONFLICT ON CONSTRAINT models_pkey DO UPDATE SET
        fitted_at = now(), source = excluded.source, customer_column = excluded.customer_column,
        time_column = excluded.time_column, amount_column = excluded.amount_column,
        calibration_end = excluded.calibration_end, unit = excluded.unit,
        customers = excluded.customers, kind = excluded.kind, chosen_by = excluded.chosen_by,
        bgnbd = excluded.bgnbd, mbgnbd = excluded.mbgnbd, pareto_nbd = excluded.pareto_nbd,
        gamma_gamma = excluded.gamma_gamma, horizon_days = excluded.horizon_days,
        calibrated = excluded.calibrated, calibrated_horizon_days = excluded.calibrated_horizon_days,
        calibrated_auc = excluded.calibrated_auc, recency_auc = excluded.recency_auc,
        risk = excluded.risk, is_current = excluded.is_current
    RETURNING * INTO m;
    RETURN m;
END
$$;

-- The area under the ROC curve of `risk` for `churned` (element by element): the
-- Mann-Whitney statistic, ties counted half; 0.5 is chance, 1 perfect, NULL without
-- both outcomes. Every holdout comparison scores with this one function.
CREATE FUNCTION lifecycle._auc(risk double precision[], churned boolean[])
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH ranked AS (
        SELECT u.c, rank() OVER (ORDER BY u.r) AS low, count(*) OVER (PARTITION BY u.r) AS ties
        FROM unnest(risk, churned) AS u (r, c)
    )
    SELECT ((sum(low + (ties - 1) / 2.0) FILTER (WHERE c)
             - count(*) FILTER (WHERE c) * (count(*) FILTER (WHERE c) + 1) / 2.0)
            / nullif(count(*) FILTER (WHERE c) * count(*) FILTER (WHERE NOT c), 0))::double precision
    FROM ranked;
END;

-- Each customer with an order up to calibration_end: the models' summary at
-- calibration_end (in `unit`) and their purchase days in (calibration_end, holdout_end].
CREATE FUNCTION lifecycle._calibration_holdout(source regclass, customer_column name,
                                               time_column name, amount_column name,
                                               calibration_end date, holdout_end date,
                                               unit text)
RETURNS TABLE (customer text, frequency double precision, recency double precision,
               t double precision, actual bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF holdout_end <= calibration_end THEN
        RAISE EXCEPTION 'argument "holdout_end" (%) must be after "calibration_end" (%)',
            holdout_end, calibration_end USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT s.customer, s.frequency, s.recency, s.t, h.actual
    FROM lifecycle.model_summary(source, customer_column, time_column, amount_column,
                                 calibration_end, unit) AS s
    JOIN lifecycle._holdout_purchases(source, customer_column, time_column, calibration_end,
                                      holdout_end) AS h USING (customer);
END
$$;

-- The holdout per calibration frequency (0 .. 6, then 7+ as 7, the paper's Figure 3) for
-- the three purchase models, each fitted on the calibration period: customers, the mean
-- actual purchase days in the holdout and each model's mean prediction.
CREATE FUNCTION lifecycle.compare_models_by_frequency(source regclass, customer_column name,
                                                      time_column name, amount_column name,
                                                      calibration_end date, holdout_end date,
                                                      unit text DEFAULT 'week')
RETURNS TABLE (frequency integer, customers bigint, actual double precision,
               bgnbd double precision, mbgnbd double precision, pareto_nbd double precision)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h double precision := (holdout_end - calibration_end) / lifecycle._unit_days(unit);
BEGIN
    RETURN QUERY
    WITH customers AS MATERIALIZED (
        SELECT s.frequency AS x, s.recency, s.t, s.actual
        FROM lifecycle._calibration_holdout(source, customer_column, time_column, amount_column,
                                                calibration_end, holdout_end, unit) AS s
    ), fits AS MATERIALIZED (
        SELECT lifecycle.bgnbd_fit(c.x, c.recency, c.t) AS bg,
               lifecycle.mbgnbd_fit(c.x, c.recency, c.t) AS mbg,
               lifecycle.pareto_nbd_fit(c.x, c.recency, c.t) AS pn
        FROM customers c
    )
    SELECT least(c.x, 7)::integer, count(*), avg(c.actual)::double precision,
           avg(lifecycle.expected_purchases(f.bg, h, c.x, c.recency, c.t)),
           avg(lifecycle.expected_purchases(f.mbg, h, c.x, c.recency, c.t)),
           avg(lifecycle.expected_purchases(f.pn, h, c.x, c.recency, c.t))
    FROM customers c, fits f
    GROUP BY 1 ORDER BY 1;
END
$$;

-- What the calibrated risk weighs, per customer (times in the model unit, h the horizon):
-- time since the last purchase, log(1 + repeat purchases), age, and each purchase
-- model's P(no purchase within h).
CREATE FUNCTION lifecycle._risk_features(bg lifecycle.bgnbd_model, mbg lifecycle.mbgnbd_model,
                                         pn lifecycle.pareto_nbd_model, h double precision,
                                         frequency double precision, recency double precision,
                                         t double precision)
RETURNS double precision[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY[t - recency, ln(1 + frequency), t,
             lifecycle.probability_no_purchase(bg, h, frequency, recency, t),
             lifecycle.probability_no_purchase(mbg, h, frequency, recency, t),
             lifecycle.probability_no_purchase(pn, h, frequency, recency, t)];

-- A churn risk calibrated on the user's own history: a logistic regression of "no
-- purchase in (calibration_end, holdout_end]" on _risk_features (the three models fitted
-- on the calibration period, h = the holdout's length), fitted on half of the customers
-- (by a hash of their id) and judged on the other half, beside the recency rule on that
-- same half. Returns the model and both AUCs.
CREATE FUNCTION lifecycle.fit_calibrated_risk(source regclass, customer_column name,
                                              time_column name, amount_column name,
                                              calibration_end date, holdout_end date,
                                              unit text DEFAULT 'week')
RETURNS TABLE (model lifecycle.logistic_model, calibrated_auc double precision,
               recency_auc double precision, fitted_customers bigint,
               held_out_customers bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h double precision := (holdout_end - calibration_end) / lifecycle._unit_days(unit);
BEGIN
    RETURN QUERY
    WITH customers AS MATERIALIZED (
        SELECT s.*, s.actual = 0 AS churned, (hashtext(s.customer) & 1) = 1 AS held_out
        FROM lifecycle._calibration_holdout(source, customer_column, time_column, amount_column,
                                                calibration_end, holdout_end, unit) AS s
    ), fits AS MATERIALIZED (
        SELECT lifecycle.bgnbd_fit(c.frequency, c.recency, c.t) AS bg,
               lifecycle.mbgnbd_fit(c.frequency, c.recency, c.t) AS mbg,
               lifecycle.pareto_nbd_fit(c.frequency, c.recency, c.t) AS pn
        FROM customers c
    ), featured AS MATERIALIZED (
        SELECT c.*, lifecycle._risk_features(f.bg, f.mbg, f.pn, h, c.frequency, c.recency, c.t) AS x
        FROM customers c, fits f
    ), fitted AS MATERIALIZED (
        SELECT lifecycle.logistic_fit(fe.churned, fe.x, 0.01) AS lm, count(*) AS n
        FROM featured fe WHERE NOT fe.held_out
    ), scored AS (
        SELECT k.score, fe.churned, k.risk
        FROM featured fe, fitted fi, LATERAL (VALUES
            ('calibrated', lifecycle.logistic_score(fi.lm, fe.x)),
            ('recency', fe.t - fe.recency)) AS k (score, risk)
        WHERE fe.held_out
    ), aucs AS (
        SELECT sc.score, lifecycle._auc(array_agg(sc.risk), array_agg(sc.churned)) AS auc,
               count(*) AS n
        FROM scored sc GROUP BY sc.score
    )
    SELECT fi.lm, (SELECT a.auc FROM aucs a WHERE a.score = 'calibrated'),
           (SELECT a.auc FROM aucs a WHERE a.score = 'recency'), fi.n,
           (SELECT a.n FROM aucs a WHERE a.score = 'recency')
    FROM fitted fi;
END
$$;

-- The three purchase models side by side on a calibration/holdout split of a source,
-- each fitted on the calibration period: log-likelihood, BIC, predicted and actual
-- purchase days in the holdout, and the AUC of its churn risk — P(no purchase within the
-- holdout's length) — for "no purchase in the holdout". Beside them, 'recency': the
-- plain rule "time since the last purchase" on the same customers (its AUC only).
CREATE FUNCTION lifecycle.compare_models(source regclass, customer_column name,
                                         time_column name, amount_column name,
                                         calibration_end date, holdout_end date,
                                         unit text DEFAULT 'week')
RETURNS TABLE (model text, log_likelihood double precision, bic double precision,
               predicted_purchases double precision, actual_purchases bigint,
               churn_auc double precision)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h double precision := (holdout_end - calibration_end) / lifecycle._unit_days(unit);
BEGIN
    RETURN QUERY
    WITH customers AS MATERIALIZED (
        SELECT s.frequency, s.recency, s.t, s.actual
        FROM lifecycle._calibration_holdout(source, customer_column, time_column, amount_column,
                                                calibration_end, holdout_end, unit) AS s
    ), fits AS MATERIALIZED (
        SELECT lifecycle.bgnbd_fit(c.frequency, c.recency, c.t) AS bg,
               lifecycle.mbgnbd_fit(c.frequency, c.recency, c.t) AS mbg,
               lifecycle.pareto_nbd_fit(c.frequency, c.recency, c.t) AS pn, count(*) AS n
        FROM customers c
    ), scored AS (
        SELECT k.model, c.actual, c.actual = 0 AS churned, k.risk, k.expected
        FROM customers c, fits f, LATERAL (VALUES
            ('bgnbd', lifecycle.probability_no_purchase(f.bg, h, c.frequency, c.recency, c.t),
                      lifecycle.expected_purchases(f.bg, h, c.frequency, c.recency, c.t)),
            ('mbgnbd', lifecycle.probability_no_purchase(f.mbg, h, c.frequency, c.recency, c.t),
                       lifecycle.expected_purchases(f.mbg, h, c.frequency, c.recency, c.t)),
            ('pareto_nbd', lifecycle.probability_no_purchase(f.pn, h, c.frequency, c.recency, c.t),
                           lifecycle.expected_purchases(f.pn, h, c.frequency, c.recency, c.t)),
            ('recency', c.t - c.recency, NULL::double precision)) AS k (model, risk, expected)
    ), per_model AS (
        SELECT sc.model, lifecycle._auc(array_agg(sc.risk), array_agg(sc.churned)) AS auc,
               sum(sc.expected) AS predicted, sum(sc.actual) AS actual
        FROM scored sc GROUP BY sc.model
    )
    SELECT p.model, l.ll, 4 * ln(f.n) - 2 * l.ll, p.predicted, p.actual::bigint, p.auc
    FROM per_model p CROSS JOIN fits f
    CROSS JOIN LATERAL (SELECT CASE p.model WHEN 'bgnbd' THEN (f.bg).log_likelihood
                                            WHEN 'mbgnbd' THEN (f.mbg).log_likelihood
                                            WHEN 'pareto_nbd' THEN (f.pn).log_likelihood END AS ll) AS l
    ORDER BY array_position(ARRAY['bgnbd', 'mbgnbd', 'pareto_nbd', 'recency'], p.model);
END
$$;

-- Calibration/holdout check of a model fitted on a source up to calibration_end: per
-- number of repeat purchases in calibration (0 .. 6, then 7+ as 7, as in the paper's
-- Figure 3), the customers, the mean predicted and the mean actual repeat purchase days
-- in (calibration_end, holdout_end].
CREATE FUNCTION lifecycle.model_accuracy(model lifecycle.bgnbd_model, source regclass,
                                         customer_column name, time_column name,
                                         amount_column name, calibration_end date,
                                         holdout_end date, unit text DEFAULT 'week')
RETURNS TABLE (frequency integer, customers bigint, predicted double precision,
               actual double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT least(s.frequency, 7)::integer,
           count(*),
           avg(lifecycle.expected_purchases(model, (holdout_end - calibration_end) / lifecycle._unit_days(unit),
                                            s.frequency, s.recency, s.t)),
           avg(h.actual)::double precision
    FROM lifecycle.model_summary(source, customer_column, time_column, amount_column,
                                 calibration_end, unit) AS s
    JOIN lifecycle._holdout_purchases(source, customer_column, time_column, calibration_end,
                                      holdout_end) AS h USING (customer)
    GROUP BY 1 ORDER BY 1;
END
$$;

-- Each customer with an order up to calibration_end and their purchase days in
-- (calibration_end, holdout_end].
CREATE FUNCTION lifecycle._holdout_purchases(source regclass, customer_column name,
                                             time_column name, calibration_end date,
                                             holdout_end date)
RETURNS TABLE (customer text, actual bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT %1$I::text, count(DISTINCT %2$I::date) FILTER (WHERE %2$I::date > $1)
         FROM %3$s WHERE %2$I::date <= $2 AND %1$I IS NOT NULL
         GROUP BY 1 HAVING min(%2$I::date) <= $1',
        customer_column, time_column, source)
    USING calibration_end, holdout_end;
END
$$;

-- How well a model's score at calibration_end separates the customers who did not buy in
-- the holdout from those who did: the area under the ROC curve (the Mann-Whitney
-- statistic, ties counted half; 0.5 is chance, 1 perfect). `score` is 'churn_risk'
-- (P(no purchase within the holdout's length): the stage engine's churn risk),
-- 'expected_purchases' (fewer expected purchases in the holdout = more at risk) or
-- 'p_alive' (1 - P(alive); BG/NBD gives a customer without a repeat purchase P(alive) = 1,
-- so this ranks one-time buyers as safe).
CREATE FUNCTION lifecycle.churn_auc(model lifecycle.bgnbd_model, source regclass,
                                    customer_column name, time_column name, amount_column name,
                                    calibration_end date, holdout_end date,
                                    unit text DEFAULT 'week', score text DEFAULT 'churn_risk')
RETURNS double precision
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    auc double precision;
BEGIN
    IF score NOT IN ('churn_risk', 'expected_purchases', 'p_alive') THEN
        RAISE EXCEPTION 'argument "score" must be ''churn_risk'', ''expected_purchases'' or ''p_alive'', got %',
            quote_literal(score) USING ERRCODE = '22023';
    END IF;
    WITH scored AS (
        SELECT CASE score
                   WHEN 'p_alive' THEN 1 - lifecycle.p_alive(model, s.frequency, s.recency, s.t)
                   WHEN 'churn_risk' THEN lifecycle.probability_no_purchase(model,
                            (holdout_end - calibration_end) / lifecycle._unit_days(unit),
                            s.frequency, s.recency, s.t)
                   ELSE -lifecycle.expected_purchases(model,
                            (holdout_end - calibration_end) / lifecycle._unit_days(unit),
                            s.frequency, s.recency, s.t) END AS risk,
               h.actual = 0 AS churned
        FROM lifecycle.model_summary(source, customer_column, time_column, amount_column,
                                     calibration_end, unit) AS s
        JOIN lifecycle._holdout_purchases(source, customer_column, time_column,
                                          calibration_end, holdout_end) AS h USING (customer)
    )
    SELECT lifecycle._auc(array_agg(sc.risk), array_agg(sc.churned)) INTO auc FROM scored sc;
    RETURN auc;
END
$$;

-- What the stage engine writes into customer_stage under the current model `m`: churn
-- risk = the probability of no purchase within `horizon_days` (the model's horizon_days,
-- else the source policy's lapsed window) under the model's chosen purchase model, and
-- the expected value over the model's value_horizon_days in value_steps steps, each
-- discounted by discount_rate (by default a year, 12 steps, 1 %), under BG/NBD and
-- Gamma-Gamma. From the stage table's columns: x = purchase days - 1, times in
-- the model's unit, and the mean spend per purchase day (the first included, which the
-- table does not tell apart) as the order value. NULL where a model cannot say.
CREATE FUNCTION lifecycle._churn_risk(m lifecycle.models, first date, last date,
                                      purchases bigint, as_of date, horizon_days integer)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN purchases > 0 AND as_of >= last THEN
    CASE WHEN m.risk = 'calibrated' THEN lifecycle.logistic_score(m.calibrated,
        lifecycle._risk_features(m.bgnbd, m.mbgnbd, m.pareto_nbd,
            m.calibrated_horizon_days / lifecycle._unit_days(m.unit), purchases - 1,
            (last - first) / lifecycle._unit_days(m.unit), (as_of - first) / lifecycle._unit_days(m.unit)))
    ELSE CASE m.kind
        WHEN 'bgnbd' THEN lifecycle.probability_no_purchase(m.bgnbd,
            horizon_days / lifecycle._unit_days(m.unit), purchases - 1,
            (last - first) / lifecycle._unit_days(m.unit), (as_of - first) / lifecycle._unit_days(m.unit))
        WHEN 'mbgnbd' THEN lifecycle.probability_no_purchase(m.mbgnbd,
            horizon_days / lifecycle._unit_days(m.unit), purchases - 1,
            (last - first) / lifecycle._unit_days(m.unit), (as_of - first) / lifecycle._unit_days(m.unit))
        WHEN 'pareto_nbd' THEN lifecycle.probability_no_purchase(m.pareto_nbd,
            horizon_days / lifecycle._unit_days(m.unit), purchases - 1,
            (last - first) / lifecycle._unit_days(m.unit), (as_of - first) / lifecycle._unit_days(m.unit))
    END END END;

-- The churn horizon in days for source `s` under model `m`.
CREATE FUNCTION lifecycle._churn_horizon(m lifecycle.models, policy_name text) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(m.horizon_days, (SELECT p.lapsed_days FROM lifecycle.policies p WHERE p.name = policy_name));

CREATE FUNCTION lifecycle._expected_value(m lifecycle.models, first date, last date,
                                          purchases bigint, spend double precision, as_of date)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN m.gamma_gamma IS NOT NULL AND purchases > 0 AND as_of >= last AND spend > 0
                 AND (m.gamma_gamma).q + (m.gamma_gamma).p * (purchases - 1) > 1 THEN
    lifecycle.customer_lifetime_value(m.bgnbd, m.gamma_gamma, purchases - 1,
        (last - first) / lifecycle._unit_days(m.unit), (as_of - first) / lifecycle._unit_days(m.unit),
        spend / purchases, m.value_horizon_days / lifecycle._unit_days(m.unit), m.value_steps,
        m.discount_rate) END;

-- Refits the current model on its source up to the engine's date when it is older than
-- lifecycle.refit_interval (0: never). The worker calls this in a transaction of its own,
-- outside any refresh, so a refit never delays stage updates. It reads only a tracked
-- source (the one with the model's table and columns), through the engine's reader: as
-- the table's owner, never with the worker's rights. Returns whether it refitted.
CREATE FUNCTION lifecycle._refit_if_due() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k lifecycle.models := (SELECT x FROM lifecycle.models x WHERE is_current);
    every interval := current_setting('lifecycle.refit_interval')::interval;
    src lifecycle.sources;
    as_of date := lifecycle.engine_date();
    unit_days double precision;
BEGIN
    IF k.name IS NULL OR every <= interval '0' OR k.fitted_at >= now() - every THEN
        RETURN false;
    END IF;
    SELECT * INTO src FROM lifecycle.sources t
    WHERE t.source = to_regclass(k.source) AND t.customer_column = k.customer_column
      AND t.time_column = k.time_column AND t.amount_column = k.amount_column;
    IF NOT FOUND THEN
        RAISE LOG 'lifecycle: model "%" is not refitted: its source % is not tracked with its columns',
            k.name, k.source;
        RETURN false;
    END IF;
    unit_days := lifecycle._unit_days(k.unit);
    -- Every purchase model is refitted; the engine keeps using the kind chosen at fit_model.
    SELECT lifecycle.bgnbd_fit(x.frequency, x.recency, x.t),
           lifecycle.mbgnbd_fit(x.frequency, x.recency, x.t),
           lifecycle.pareto_nbd_fit(x.frequency, x.recency, x.t), count(*),
           CASE WHEN count(*) FILTER (WHERE x.frequency > 0) >= 2
                THEN lifecycle.gamma_gamma_fit(x.frequency, x.monetary_value) END
    INTO k.bgnbd, k.mbgnbd, k.pareto_nbd, k.customers, k.gamma_gamma
    FROM lifecycle._source_histories(src.id, NULL, as_of) AS h
    CROSS JOIN LATERAL (
        SELECT (h.purchases - 1)::double precision AS frequency,
               (h.last_purchase - h.first_purchase) / unit_days AS recency,
               (as_of - h.first_purchase) / unit_days AS t,
               CASE WHEN h.purchases > 1
                    THEN (h.spend - h.first_day_spend) / (h.purchases - 1) ELSE 0 END AS monetary_value) AS x
    WHERE h.purchases > 0;
    UPDATE lifecycle.models   -- (its trigger makes the engine rescore everyone)
    SET fitted_at = now(), calibration_end = as_of, customers = k.customers, bgnbd = k.bgnbd,
        mbgnbd = k.mbgnbd, pareto_nbd = k.pareto_nbd, gamma_gamma = k.gamma_gamma
    WHERE name = k.name;
    RETURN true;
END
$$;
