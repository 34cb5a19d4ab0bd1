\echo Use "ALTER EXTENSION lifecycle UPDATE" to load this file. \quit

------------------------------------------------------------------------------------
-- 0.2.0: predictive models (BG/NBD, Gamma-Gamma), their summary, fits and scores.
-- Part of lifecycle--0.2.0.sql and of the 0.1.0 -> 0.2.0 upgrade (see the Makefile).
------------------------------------------------------------------------------------

-- A fitted BG/NBD model: its parameters, the log-likelihood at them, the customers it
-- was fitted on, the optimizer's function evaluations and whether it converged.
CREATE TYPE lifecycle.bgnbd_model AS (
    r double precision, alpha double precision, a double precision, b double precision,
    log_likelihood double precision, customers bigint, evaluations integer, converged boolean);
CREATE TYPE lifecycle.gamma_gamma_model AS (
    p double precision, q double precision, gamma double precision,
    log_likelihood double precision, customers bigint, evaluations integer, converged boolean);

-- The models' inputs per customer from raw orders, with the conventions of the
-- `lifetimes` summary: orders of one day are one purchase (their amounts summed); the
-- first purchase is not a repeat; frequency = repeat purchase days, recency = first to
-- last purchase, t = first purchase to the end of calibration_end (inclusive), both in
-- `unit` ('day' or 'week' = 7 days); monetary_value = mean amount of the repeat purchase
-- days (0 without one). Orders after calibration_end are ignored.
CREATE FUNCTION lifecycle.model_summary(source regclass, customer_column name, time_column name,
                                        amount_column name, calibration_end date,
                                        unit text DEFAULT 'week')
RETURNS TABLE (customer text, frequency double precision, recency double precision,
               t double precision, monetary_value double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH days AS (
             SELECT %1$I::text AS customer, %2$I::date AS day, sum(%3$I)::float8 AS amount
             FROM %4$s WHERE %2$I::date <= $1 AND %1$I IS NOT NULL GROUP BY 1, 2),
         per AS (
             SELECT customer, min(day) AS first, max(day) AS last, count(*) - 1 AS x,
                    sum(amount) - (array_agg(amount ORDER BY day))[1] AS repeat_amount
             FROM days GROUP BY customer)
         SELECT customer, x::float8, (last - first) / $2, ($1 - first) / $2,
                CASE WHEN x > 0 THEN repeat_amount / x ELSE 0 END
         FROM per',
        customer_column, time_column, amount_column, source)
    USING calibration_end, lifecycle._unit_days(unit);
END
$$;

-- Days in a model time unit; anything else is an ERROR naming the argument (NULL: NULL).
CREATE FUNCTION lifecycle._unit_days(unit text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    IF unit = 'day' THEN
        RETURN 1;
    ELSIF unit = 'week' THEN
        RETURN 7;
    END IF;
    RAISE EXCEPTION 'argument "unit" must be ''day'' or ''week'', got %', quote_literal(unit)
        USING ERRCODE = '22023';
END
$$;

CREATE FUNCTION lifecycle._bgnbd_fit_transfn(internal, double precision, double precision,
                                             double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'lifecycle_bgnbd_fit_transfn'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION lifecycle._bgnbd_fit_transfn(internal, double precision, double precision,
                                             double precision, double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'lifecycle_bgnbd_fit_transfn'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION lifecycle._gamma_gamma_fit_transfn(internal, double precision, double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'lifecycle_gamma_gamma_fit_transfn'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION lifecycle._gamma_gamma_fit_transfn(internal, double precision, double precision,
                                                   double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'lifecycle_gamma_gamma_fit_transfn'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION lifecycle._model_fit_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'lifecycle_model_fit_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION lifecycle._model_fit_serialize(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'lifecycle_model_fit_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION lifecycle._model_fit_deserialize(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'lifecycle_model_fit_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION lifecycle._bgnbd_fit_final(internal) RETURNS lifecycle.bgnbd_model
AS 'MODULE_PATHNAME', 'lifecycle_bgnbd_fit_final' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION lifecycle._gamma_gamma_fit_final(internal) RETURNS lifecycle.gamma_gamma_model
AS 'MODULE_PATHNAME', 'lifecycle_gamma_gamma_fit_final' LANGUAGE C PARALLEL SAFE;

-- Maximum-likelihood fits over customers (rows with a NULL input are skipped; no rows: NULL).
-- Data that cannot identify the model (one customer, no repeat buyer) is an ERROR.
CREATE AGGREGATE lifecycle.bgnbd_fit(frequency double precision, recency double precision,
                                     t double precision) (
    SFUNC = lifecycle._bgnbd_fit_transfn, STYPE = internal,
    FINALFUNC = lifecycle._bgnbd_fit_final,
    COMBINEFUNC = lifecycle._model_fit_combine,
    SERIALFUNC = lifecycle._model_fit_serialize, DESERIALFUNC = lifecycle._model_fit_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE lifecycle.bgnbd_fit(frequency double precision, recency double precision,
                                     t double precision, penalizer double precision) (
    SFUNC = lifecycle._bgnbd_fit_transfn, STYPE = internal,
    FINALFUNC = lifecycle._bgnbd_fit_final,
    COMBINEFUNC = lifecycle._model_fit_combine,
    SERIALFUNC = lifecycle._model_fit_serialize, DESERIALFUNC = lifecycle._model_fit_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE lifecycle.gamma_gamma_fit(frequency double precision,
                                           monetary_value double precision) (
    SFUNC = lifecycle._gamma_gamma_fit_transfn, STYPE = internal,
    FINALFUNC = lifecycle._gamma_gamma_fit_final,
    COMBINEFUNC = lifecycle._model_fit_combine,
    SERIALFUNC = lifecycle._model_fit_serialize, DESERIALFUNC = lifecycle._model_fit_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE lifecycle.gamma_gamma_fit(frequency double precision,
                                           monetary_value double precision,
                                           penalizer double precision) (
    SFUNC = lifecycle._gamma_gamma_fit_transfn, STYPE = internal,
    FINALFUNC = lifecycle._gamma_gamma_fit_final,
    COMBINEFUNC = lifecycle._model_fit_combine,
    SERIALFUNC = lifecycle._model_fit_serialize, DESERIALFUNC = lifecycle._model_fit_deserialize,
    PARALLEL = SAFE);

-- Scores of one customer under a fitted model (times in the model's unit).
CREATE FUNCTION lifecycle.p_alive(model lifecycle.bgnbd_model, frequency double precision,
                                  recency double precision, t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_p_alive'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lifecycle.expected_purchases(model lifecycle.bgnbd_model, horizon double precision,
                                             frequency double precision, recency double precision,
                                             t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_expected_purchases'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lifecycle.expected_order_value(model lifecycle.gamma_gamma_model,
                                               frequency double precision,
                                               monetary_value double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_expected_order_value'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- Lifetime value over `horizon` time units cut into `steps`, each discounted by
-- discount_rate per step (the `lifetimes` sum; it uses months as steps).
CREATE FUNCTION lifecycle.customer_lifetime_value(
    purchases lifecycle.bgnbd_model, spend lifecycle.gamma_gamma_model,
    frequency double precision, recency double precision, t double precision,
    monetary_value double precision, horizon double precision, steps integer,
    discount_rate double precision DEFAULT 0)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_customer_lifetime_value'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- One customer's BG/NBD log-likelihood, eq. (6) of Fader, Hardie & Lee (2005).
CREATE FUNCTION lifecycle.bgnbd_log_likelihood(r double precision, alpha double precision,
                                               a double precision, b double precision,
                                               frequency double precision,
                                               recency double precision, t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_bgnbd_log_likelihood'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

------------------------------------------------------------------------------------
-- 0.2.0: the MBG/NBD model (Batislam, Denizel & Filiztekin 2007), BG/NBD's sibling in
-- which a customer may also drop out right after the first purchase. It takes the same
-- rows as bgnbd_fit and shares its aggregate's support functions.
------------------------------------------------------------------------------------

CREATE TYPE lifecycle.mbgnbd_model AS (
    r double precision, alpha double precision, a double precision, b double precision,
    log_likelihood double precision, customers bigint, evaluations integer, converged boolean);

CREATE FUNCTION lifecycle._mbgnbd_fit_final(internal) RETURNS lifecycle.mbgnbd_model
AS 'MODULE_PATHNAME', 'lifecycle_mbgnbd_fit_final' LANGUAGE C PARALLEL SAFE;

-- Data that cannot identify the model (one customer, no repeat buyer) is an ERROR.
CREATE AGGREGATE lifecycle.mbgnbd_fit(frequency double precision, recency double precision,
                                      t double precision) (
    SFUNC = lifecycle._bgnbd_fit_transfn, STYPE = internal,
    FINALFUNC = lifecycle._mbgnbd_fit_final,
    COMBINEFUNC = lifecycle._model_fit_combine,
    SERIALFUNC = lifecycle._model_fit_serialize, DESERIALFUNC = lifecycle._model_fit_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE lifecycle.mbgnbd_fit(frequency double precision, recency double precision,
                                      t double precision, penalizer double precision) (
    SFUNC = lifecycle._bgnbd_fit_transfn, STYPE = internal,
    FINALFUNC = lifecycle._mbgnbd_fit_final,
    COMBINEFUNC = lifecycle._model_fit_combine,
    SERIALFUNC = lifecycle._model_fit_serialize, DESERIALFUNC = lifecycle._model_fit_deserialize,
    PARALLEL = SAFE);

-- Scores of one customer under a fitted MBG/NBD model (times in the model's unit).
CREATE FUNCTION lifecycle.p_alive(model lifecycle.mbgnbd_model, frequency double precision,
                                  recency double precision, t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_mbgnbd_p_alive'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lifecycle.expected_purchases(model lifecycle.mbgnbd_model, horizon double precision,
                                             frequency double precision, recency double precision,
                                             t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_mbgnbd_expected_purchases'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- P(no purchase in the next `horizon` units) = 1 - P(alive) + P(alive) ((alpha+t)/(alpha+t+horizon))^(r+frequency),
-- under either model.
CREATE FUNCTION lifecycle.probability_no_purchase(model lifecycle.mbgnbd_model,
                                                  horizon double precision,
                                                  frequency double precision,
                                                  recency double precision, t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_mbgnbd_probability_no_purchase'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lifecycle.probability_no_purchase(model lifecycle.bgnbd_model,
                                                  horizon double precision,
                                                  frequency double precision,
                                                  recency double precision, t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_bgnbd_probability_no_purchase'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- One customer's MBG/NBD log-likelihood.
CREATE FUNCTION lifecycle.mbgnbd_log_likelihood(r double precision, alpha double precision,
                                                a double precision, b double precision,
                                                frequency double precision,
                                                recency double precision, t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_mbgnbd_log_likelihood'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

------------------------------------------------------------------------------------
-- 0.2.0: the Pareto/NBD model (Schmittlein, Morrison & Colombo 1987), a sibling of BG/NBD
-- on the same customer summary (frequency, recency, t). Its fit reuses BG/NBD's
-- aggregate state and support functions; only the final function differs.
------------------------------------------------------------------------------------

-- A fitted Pareto/NBD model: purchase rates ~ Gamma(r, alpha), dropout rates ~
-- Gamma(s, beta), the log-likelihood at them, the customers it was fitted on, the
-- optimizer's function evaluations and whether it converged.
CREATE TYPE lifecycle.pareto_nbd_model AS (
    r double precision, alpha double precision, s double precision, beta double precision,
    log_likelihood double precision, customers bigint, evaluations integer, converged boolean);

CREATE FUNCTION lifecycle._pareto_nbd_fit_final(internal) RETURNS lifecycle.pareto_nbd_model
AS 'MODULE_PATHNAME', 'lifecycle_pareto_nbd_fit_final' LANGUAGE C PARALLEL SAFE;

-- Maximum-likelihood fit over customers (rows with a NULL input are skipped; no rows:
-- NULL). Data that cannot identify the model (one customer, no repeat buyer) is an ERROR.
CREATE AGGREGATE lifecycle.pareto_nbd_fit(frequency double precision, recency double precision,
                                          t double precision) (
    SFUNC = lifecycle._bgnbd_fit_transfn, STYPE = internal,
    FINALFUNC = lifecycle._pareto_nbd_fit_final,
    COMBINEFUNC = lifecycle._model_fit_combine,
    SERIALFUNC = lifecycle._model_fit_serialize, DESERIALFUNC = lifecycle._model_fit_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE lifecycle.pareto_nbd_fit(frequency double precision, recency double precision,
                                          t double precision, penalizer double precision) (
    SFUNC = lifecycle._bgnbd_fit_transfn, STYPE = internal,
    FINALFUNC = lifecycle._pareto_nbd_fit_final,
    COMBINEFUNC = lifecycle._model_fit_combine,
    SERIALFUNC = lifecycle._model_fit_serialize, DESERIALFUNC = lifecycle._model_fit_deserialize,
    PARALLEL = SAFE);

-- Scores of one customer under a fitted Pareto/NBD model (times in the model's unit).
CREATE FUNCTION lifecycle.p_alive(model lifecycle.pareto_nbd_model, frequency double precision,
                                  recency double precision, t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_pareto_nbd_p_alive'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION lifecycle.expected_purchases(model lifecycle.pareto_nbd_model,
                                             horizon double precision,
                                             frequency double precision, recency double precision,
                                             t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_pareto_nbd_expected_purchases'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- P(no purchase in the next `horizon` time units): dead already, or dropping out or
-- staying alive without buying in the horizon.
CREATE FUNCTION lifecycle.probability_no_purchase(model lifecycle.pareto_nbd_model,
                                                  horizon double precision,
                                                  frequency double precision,
                                                  recency double precision, t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_pareto_nbd_probability_no_purchase'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- One customer's Pareto/NBD log-likelihood (Fader & Hardie 2005 note, eq. 22).
CREATE FUNCTION lifecycle.pareto_nbd_log_likelihood(r double precision, alpha double precision,
                                                    s double precision, beta double precision,
                                                    frequency double precision,
                                                    recency double precision, t double precision)
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_pareto_nbd_log_likelihood'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

------------------------------------------------------------------------------------
-- 0.2.0: logistic regression, to calibrate a score against what a holdout observed
-- (say P(no purchase) from recency, frequency, age and a model's P(no purchase)).
------------------------------------------------------------------------------------

-- coefficients: the intercept first, then one per feature, on the features' own scale.
CREATE TYPE lifecycle.logistic_model AS (
    coefficients double precision[], log_likelihood double precision, rows bigint,
    evaluations integer, converged boolean);

CREATE FUNCTION lifecycle._logistic_fit_transfn(internal, boolean, double precision[])
RETURNS internal AS 'MODULE_PATHNAME', 'lifecycle_logistic_fit_transfn'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION lifecycle._logistic_fit_transfn(internal, boolean, double precision[],
                                                double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'lifecycle_logistic_fit_transfn'
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION lifecycle._logistic_fit_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'lifecycle_logistic_fit_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION lifecycle._logistic_fit_serialize(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'lifecycle_logistic_fit_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION lifecycle._logistic_fit_deserialize(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'lifecycle_logistic_fit_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION lifecycle._logistic_fit_final(internal) RETURNS lifecycle.logistic_model
AS 'MODULE_PATHNAME', 'lifecycle_logistic_fit_final' LANGUAGE C PARALLEL SAFE;

-- Rows with a NULL outcome or NULL features are skipped; with none left the fit is NULL.
-- One outcome in every row, features of different lengths or non-finite ones are ERRORs.
CREATE AGGREGATE lifecycle.logistic_fit(outcome boolean, features double precision[]) (
    SFUNC = lifecycle._logistic_fit_transfn, STYPE = internal,
    FINALFUNC = lifecycle._logistic_fit_final,
    COMBINEFUNC = lifecycle._logistic_fit_combine,
    SERIALFUNC = lifecycle._logistic_fit_serialize,
    DESERIALFUNC = lifecycle._logistic_fit_deserialize,
    PARALLEL = SAFE);
CREATE AGGREGATE lifecycle.logistic_fit(outcome boolean, features double precision[],
                                        penalizer double precision) (
    SFUNC = lifecycle._logistic_fit_transfn, STYPE = internal,
    FINALFUNC = lifecycle._logistic_fit_final,
    COMBINEFUNC = lifecycle._logistic_fit_combine,
    SERIALFUNC = lifecycle._logistic_fit_serialize,
    DESERIALFUNC = lifecycle._logistic_fit_deserialize,
    PARALLEL = SAFE);

-- P(outcome) = 1 / (1 + exp(-(coefficients[1] + Σ coefficients[j+1]·features[j]))).
CREATE FUNCTION lifecycle.logistic_score(model lifecycle.logistic_model, features double precision[])
RETURNS double precision AS 'MODULE_PATHNAME', 'lifecycle_logistic_score'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
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

-- Fits the models on a source's orders up to calibration_end and keeps them as `name`
-- (replacing a model of that name); with make_current the stage engine uses it from its
-- next refresh. `model` picks the purchase model the engine uses: 'bgnbd', 'mbgnbd',
-- 'pareto_nbd', or 'auto': the best churn AUC on the holdout (calibration_end,
-- holdout_end] when holdout_end is given (lifecycle.compare_models), else the highest
-- log-likelihood (the same as the lowest BIC: every model has four parameters).
CREATE FUNCTION lifecycle.fit_model(name text, source regclass, customer_column name,
                                    time_column name, amount_column name,
                                    calibration_end date DEFAULT CURRENT_DATE,
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

------------------------------------------------------------------------------------
-- 0.2.0: the stage engine, in four files: its tables (here), capturing changes
-- (capture.sql), refresh (refresh.sql) and the views (views.sql); privileges.sql grants.
-- Part of lifecycle--0.2.0.sql and of the 0.1.0 -> 0.2.0 upgrade (see the Makefile).
------------------------------------------------------------------------------------

-- Calling this loads the library, which defines the lifecycle.* settings.
CREATE FUNCTION lifecycle._load() RETURNS void
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'lifecycle_load';

-- When a customer's stage will next change if nothing is bought (the stage engine keeps
-- it in customer_stage.next_change and wakes the customer then).
CREATE FUNCTION lifecycle.next_stage_change(
    first date, last date, n bigint, as_of date DEFAULT CURRENT_DATE, policy text DEFAULT 'default')
RETURNS date
AS 'MODULE_PATHNAME', 'lifecycle_next_stage_change'
LANGUAGE C STABLE PARALLEL SAFE;

-- The engine's today: the setting lifecycle.as_of, or the current date.
CREATE FUNCTION lifecycle.engine_date() RETURNS date
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    PERFORM lifecycle._load();
    RETURN coalesce(nullif(current_setting('lifecycle.as_of'), '')::date, CURRENT_DATE);
END
$$;

------------------------------------------------------------------------------------
-- Tracked sources and the change queue
------------------------------------------------------------------------------------

-- An orders table the engine follows. Column names are stored as names and only ever
-- put into SQL quoted. The columns' types are stored too, and must be built-in types
-- (lifecycle._allowed_type): every read checks them against pg_attribute again, so no
-- cast, operator or domain CHECK of a user's type ever runs inside the engine.
CREATE TABLE lifecycle.sources (
    id              serial PRIMARY KEY,
    source          regclass NOT NULL UNIQUE,
    customer_column name NOT NULL,
    time_column     name NOT NULL,
    amount_column   name,
    customer_type   regtype NOT NULL,
    time_type       regtype NOT NULL,
    amount_type     regtype,
    time_zone       text NOT NULL,   -- the zone in which timestamptz values become days
    policy          text NOT NULL,
    tracked_at      timestamptz NOT NULL DEFAULT now(),
    tracked_on      date NOT NULL,   -- the engine's date then: the log is complete from here
    rfm_breakpoints lifecycle.rfm_breakpoints,
    rfm_scored_at   timestamptz,     -- when the last rescoring pass ended
    rescoring       boolean NOT NULL DEFAULT false,  -- a pass is under way (see _rescore)
    rescore_from    text COLLATE "C" -- the last customer it rescored
);
COMMENT ON TABLE lifecycle.sources IS 'Orders tables tracked by the stage engine (lifecycle.track)';

-- Changes to the sources, written by statement-level triggers and consumed by refresh().
-- An INSERT queues a row per customer and purchase day with the day's amount, so that
-- refresh() can add it to what it knows without reading the source again; an UPDATE or
-- DELETE queues the customer with no day (NULL): it is recomputed from the source. A NULL
-- customer: a TRUNCATE.
-- No foreign keys here or below: they would cost a trigger per row, and untrack()
-- removes a source's rows itself.
CREATE TABLE lifecycle.change_queue (
    id        bigserial PRIMARY KEY,
    source_id integer NOT NULL,
    customer  text COLLATE "C",
    day       date,
    spend     double precision,
    queued_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON lifecycle.change_queue (source_id, customer);

------------------------------------------------------------------------------------
-- The stage table and the transitions log
------------------------------------------------------------------------------------

CREATE TABLE lifecycle.customer_stage (
    source_id      integer NOT NULL,
    customer       text COLLATE "C" NOT NULL,  -- ids compare as bytes: fast, any locale
    first_purchase date,             -- NULL while all the customer's orders are in the future
    last_purchase  date,
    purchases      bigint NOT NULL,  -- distinct purchase days up to the engine's date
    spend          double precision, -- total amount of those orders
    stage          lifecycle.stage NOT NULL,
    stage_since    date NOT NULL,
    next_change    date,             -- when the stage changes if nothing is bought
    next_order     date,             -- the first order dated after the engine's date
    r              integer,
    f              integer,
    m              integer,
    segment        text,
    churn_risk     double precision, -- P(no purchase within the horizon) under the current model
    expected_value double precision, -- lifetime value from the current model
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, customer)
);
CREATE INDEX customer_stage_due ON lifecycle.customer_stage (source_id, next_change)
    WHERE next_change IS NOT NULL;
COMMENT ON TABLE lifecycle.customer_stage IS
    'Per tracked customer: purchases, stage, when it will change, RFM; kept by refresh()';

CREATE TABLE lifecycle.transitions (
    id         bigserial PRIMARY KEY,
    source_id  integer NOT NULL,
    customer   text COLLATE "C" NOT NULL,
    from_stage lifecycle.stage NOT NULL,
    to_stage   lifecycle.stage NOT NULL,
    effective  date NOT NULL,        -- the day the stage changed
    cause      text NOT NULL CHECK (cause IN ('purchase', 'time', 'correction', 'initial')),
    logged_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON lifecycle.transitions (source_id, customer, id);
COMMENT ON TABLE lifecycle.transitions IS
    'Every stage change, in order of id; NOTIFY announces each one when it commits';

-- The worker's figures, one row per database (see the view worker_status).
CREATE TABLE lifecycle.worker_state (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pid                integer,
    ticks              bigint NOT NULL DEFAULT 0,
    errors             bigint NOT NULL DEFAULT 0,
    consecutive_errors integer NOT NULL DEFAULT 0,
    last_tick_at       timestamptz,
    last_tick_ms       double precision,
    last_customers     bigint,
    last_transitions   bigint,
    last_error         text,
    last_error_at      timestamptz
);

-- Refreshes lock this table (EXCLUSIVE) to run one at a time. An advisory lock would do
-- the same, but any role can take any advisory lock and stall the engine; this table can
-- be locked only by roles with UPDATE on it (lifecycle_worker) and superusers. Empty.
CREATE TABLE lifecycle.refresh_lock ();
COMMENT ON TABLE lifecycle.refresh_lock IS
    'Locked by each refresh so that refreshes run one at a time; holds no rows';

-- What users create and change is kept by pg_dump (the worker's figures are not).
SELECT pg_catalog.pg_extension_config_dump('lifecycle.sources', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.sources_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.change_queue', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.change_queue_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.customer_stage', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.transitions', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.transitions_id_seq', '');

------------------------------------------------------------------------------------
-- 0.2.0: engagement playbooks (docs/playbooks.md), in four files: their tables (here),
-- checks of what users write into them (checks.sql), the scheduler the engine runs
-- (schedule.sql) and what applications call and read (actions.sql, views.sql).
------------------------------------------------------------------------------------

-- Channels actions go out on. Quiet hours, when set, are in the customer's time zone
-- (lifecycle.contacts) or else the source's: no action on this channel is due between
-- quiet_from and quiet_until (a window may wrap past midnight).
CREATE TABLE lifecycle.channels (
    channel     text PRIMARY KEY,
    quiet_from  time,
    quiet_until time,
    description text,
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE lifecycle.channels IS 'Channels actions go out on, with their quiet hours';
INSERT INTO lifecycle.channels VALUES
    ('email', NULL, NULL, 'E-mail', true),
    ('sms', '21:00', '09:00', 'Text message; quiet at night', true),
    ('push', '22:00', '08:00', 'Mobile push notification; quiet at night', true),
    ('phone', '19:00', '09:00', 'A call from a person; office hours only', true);

-- Playbooks: what a trigger sets in motion. Trigger 'stage': the customer entered one of
-- to_stages (optionally only in some RFM segments or value tiers, or with a churn risk
-- of at least min_churn_risk); 'birthday': the customer's birthday (lifecycle.contacts);
-- 'anniversary': the anniversary of the first purchase. A customer is enrolled at most
-- once per playbook and episode: per purchase history for stage triggers (enrolled again
-- only after buying again), per date for date triggers. A share holdout_share of the
-- customers it would enrol, chosen by a hash of playbook and customer, is held out:
-- logged, never contacted, and compared with the others (view playbook_uplift).
-- A purchase within attribution_days after the series' last step counts as a
-- reactivation. Shipped presets are disabled: nothing is scheduled until a user says so.
CREATE TABLE lifecycle.playbooks (
    name             text PRIMARY KEY,
    trigger          text NOT NULL,
    to_stages        text[],
    segments         text[],
    value_tiers      text[],
    min_churn_risk   double precision,
    stop_on          text[] NOT NULL DEFAULT '{purchase,reply,click,opt_out}',
    holdout_share    double precision NOT NULL DEFAULT 0.1,
    attribution_days integer NOT NULL DEFAULT 30,
    enabled          boolean NOT NULL DEFAULT true,
    description      text,
    builtin          boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE lifecycle.playbooks IS
    'What a trigger (a stage entered, a birthday, an anniversary) sets in motion';

-- The steps of a playbook, in order. Each is due `delay` after the previous step (the
-- first: after the trigger, at midnight of its day in the customer's time zone). A
-- 'message' step becomes an action on its channel; a 'sunset' step, reached after the
-- grace period of silence that its delay is, suppresses the channel (an opt-out with
-- via 'sunset') and becomes a 'sunset' action. A step that would break the contact
-- policy waits for the earliest allowed time, or with when_capped = 'skip' is skipped.
CREATE TABLE lifecycle.playbook_steps (
    playbook    text NOT NULL REFERENCES lifecycle.playbooks ON UPDATE CASCADE ON DELETE CASCADE,
    step        integer NOT NULL,
    delay       interval NOT NULL,
    channel     text NOT NULL REFERENCES lifecycle.channels ON UPDATE CASCADE,
    message_key text NOT NULL,
    kind        text NOT NULL DEFAULT 'message',
    when_capped text NOT NULL DEFAULT 'wait',
    builtin     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (playbook, step)
);
COMMENT ON TABLE lifecycle.playbook_steps IS
    'Steps of the playbooks: delay after the previous step, channel, message, kind';

INSERT INTO lifecycle.playbooks (name, trigger, to_stages, stop_on, holdout_share,
                                 attribution_days, enabled, description, builtin) VALUES
    ('winback', 'stage', '{inactive,lapsed}', '{purchase,reply,click,opt_out}', 0.1, 30, false,
     'Three messages to customers drifting away, the last by SMS; sunset after two weeks of silence', true),
    ('onboarding', 'stage', '{new}', '{reply,click,opt_out}', 0.1, 30, false,
     'Welcome series for first-time buyers', true),
    ('birthday', 'birthday', NULL, '{opt_out}', 0, 7, false,
     'A greeting on the customer''s birthday, once a year', true);
INSERT INTO lifecycle.playbook_steps (playbook, step, delay, channel, message_key, kind, builtin) VALUES
    ('winback', 1, '0 days', 'email', 'winback_1', 'message', true),
    ('winback', 2, '7 days', 'email', 'winback_2', 'message', true),
    ('winback', 3, '7 days', 'sms', 'winback_3', 'message', true),
    ('winback', 4, '7 days', 'email', 'last_notice', 'message', true),
    ('winback', 5, '14 days', 'email', 'sunset', 'sunset', true),
    ('onboarding', 1, '1 day', 'email', 'welcome', 'message', true),
    ('onboarding', 2, '6 days', 'email', 'getting_started', 'message', true),
    ('onboarding', 3, '14 days', 'email', 'second_order_offer', 'message', true),
    ('birthday', 1, '0 days', 'email', 'birthday_greeting', 'message', true);

-- Caps and cadence: at most max_messages per `per` on `channel` (NULL: all channels
-- together), and at least min_gap between two messages. A rule may apply only to
-- customers in one stage or value tier (lifecycle.value_tier). Every rule that applies
-- must hold.
CREATE TABLE lifecycle.contact_policy (
    name         text PRIMARY KEY,
    channel      text REFERENCES lifecycle.channels ON UPDATE CASCADE ON DELETE CASCADE,
    stage        text,
    value_tier   text,
    max_messages integer,
    per          interval,
    min_gap      interval,
    builtin      boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE lifecycle.contact_policy IS
    'Contact caps per channel and period, and the minimum gap between messages';
INSERT INTO lifecycle.contact_policy VALUES
    ('any_channel_gap', NULL, NULL, NULL, NULL, NULL, '1 day', true),
    ('email_weekly', 'email', NULL, NULL, 3, '7 days', NULL, true),
    ('sms_monthly', 'sms', NULL, NULL, 2, '30 days', NULL, true);

-- What the engine knows of a customer beyond the orders: a time zone (for quiet hours
-- and the time of day steps fall due) and a birthday. Written by applications.
CREATE TABLE lifecycle.contacts (
    source_id integer NOT NULL,
    customer  text COLLATE "C" NOT NULL,
    time_zone text,
    birthday  date,
    PRIMARY KEY (source_id, customer)
);
CREATE INDEX contacts_birthday ON lifecycle.contacts
    (source_id, (extract(month FROM birthday) * 100 + extract(day FROM birthday)))
    WHERE birthday IS NOT NULL;
COMMENT ON TABLE lifecycle.contacts IS 'Time zone and birthday of customers, for playbooks';

-- Consent per customer and channel: no row, or granted = false, means nothing is due on
-- the channel. consent_log keeps every change (the audit trail).
CREATE TABLE lifecycle.consent (
    source_id  integer NOT NULL,
    customer   text COLLATE "C" NOT NULL,
    channel    text NOT NULL,
    granted    boolean NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    via        text,
    PRIMARY KEY (source_id, customer, channel)
);
COMMENT ON TABLE lifecycle.consent IS 'Current opt-in/opt-out per customer and channel';
CREATE TABLE lifecycle.consent_log (
    id         bigserial PRIMARY KEY,
    source_id  integer NOT NULL,
    customer   text COLLATE "C" NOT NULL,
    channel    text NOT NULL,
    granted    boolean NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    via        text
);
CREATE INDEX ON lifecycle.consent_log (source_id, customer, id);
COMMENT ON TABLE lifecycle.consent_log IS 'Every opt-in and opt-out, with time and source';

-- A customer's run through a playbook. `episode`: what makes it one (the last purchase
-- before it for stage triggers, the date for date triggers). Purchases after
-- counts_after and up to attribution_until count as its reactivation (converted_on, the
-- first; revenue, their amounts). next_step is due at next_due_at while running.
CREATE TABLE lifecycle.enrollments (
    id                bigserial PRIMARY KEY,
    playbook          text NOT NULL,
    source_id         integer NOT NULL,
    customer          text COLLATE "C" NOT NULL,
    episode           date NOT NULL,
    started_on        date NOT NULL,
    transition_id     bigint,
    holdout           boolean NOT NULL,
    status            text NOT NULL,
    next_step         integer,
    step_time         timestamptz,      -- next_step's own time: the previous step's + delay
    next_due_at       timestamptz,      -- when it is looked at: step_time, or later if waiting
    waiting           text,             -- why next_step waits past its own time
    counts_after      date NOT NULL,
    attribution_until date NOT NULL,
    converted_on      date,
    revenue           double precision,
    ended_at          timestamptz,
    enrolled_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (playbook, source_id, customer, episode),
    CHECK (status IN ('running', 'held_out', 'finished', 'converted', 'engaged', 'opted_out',
                      'sunset'))
);
CREATE INDEX enrollments_due ON lifecycle.enrollments (next_due_at) WHERE status = 'running';
CREATE INDEX ON lifecycle.enrollments (source_id, customer);
COMMENT ON TABLE lifecycle.enrollments IS
    'Customers in playbooks: held out or treated, the next step, the outcome';

-- The queue applications read: one row per message (or sunset) to send. An action is
-- created 'due'; claim_actions() hands it to one consumer until claim_expires; the
-- consumer reports outcomes (report_action). `scheduled_for` is the step's own time,
-- due_at when the contact policy let it go, `reason` why they differ.
CREATE TABLE lifecycle.actions (
    id            bigserial PRIMARY KEY,
    enrollment_id bigint NOT NULL,
    playbook      text NOT NULL,
    step          integer NOT NULL,
    source_id     integer NOT NULL,
    customer      text COLLATE "C" NOT NULL,
    channel       text NOT NULL,
    message_key   text NOT NULL,
    kind          text NOT NULL,
    scheduled_for timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    reason        text,
    status        text NOT NULL DEFAULT 'due',
    attempts      integer NOT NULL DEFAULT 0,
    claimed_by    text,
    claim_expires timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (status IN ('due', 'claimed', 'sent', 'delivered', 'opened', 'clicked', 'replied',
                      'failed', 'bounced', 'canceled'))
);
CREATE INDEX actions_claimable ON lifecycle.actions (due_at, id) WHERE status IN ('due', 'claimed');
CREATE INDEX ON lifecycle.actions (source_id, customer, due_at);
CREATE INDEX ON lifecycle.actions (enrollment_id);
COMMENT ON TABLE lifecycle.actions IS
    'Actions due: messages and sunsets for the application to carry out and report on';

-- Every outcome reported, once per attempt (a second report of the same outcome for the
-- same attempt is ignored).
CREATE TABLE lifecycle.action_outcomes (
    action_id   bigint NOT NULL,
    attempt     integer NOT NULL,
    outcome     text NOT NULL,
    reported_at timestamptz NOT NULL DEFAULT now(),
    consumer    text,
    detail      text,
    PRIMARY KEY (action_id, attempt, outcome)
);
COMMENT ON TABLE lifecycle.action_outcomes IS 'Outcomes reported for actions, one row per outcome';

-- What happened in a run through a playbook besides actions: held out, a step skipped
-- or postponed (and why), stopped, converted, sunset.
CREATE TABLE lifecycle.playbook_log (
    id            bigserial PRIMARY KEY,
    enrollment_id bigint NOT NULL,
    step          integer,
    event         text NOT NULL,
    detail        text,
    logged_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON lifecycle.playbook_log (enrollment_id);
COMMENT ON TABLE lifecycle.playbook_log IS
    'Enrolments, holdouts, skipped and postponed steps (with reasons), stops and sunsets';

-- Why customers left: the codes, and what was recorded per customer.
CREATE TABLE lifecycle.churn_reasons (
    code        text PRIMARY KEY,
    description text,
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE lifecycle.churn_reasons IS 'Reason codes for customers leaving';
INSERT INTO lifecycle.churn_reasons VALUES
    ('price', 'Too expensive, or found it cheaper', true),
    ('quality', 'Product quality', true),
    ('service', 'Service or support', true),
    ('delivery', 'Delivery: late, costly, damaged', true),
    ('competitor', 'Moved to a competitor', true),
    ('no_need', 'No longer needs the product', true),
    ('moved', 'Moved away', true),
    ('other', 'Anything else: see the note', true);
CREATE TABLE lifecycle.customer_reasons (
    id          bigserial PRIMARY KEY,
    source_id   integer NOT NULL,
    customer    text COLLATE "C" NOT NULL,
    code        text NOT NULL REFERENCES lifecycle.churn_reasons ON UPDATE CASCADE,
    note        text,
    via         text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON lifecycle.customer_reasons (source_id, customer, id);
COMMENT ON TABLE lifecycle.customer_reasons IS 'Why a customer left, from a survey or a call';

-- Where the date triggers have been looked at up to (per playbook).
CREATE TABLE lifecycle.playbook_dates (
    playbook  text PRIMARY KEY REFERENCES lifecycle.playbooks ON UPDATE CASCADE ON DELETE CASCADE,
    done_upto date NOT NULL
);

-- pg_dump keeps what users wrote; shipped rows only when a user changed them.
SELECT pg_catalog.pg_extension_config_dump('lifecycle.channels', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.playbooks', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.playbook_steps', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.contact_policy', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.churn_reasons', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.contacts', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.consent', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.consent_log', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.consent_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.enrollments', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.enrollments_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.actions', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.actions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.action_outcomes', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.playbook_log', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.playbook_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.customer_reasons', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.customer_reasons_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('lifecycle.playbook_dates', '');
------------------------------------------------------------------------------------
-- Checks of what users write into the playbook tables: an ERROR with SQLSTATE 22023
-- naming the column and the row, rather than a constraint's name. Shipped rows follow
-- the policies' rule: a user's row with a shipped row's key replaces it (and is then
-- dumped by pg_dump), and so does an update.
------------------------------------------------------------------------------------

CREATE FUNCTION lifecycle._bad_argument(what text, detail text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '%: %', what, detail USING ERRCODE = '22023';
END
$$;

-- Whether `channel` is one of lifecycle.channels; an ERROR naming `what` if not.
CREATE FUNCTION lifecycle._check_channel(what text, channel text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF channel IS NULL OR NOT EXISTS (SELECT FROM lifecycle.channels c WHERE c.channel = $2) THEN
        PERFORM lifecycle._bad_argument(what, format('unknown channel %L (see lifecycle.channels)',
                                                     channel));
    END IF;
END
$$;

CREATE FUNCTION lifecycle._check_stage(what text, stage text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF stage IS NULL OR stage NOT IN (SELECT unnest(enum_range(NULL::lifecycle.stage))::text) THEN
        PERFORM lifecycle._bad_argument(what, format(
            'unknown stage %L (prospect, new, active, at_risk, inactive or lapsed)', stage));
    END IF;
END
$$;

CREATE FUNCTION lifecycle._check_value_tier(what text, tier text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF tier IS NULL OR tier NOT IN ('low', 'mid', 'high') THEN
        PERFORM lifecycle._bad_argument(what, format('unknown value tier %L (low, mid or high)', tier));
    END IF;
END
$$;

-- Whether `name` is a lower-case name (letters, digits, _) as channels and reason codes
-- are; an ERROR naming `what` if not.
CREATE FUNCTION lifecycle._check_code(what text, name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        PERFORM lifecycle._bad_argument(what, format(
            '%L: must be a lower-case name (letters, digits, _)', name));
    END IF;
END
$$;

CREATE FUNCTION lifecycle._check_playbook() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    what text := format('playbook %L', NEW.name);
    x text;
BEGIN
    IF NEW.trigger IS NULL OR NEW.trigger NOT IN ('stage', 'birthday', 'anniversary') THEN
        PERFORM lifecycle._bad_argument(what || ', trigger',
            format('%L is not a trigger (stage, birthday or anniversary)', NEW.trigger));
    END IF;
    IF NEW.trigger = 'stage' AND coalesce(cardinality(NEW.to_stages), 0) = 0 THEN
        PERFORM lifecycle._bad_argument(what || ', to_stages', 'a stage trigger needs at least one stage');
    END IF;
    IF NEW.trigger <> 'stage' AND NEW.to_stages IS NOT NULL THEN
        PERFORM lifecycle._bad_argument(what || ', to_stages', 'only a stage trigger has stages');
    END IF;
    FOREACH x IN ARRAY coalesce(NEW.to_stages, '{}') LOOP
        PERFORM lifecycle._check_stage(what || ', to_stages', x);
    END LOOP;
    FOREACH x IN ARRAY coalesce(NEW.value_tiers, '{}') LOOP
        PERFORM lifecycle._check_value_tier(what || ', value_tiers', x);
    END LOOP;
    FOREACH x IN ARRAY coalesce(NEW.segments, '{}') LOOP
        IF x IS NULL OR NOT EXISTS (SELECT FROM lifecycle.rfm_segments s WHERE s.segment = x) THEN
            PERFORM lifecycle._bad_argument(what || ', segments',
                format('unknown RFM segment %L (see lifecycle.rfm_segments)', x));
        END IF;
    END LOOP;
    FOREACH x IN ARRAY coalesce(NEW.stop_on, '{}') LOOP
        IF x IS NULL OR x NOT IN ('purchase', 'reply', 'click', 'opt_out') THEN
            PERFORM lifecycle._bad_argument(what || ', stop_on',
                format('%L is not a stop condition (purchase, reply, click or opt_out)', x));
        END IF;
    END LOOP;
    IF NEW.stop_on IS NULL THEN
        PERFORM lifecycle._bad_argument(what || ', stop_on', 'must not be NULL (''{}'': none)');
    END IF;
    IF NEW.min_churn_risk < 0 OR NEW.min_churn_risk > 1 OR NEW.min_churn_risk = 'NaN' THEN
        PERFORM lifecycle._bad_argument(what || ', min_churn_risk',
            format('must be between 0 and 1, got %s', NEW.min_churn_risk));
    END IF;
    IF NEW.holdout_share IS NULL OR NOT (NEW.holdout_share >= 0 AND NEW.holdout_share < 1) THEN
        PERFORM lifecycle._bad_argument(what || ', holdout_share',
            format('must be at least 0 and less than 1, got %s', coalesce(NEW.holdout_share::text, 'NULL')));
    END IF;
    IF NEW.attribution_days IS NULL OR NEW.attribution_days < 1 THEN
        PERFORM lifecycle._bad_argument(what || ', attribution_days',
            format('must be at least 1, got %s', coalesce(NEW.attribution_days::text, 'NULL')));
    END IF;
    IF NEW.enabled IS NULL THEN
        PERFORM lifecycle._bad_argument(what || ', enabled', 'must not be NULL');
    END IF;
    -- A user's row with a shipped playbook's name takes its place (its steps stay).
    IF TG_OP = 'INSERT' AND EXISTS (SELECT FROM lifecycle.playbooks p
                                    WHERE p.name = NEW.name AND p.builtin) THEN
        UPDATE lifecycle.playbooks p
        SET trigger = NEW.trigger, to_stages = NEW.to_stages, segments = NEW.segments,
            value_tiers = NEW.value_tiers, min_churn_risk = NEW.min_churn_risk,
            stop_on = NEW.stop_on, holdout_share = NEW.holdout_share,
            attribution_days = NEW.attribution_days, enabled = NEW.enabled,
            description = NEW.description
        WHERE p.name = NEW.name;
        RETURN NULL;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
CREATE TRIGGER playbooks_check BEFORE INSERT OR UPDATE ON lifecycle.playbooks
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_playbook();

CREATE FUNCTION lifecycle._check_playbook_step() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    what text := format('step %s of playbook %L', NEW.step, NEW.playbook);
BEGIN
    IF NEW.step IS NULL OR NEW.step < 1 THEN
        PERFORM lifecycle._bad_argument(format('playbook %L, step', NEW.playbook),
            format('must be at least 1, got %s', coalesce(NEW.step::text, 'NULL')));
    END IF;
    IF NEW.delay IS NULL OR NEW.delay < interval '0' THEN
        PERFORM lifecycle._bad_argument(what || ', delay',
            format('must not be negative, got %s', coalesce(NEW.delay::text, 'NULL')));
    END IF;
    PERFORM lifecycle._check_channel(what || ', channel', NEW.channel);
    IF NEW.kind IS NULL OR NEW.kind NOT IN ('message', 'sunset') THEN
        PERFORM lifecycle._bad_argument(what || ', kind',
            format('%L is not a kind of step (message or sunset)', NEW.kind));
    END IF;
    IF NEW.when_capped IS NULL OR NEW.when_capped NOT IN ('wait', 'skip') THEN
        PERFORM lifecycle._bad_argument(what || ', when_capped',
            format('must be wait or skip, got %L', NEW.when_capped));
    END IF;
    IF NEW.message_key IS NULL OR NEW.message_key = '' THEN
        PERFORM lifecycle._bad_argument(what || ', message_key', 'must not be empty');
    END IF;
    IF TG_OP = 'INSERT' THEN
        DELETE FROM lifecycle.playbook_steps s
        WHERE s.playbook = NEW.playbook AND s.step = NEW.step AND s.builtin;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
CREATE TRIGGER playbook_steps_check BEFORE INSERT OR UPDATE ON lifecycle.playbook_steps
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_playbook_step();

CREATE FUNCTION lifecycle._check_contact_policy() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    what text := format('contact policy %L', NEW.name);
BEGIN
    IF NEW.channel IS NOT NULL THEN
        PERFORM lifecycle._check_channel(what || ', channel', NEW.channel);
    END IF;
    IF NEW.stage IS NOT NULL THEN
        PERFORM lifecycle._check_stage(what || ', stage', NEW.stage);
    END IF;
    IF NEW.value_tier IS NOT NULL THEN
        PERFORM lifecycle._check_value_tier(what || ', value_tier', NEW.value_tier);
    END IF;
    IF NEW.max_messages < 1 THEN
        PERFORM lifecycle._bad_argument(what || ', max_messages',
            format('must be at least 1, got %s (to stop a channel, take away consent or the steps)',
                   NEW.max_messages));
    END IF;
    IF (NEW.max_messages IS NULL) <> (NEW.per IS NULL) THEN
        PERFORM lifecycle._bad_argument(what || ', per', 'max_messages and per go together');
    END IF;
    IF NEW.per <= interval '0' THEN
        PERFORM lifecycle._bad_argument(what || ', per', format('must be positive, got %s', NEW.per));
    END IF;
    IF NEW.min_gap <= interval '0' THEN
        PERFORM lifecycle._bad_argument(what || ', min_gap',
            format('must be positive, got %s', NEW.min_gap));
    END IF;
    IF NEW.max_messages IS NULL AND NEW.min_gap IS NULL THEN
        PERFORM lifecycle._bad_argument(what, 'sets neither max_messages nor min_gap');
    END IF;
    IF TG_OP = 'INSERT' THEN
        DELETE FROM lifecycle.contact_policy p WHERE p.name = NEW.name AND p.builtin;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
CREATE TRIGGER contact_policy_check BEFORE INSERT OR UPDATE ON lifecycle.contact_policy
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_contact_policy();

CREATE FUNCTION lifecycle._check_channel_row() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM lifecycle._check_code('channel', NEW.channel);
    IF (NEW.quiet_from IS NULL) <> (NEW.quiet_until IS NULL) THEN
        PERFORM lifecycle._bad_argument(format('channel %L, quiet_until', NEW.channel),
                                        'quiet_from and quiet_until go together');
    END IF;
    IF NEW.quiet_from = NEW.quiet_until THEN
        PERFORM lifecycle._bad_argument(format('channel %L, quiet_until', NEW.channel),
                                        'an empty quiet window: leave both NULL');
    END IF;
    IF TG_OP = 'INSERT' AND EXISTS (SELECT FROM lifecycle.channels c
                                    WHERE c.channel = NEW.channel AND c.builtin) THEN
        UPDATE lifecycle.channels c
        SET quiet_from = NEW.quiet_from, quiet_until = NEW.quiet_until, description = NEW.description
        WHERE c.channel = NEW.channel;
        RETURN NULL;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
CREATE TRIGGER channels_check BEFORE INSERT OR UPDATE ON lifecycle.channels
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_channel_row();

CREATE FUNCTION lifecycle._check_churn_reason() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM lifecycle._check_code('code', NEW.code);
    IF TG_OP = 'INSERT' AND EXISTS (SELECT FROM lifecycle.churn_reasons r
                                    WHERE r.code = NEW.code AND r.builtin) THEN
        UPDATE lifecycle.churn_reasons r SET description = NEW.description WHERE r.code = NEW.code;
        RETURN NULL;
    END IF;
    NEW.builtin := false;
    RETURN NEW;
END
$$;
CREATE TRIGGER churn_reasons_check BEFORE INSERT OR UPDATE ON lifecycle.churn_reasons
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_churn_reason();

-- Whether PostgreSQL knows time zone `zone` (a name or a POSIX specification).
CREATE FUNCTION lifecycle._valid_time_zone(zone text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM now() AT TIME ZONE zone;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END
$$;

-- A contact's time zone must be one PostgreSQL knows.
CREATE FUNCTION lifecycle._check_contact() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.time_zone IS NOT NULL AND NOT lifecycle._valid_time_zone(NEW.time_zone) THEN
        PERFORM lifecycle._bad_argument('time_zone', format('unknown time zone %L', NEW.time_zone));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER contacts_check BEFORE INSERT OR UPDATE ON lifecycle.contacts
    FOR EACH ROW EXECUTE FUNCTION lifecycle._check_contact();
------------------------------------------------------------------------------------
-- Tracking sources and capturing their changes. Who may do what is in privileges.sql
-- and docs/security.md: track(), untrack() and resync() are gates in C that check the
-- caller owns the table and then run _track(), _untrack() and _resync() as the
-- extension's owner; those are executable by no one else.
------------------------------------------------------------------------------------

-- Whether a column of type `type` may be tracked as the source's 'customer', 'time' or
-- 'amount': built-in types only (see src/pg/source_reader.cpp).
CREATE FUNCTION lifecycle._allowed_type(kind text, type regtype) RETURNS boolean
AS 'MODULE_PATHNAME', 'lifecycle_allowed_type' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Whether the columns source `s` tracks are still there with the types they had at
-- track(). DDL that would change them is refused (see _on_ddl below); this is the check
-- for when event triggers did not run.
CREATE FUNCTION lifecycle._columns_intact(s lifecycle.sources) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT count(*) FROM pg_attribute a
        WHERE a.attrelid = s.source AND a.attnum > 0 AND NOT a.attisdropped
          AND (a.attname, a.atttypid) IN ((s.customer_column, s.customer_type),
                                          (s.time_column, s.time_type),
                                          (s.amount_column, s.amount_type)))
       = CASE WHEN s.amount_column IS NULL THEN 2 ELSE 3 END;

-- Statement-level trigger on a tracked source: queues the customers of the changed rows,
-- read from the transition tables. Runs as the extension's owner so writers need no
-- rights on lifecycle's tables; so it trusts nothing but lifecycle.sources: the source is
-- found by the trigger's table, and a table that is not tracked queues nothing (anyone
-- may attach this function to a table of their own). The expressions it evaluates over
-- the rows are casts of built-in types to text, date and double precision, checked on
-- every call: should a tracked column have changed (event triggers off), it queues a
-- full recomputation instead, which refresh() then refuses with a clear ERROR, rather
-- than failing the application's write.
CREATE FUNCTION lifecycle._capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s lifecycle.sources;
BEGIN
    SELECT * INTO s FROM lifecycle.sources WHERE source = TG_RELID;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'TRUNCATE' OR NOT lifecycle._columns_intact(s) THEN
        INSERT INTO lifecycle.change_queue (source_id, customer) VALUES (s.id, NULL);
    ELSIF TG_OP = 'INSERT' THEN
        EXECUTE format('INSERT INTO lifecycle.change_queue (source_id, customer, day, spend)
                        SELECT %s, c::text, d, sum(a)
                        FROM (SELECT %I AS c, %s AS d, %s AS a FROM lifecycle_new) AS n
                        WHERE c IS NOT NULL AND d IS NOT NULL GROUP BY c, d',
                       s.id, s.customer_column, lifecycle._day_sql(s), lifecycle._amount_sql(s));
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('INSERT INTO lifecycle.change_queue (source_id, customer)
                        SELECT DISTINCT %s, %I::text FROM lifecycle_old WHERE %I IS NOT NULL',
                       s.id, s.customer_column, s.customer_column);
    ELSE
        EXECUTE format('INSERT INTO lifecycle.change_queue (source_id, customer)
                        SELECT %s, c FROM (SELECT %I::text FROM lifecycle_new
                                           UNION SELECT %I::text FROM lifecycle_old) AS u (c)
                        WHERE c IS NOT NULL',
                       s.id, s.customer_column, s.customer_column);
    END IF;
    RETURN NULL;
END
$$;

-- How a source's time column becomes a day, as SQL over the column (the capture
-- trigger's form; src/pg/source_reader.cpp builds the same for reads).
CREATE FUNCTION lifecycle._day_sql(s lifecycle.sources) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE s.time_type
    WHEN 'date'::regtype THEN format('%I', s.time_column)
    WHEN 'timestamp with time zone'::regtype THEN
        format('(%I AT TIME ZONE %L)::date', s.time_column, s.time_zone)
    ELSE format('%I::date', s.time_column)
END;

-- A source's amount as SQL (NULL when it has none; format's %I refuses a NULL name).
CREATE FUNCTION lifecycle._amount_sql(s lifecycle.sources) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN s.amount_column IS NULL THEN 'NULL::double precision'
            ELSE format('%I::double precision', s.amount_column) END;

-- Starts following an orders table: checks the table and its columns, installs the
-- triggers and fills the stage table (each customer's stage is logged as an 'initial'
-- transition, without NOTIFY). Returns the source's id. Only the table's owner may
-- (the gate checks it); the work is done by _track as the extension's owner.
CREATE FUNCTION lifecycle.track(source regclass, customer_column name, time_column name,
                                amount_column name DEFAULT NULL, policy text DEFAULT 'default')
RETURNS integer
AS 'MODULE_PATHNAME', 'lifecycle_owner_gate' LANGUAGE C;

CREATE FUNCTION lifecycle._track(tab regclass, customer_col name, time_col name,
                                 amount_col name, policy_name text)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s lifecycle.sources;
    trig text;
BEGIN
    PERFORM lifecycle._lock_refresh();
    IF NOT EXISTS (SELECT FROM lifecycle.policies p WHERE p.name = policy_name) THEN
        RAISE EXCEPTION 'argument "policy": no policy named "%"', policy_name
            USING ERRCODE = '22023', HINT = 'The policies are in lifecycle.policies.';
    END IF;
    IF EXISTS (SELECT FROM lifecycle.sources t WHERE t.source = tab) THEN
        RAISE EXCEPTION 'argument "source": % is tracked already', tab
            USING ERRCODE = '42710', HINT = 'Call lifecycle.untrack first to change how.';
    END IF;
    PERFORM lifecycle._check_trackable(tab);
    s.customer_type := lifecycle._column_type(tab, customer_col, 'customer_column', 'customer');
    s.time_type := lifecycle._column_type(tab, time_col, 'time_column', 'time');
    IF amount_col IS NOT NULL THEN
        s.amount_type := lifecycle._column_type(tab, amount_col, 'amount_column', 'amount');
    END IF;
    INSERT INTO lifecycle.sources (source, customer_column, time_column, amount_column,
                                   customer_type, time_type, amount_type, time_zone, policy,
                                   tracked_on)
    VALUES (tab, customer_col, time_col, amount_col, s.customer_type, s.time_type,
            s.amount_type, current_setting('TimeZone'), policy_name, lifecycle.engine_date())
    RETURNING * INTO s;
    -- ENABLE ALWAYS: rows written with session_replication_role = replica are captured too.
    FOREACH trig IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT
                        EXECUTE FUNCTION lifecycle._capture()',
                       'lifecycle_capture_' || trig, upper(trig), tab,
                       CASE trig WHEN 'insert' THEN 'REFERENCING NEW TABLE AS lifecycle_new'
                                 WHEN 'update' THEN 'REFERENCING OLD TABLE AS lifecycle_old
                                                     NEW TABLE AS lifecycle_new'
                                 WHEN 'delete' THEN 'REFERENCING OLD TABLE AS lifecycle_old'
                                 ELSE '' END);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', tab, 'lifecycle_capture_' || trig);
    END LOOP;
    IF NOT EXISTS (SELECT FROM pg_index i JOIN pg_attribute a
                       ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = tab AND a.attname = customer_col) THEN
        RAISE NOTICE 'no index on %(%): each refresh will scan the table',
            tab, quote_ident(customer_col)
            USING HINT = format('CREATE INDEX ON %s (%I);', tab, customer_col);
    END IF;
    PERFORM lifecycle._collect_all(s, s.tracked_on);
    PERFORM lifecycle._write_stages(s, s.tracked_on, 'initial');
    PERFORM lifecycle._rescore(s.id, s.tracked_on);
    RETURN s.id;
END
$$;

-- A table the engine can follow without gaps: a plain table, not a partition, neither an
-- inheritance child nor a parent (the capture triggers are statement triggers on this
-- table: rows written through a parent or into a child would not fire them).
-- Partitioned tables are refused for the same reason; track each partition instead.
CREATE FUNCTION lifecycle._check_trackable(tab regclass) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c pg_class;
BEGIN
    SELECT * INTO c FROM pg_class WHERE oid = tab;
    IF c.relkind = 'p' THEN
        RAISE EXCEPTION 'argument "source": % is a partitioned table', tab
            USING ERRCODE = '0A000', HINT = 'Track its partitions one by one.';
    ELSIF c.relkind <> 'r' THEN
        RAISE EXCEPTION 'argument "source": % is not a table', tab USING ERRCODE = '42809';
    ELSIF c.relispartition THEN
        RAISE EXCEPTION 'argument "source": % is a partition', tab
            USING ERRCODE = '0A000',
                  HINT = 'Rows written through its parent would not be captured; detach it first.';
    ELSIF EXISTS (SELECT FROM pg_inherits WHERE inhparent = tab) THEN
        RAISE EXCEPTION 'argument "source": % has inheritance children', tab
            USING ERRCODE = '0A000', HINT = 'Rows written into the children would not be captured.';
    ELSIF EXISTS (SELECT FROM pg_inherits WHERE inhrelid = tab) THEN
        RAISE EXCEPTION 'argument "source": % inherits from another table', tab
            USING ERRCODE = '0A000',
                  HINT = 'Rows updated or deleted through its parent would not be captured.';
    END IF;
END
$$;

-- The type of column `col` of `tab`, which must be one the engine may track as `kind`,
-- or an ERROR naming the argument.
CREATE FUNCTION lifecycle._column_type(tab regclass, col name, argument text, kind text)
RETURNS regtype
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t regtype;
BEGIN
    SELECT atttypid INTO t FROM pg_attribute
    WHERE attrelid = tab AND attname = col AND attnum > 0 AND NOT attisdropped;
    IF t IS NULL THEN
        RAISE EXCEPTION 'argument "%": % has no column %', argument, tab, quote_ident(col)
            USING ERRCODE = '42703';
    END IF;
    IF NOT lifecycle._allowed_type(kind, t) THEN
        RAISE EXCEPTION 'argument "%": column % of % is of type %, which the engine cannot track',
            argument, quote_ident(col), tab, t
            USING ERRCODE = '42804',
                  HINT = CASE kind
                      WHEN 'customer' THEN 'Customer ids must be smallint, integer, bigint, text, varchar or uuid.'
                      WHEN 'time' THEN 'The time must be a date, timestamp or timestamptz.'
                      ELSE 'Amounts must be numeric, real, double precision, smallint, integer or bigint.' END
                  || ' Domains and user-defined types are refused: their code would run inside the engine.';
    END IF;
    RETURN t;
END
$$;

-- Stops following a source: drops its triggers and its rows in the engine's tables.
CREATE FUNCTION lifecycle.untrack(source regclass) RETURNS void
AS 'MODULE_PATHNAME', 'lifecycle_owner_gate' LANGUAGE C;

CREATE FUNCTION lifecycle._untrack(tab regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    trig text;
    sid integer;
BEGIN
    PERFORM lifecycle._lock_refresh();
    SELECT t.id INTO sid FROM lifecycle.sources t WHERE t.source = tab;
    IF sid IS NULL THEN
        RAISE EXCEPTION 'argument "source": % is not tracked', tab USING ERRCODE = '22023';
    END IF;
    FOREACH trig IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', 'lifecycle_capture_' || trig, tab);
    END LOOP;
    PERFORM lifecycle._forget_source(sid);
END
$$;

-- Removes source `sid` and everything the engine keeps of it.
CREATE FUNCTION lifecycle._forget_source(sid integer) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    DELETE FROM lifecycle.change_queue q WHERE q.source_id = sid;
    DELETE FROM lifecycle.customer_stage c WHERE c.source_id = sid;
    DELETE FROM lifecycle.transitions t WHERE t.source_id = sid;
    -- the playbooks' records of its customers (consent included: nothing is due without it)
    DELETE FROM lifecycle.action_outcomes o
    WHERE o.action_id IN (SELECT a.id FROM lifecycle.actions a WHERE a.source_id = sid);
    DELETE FROM lifecycle.actions a WHERE a.source_id = sid;
    DELETE FROM lifecycle.playbook_log l
    WHERE l.enrollment_id IN (SELECT e.id FROM lifecycle.enrollments e WHERE e.source_id = sid);
    DELETE FROM lifecycle.enrollments e WHERE e.source_id = sid;
    DELETE FROM lifecycle.consent c WHERE c.source_id = sid;
    DELETE FROM lifecycle.consent_log c WHERE c.source_id = sid;
    DELETE FROM lifecycle.contacts c WHERE c.source_id = sid;
    DELETE FROM lifecycle.customer_reasons r WHERE r.source_id = sid;
    DELETE FROM lifecycle.sources t WHERE t.id = sid;
END;

-- Recomputes every customer of a source from the table and logs each stage that differs
-- from the stage table as a 'correction' transition (announced like any other). The
-- remedy after any gap in capture: a restore, a replication apply, triggers disabled.
-- Returns the number of corrections.
CREATE FUNCTION lifecycle.resync(source regclass) RETURNS bigint
AS 'MODULE_PATHNAME', 'lifecycle_owner_gate' LANGUAGE C;

CREATE FUNCTION lifecycle._resync(tab regclass) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s lifecycle.sources;
    as_of date := lifecycle.engine_date();
    last_id bigint;
    corrections bigint;
BEGIN
    PERFORM lifecycle._lock_refresh();
    SELECT * INTO s FROM lifecycle.sources t WHERE t.source = tab;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'argument "source": % is not tracked', tab USING ERRCODE = '22023';
    END IF;
    SELECT coalesce(max(id), 0) INTO last_id FROM lifecycle.transitions;
    PERFORM lifecycle._collect_all(s, as_of);
    corrections := lifecycle._write_stages(s, as_of, 'correction');
    PERFORM lifecycle._rescore(s.id, as_of);
    PERFORM lifecycle._announce(last_id);
    RETURN corrections;
END
$$;

------------------------------------------------------------------------------------
-- DDL on tracked tables (event triggers)
------------------------------------------------------------------------------------

-- A dropped source is untracked (its triggers went with it). (Dropping a tracked column
-- is refused by _on_ddl, at the end of the ALTER TABLE.)
CREATE FUNCTION lifecycle._on_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM lifecycle._forget_source(s.id)
    FROM pg_event_trigger_dropped_objects() o JOIN lifecycle.sources s ON s.source = o.objid
    WHERE o.classid = 'pg_class'::regclass AND o.objsubid = 0;
END
$$;
CREATE EVENT TRIGGER lifecycle_on_drop ON sql_drop EXECUTE FUNCTION lifecycle._on_drop();

-- After ALTER TABLE (or a CREATE TABLE that inherits or attaches): every tracked table
-- must still have its columns with their types, be a plain table, not a partition and
-- neither an inheritance child nor a parent; otherwise the DDL is refused, rather than
-- the application's later writes failing or rows going uncaptured. Capture triggers
-- re-enabled the ordinary way (ENABLE TRIGGER, which fires them only for origin writes)
-- are set back to ENABLE ALWAYS; disabled ones are left as the DBA chose (resync()
-- repairs the gap).
CREATE FUNCTION lifecycle._on_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s lifecycle.sources;
    trig name;
BEGIN
    FOR s IN SELECT t.* FROM lifecycle.sources t
             WHERE EXISTS (SELECT FROM pg_class c WHERE c.oid = t.source) LOOP
        IF NOT lifecycle._columns_intact(s) THEN
            RAISE EXCEPTION 'a column that lifecycle tracks in % was renamed, dropped or retyped',
                s.source
                USING ERRCODE = '0A000',
                      HINT = format('Call lifecycle.untrack(%L) first, then track the table again.',
                                    s.source::text);
        END IF;
        BEGIN
            PERFORM lifecycle._check_trackable(s.source);
        EXCEPTION WHEN feature_not_supported OR wrong_object_type THEN
            RAISE EXCEPTION 'lifecycle tracks %, which this would make a partition, an inheritance child or parent, or not a table',
                s.source
                USING ERRCODE = '0A000',
                      HINT = format('Call lifecycle.untrack(%L) first.', s.source::text);
        END;
        FOR trig IN SELECT t.tgname FROM pg_trigger t
                    WHERE t.tgrelid = s.source AND t.tgname LIKE 'lifecycle\_capture\_%'
                      AND t.tgenabled IN ('O', 'R') LOOP
            EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', s.source, trig);
        END LOOP;
    END LOOP;
END
$$;
CREATE EVENT TRIGGER lifecycle_on_ddl ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
    EXECUTE FUNCTION lifecycle._on_ddl();
------------------------------------------------------------------------------------
-- Refresh
------------------------------------------------------------------------------------

-- One refresh at a time per database: the transitions' ids then follow commit order,
-- which is what lets a listener catch up with "WHERE id > last seen". The lock is on a
-- table of the extension's that only the worker's role and superusers can lock (an
-- advisory lock could be taken, and held, by any role). The worker takes it before its
-- tick's snapshot, so it never waits holding one (src/worker/refresh_worker.cpp).
CREATE FUNCTION lifecycle._lock_refresh() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    LOCK TABLE lifecycle.refresh_lock IN EXCLUSIVE MODE;
END
$$;

-- The scratch table of one refresh (per session, emptied at commit): per customer looked
-- at, its old row (known, old_*), whether it is recomputed from the
-- source (else its queued days are added to the old history) and its new history.
CREATE FUNCTION lifecycle._work_table() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_temp.lifecycle_work') IS NOT NULL THEN
        RETURN;
    END IF;
    CREATE TEMP TABLE lifecycle_work (
        customer text COLLATE "C" PRIMARY KEY, recompute boolean NOT NULL, known boolean NOT NULL,
        old_stage lifecycle.stage, old_last date, old_spend double precision,
        gone boolean NOT NULL DEFAULT false,
        row_id tid,  -- where the customer's row is: written back without a second index probe
        first_purchase date, last_purchase date, purchases bigint, spend double precision,
        next_order date)
        ON COMMIT DELETE ROWS;
    -- Whoever created it in this session (a superuser's track(), the worker's role), the
    -- other may use it: it is this session's alone.
    GRANT ALL ON pg_temp.lifecycle_work TO PUBLIC;
END
$$;

-- The purchase histories of customers of tracked source `source_id` (all of them when
-- `customers` is NULL), read as the table's owner in the caller's snapshot; see
-- src/pg/source_reader.cpp.
CREATE FUNCTION lifecycle._source_histories(source_id integer, customers text[], as_of date)
RETURNS TABLE (customer text, first_purchase date, last_purchase date, purchases bigint,
               spend double precision, first_day_spend double precision, next_order date)
AS 'MODULE_PATHNAME', 'lifecycle_source_histories' LANGUAGE C VOLATILE;

-- Recomputes from source `s`, as of `as_of`, the purchase histories of the customers in
-- lifecycle_work marked recompute, or of every customer when `all_customers` (adding
-- them). In the same statement (one snapshot: the source is read in the statement's
-- snapshot) it deletes the queue rows of those customers: an order this read sees has
-- its queue row deleted with it, and an order it does not see keeps its queue row for
-- the next refresh. Nothing is counted twice or missed. Customers with no order left are
-- marked gone.
CREATE FUNCTION lifecycle._recompute_from_source(s lifecycle.sources, as_of date,
                                                 all_customers boolean)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE pg_temp.lifecycle_work
    SET first_purchase = NULL, last_purchase = NULL, purchases = NULL, spend = NULL
    WHERE recompute;
    WITH seen AS (
        DELETE FROM lifecycle.change_queue q
        WHERE q.source_id = s.id
          AND (all_customers OR q.customer IN (SELECT w.customer FROM pg_temp.lifecycle_work w
                                               WHERE w.recompute))
    ), fresh AS (
        SELECT * FROM lifecycle._source_histories(
            s.id,
            CASE WHEN NOT all_customers
                 THEN ARRAY(SELECT w.customer FROM pg_temp.lifecycle_work w WHERE w.recompute) END,
            as_of)
    )
    INSERT INTO pg_temp.lifecycle_work AS w (customer, recompute, known, first_purchase,
                                             last_purchase, purchases, spend, next_order)
    SELECT f.customer, true, false, f.first_purchase, f.last_purchase, f.purchases, f.spend,
           f.next_order
    FROM fresh f
    ON CONFLICT (customer) DO UPDATE SET
        first_purchase = excluded.first_purchase, last_purchase = excluded.last_purchase,
        purchases = excluded.purchases, spend = excluded.spend, next_order = excluded.next_order;
    UPDATE pg_temp.lifecycle_work SET gone = true WHERE recompute AND purchases IS NULL;
END
$$;

-- Every customer of source `s` into lifecycle_work, recomputed (at track(), and after a
-- TRUNCATE).
CREATE FUNCTION lifecycle._collect_all(s lifecycle.sources, as_of date) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = on SET enable_mergejoin = on AS $$
BEGIN
    PERFORM lifecycle._work_table();
    TRUNCATE pg_temp.lifecycle_work;
    INSERT INTO pg_temp.lifecycle_work (customer, recompute, known, old_stage, old_last,
                                        old_spend, row_id)
    SELECT customer, true, true, stage, last_purchase, spend, ctid
    FROM lifecycle.customer_stage WHERE source_id = s.id;
    PERFORM lifecycle._recompute_from_source(s, as_of, true);
END
$$;

-- Takes up to `budget` queue rows of source `s` and works out the new purchase histories
-- of their customers into lifecycle_work. Queued purchase days after the last known one
-- (or before the first) are simply added; anything else (an UPDATE, a DELETE, a day
-- between the first and last purchase, a day after as_of, an order that came due) is
-- recomputed from the source. When the queue held a TRUNCATE every customer is gathered.
CREATE FUNCTION lifecycle._collect_queued(s lifecycle.sources, as_of date, budget bigint)
RETURNS void
-- Index lookups, whatever the planner guesses of the scratch tables: the cost must follow
-- the number of changed customers, not the size of the stage table.
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    truncated boolean;
BEGIN
    PERFORM lifecycle._work_table();
    TRUNCATE pg_temp.lifecycle_work;
    -- The oldest `budget` queue rows: everything up to the budget-th id (a range of the
    -- primary key, read in order, rather than `budget` separate lookups).
    WITH taken AS (
        DELETE FROM lifecycle.change_queue q
        WHERE q.source_id = s.id
          AND q.id <= coalesce((SELECT id FROM lifecycle.change_queue WHERE source_id = s.id
                                ORDER BY id OFFSET budget - 1 LIMIT 1), 9223372036854775807)
        RETURNING q.customer, q.day, q.spend
    ), gathered AS (
        INSERT INTO pg_temp.lifecycle_work (customer, recompute, known, old_stage, old_last,
                                            old_spend, row_id, first_purchase, last_purchase,
                                            purchases, spend)
        SELECT q.customer,
               coalesce(bool_or(q.day IS NULL OR q.day > as_of OR c.next_order IS NOT NULL
                                OR (q.day > c.first_purchase AND q.day < c.last_purchase)), false),
               c.customer IS NOT NULL, c.stage, c.last_purchase, c.spend, c.ctid,
               least(c.first_purchase, min(q.day)), greatest(c.last_purchase, max(q.day)),
               coalesce(c.purchases, 0) + count(DISTINCT q.day) FILTER (
                   WHERE c.customer IS NULL OR q.day < c.first_purchase OR q.day > c.last_purchase),
               CASE WHEN c.spend IS NULL AND sum(q.spend) IS NULL THEN NULL
                    ELSE coalesce(c.spend, 0) + coalesce(sum(q.spend), 0) END
        -- in the index's order: neighbouring customers share pages, which stay in cache
        FROM (SELECT * FROM taken WHERE customer IS NOT NULL ORDER BY customer) AS q
        LEFT JOIN lifecycle.customer_stage c ON c.source_id = s.id AND c.customer = q.customer
        GROUP BY q.customer, c.customer, c.ctid, c.stage, c.first_purchase, c.last_purchase,
                 c.purchases, c.spend, c.next_order)
    SELECT coalesce(bool_or(customer IS NULL), false) INTO truncated FROM taken;
    IF truncated THEN
        PERFORM lifecycle._collect_all(s, as_of);
        RETURN;
    END IF;
    -- Customers whose order dated in the future has come due.
    INSERT INTO pg_temp.lifecycle_work (customer, recompute, known, old_stage, old_last,
                                        old_spend, row_id)
    SELECT customer, true, true, stage, last_purchase, spend, ctid FROM lifecycle.customer_stage
    WHERE source_id = s.id AND next_change <= as_of AND next_order <= as_of
    ON CONFLICT (customer) DO UPDATE SET recompute = true;
    IF EXISTS (SELECT FROM pg_temp.lifecycle_work WHERE recompute) THEN
        PERFORM lifecycle._recompute_from_source(s, as_of, false);
    END IF;
END
$$;

-- Writes the histories in lifecycle_work in one statement: each customer's stage as of
-- `as_of` and next change, computed as its row is written; customers with no order left
-- removed; and a transition for each stage that changed (cause `forced_cause`, or when NULL
-- 'purchase' if the last purchase moved forward and 'correction' otherwise), from the old
-- stage kept in lifecycle_work. Returns the number of transitions.
CREATE FUNCTION lifecycle._write_stages(s lifecycle.sources, as_of date, forced_cause text) RETURNS bigint
-- Index lookups, whatever the planner guesses of the scratch tables: the cost must follow
-- the number of changed customers, not the size of the stage table.
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    logged bigint;
    model lifecycle.models := (SELECT k FROM lifecycle.models k WHERE is_current);
    horizon integer := lifecycle._churn_horizon(model, s.policy);
BEGIN
    WITH fresh AS (
        SELECT w.*, x.stage AS new_stage, x.next_change AS new_next_change,
               lifecycle._rfm_of(w.first_purchase, w.last_purchase, w.purchases, w.spend, as_of,
                                 s.rfm_breakpoints) AS rfm,
               lifecycle._churn_risk(model, w.first_purchase, w.last_purchase, w.purchases, as_of,
                                     horizon) AS churn_risk,
               lifecycle._expected_value(model, w.first_purchase, w.last_purchase, w.purchases,
                                         w.spend, as_of) AS expected_value
        FROM pg_temp.lifecycle_work w
        CROSS JOIN LATERAL (
            SELECT CASE WHEN w.purchases > 0
                        THEN lifecycle.lifecycle_stage(w.first_purchase, w.last_purchase,
                                                       w.purchases, as_of, s.policy)
                        ELSE 'prospect' END AS stage,
                   CASE WHEN w.purchases > 0
                        THEN least(w.next_order,
                                   lifecycle.next_stage_change(w.first_purchase, w.last_purchase,
                                                               w.purchases, as_of, s.policy))
                        ELSE w.next_order END AS next_change) AS x
        WHERE NOT w.gone
    ), changed AS (
        UPDATE lifecycle.customer_stage c
        SET first_purchase = f.first_purchase, last_purchase = f.last_purchase,
            purchases = f.purchases, spend = f.spend, stage = f.new_stage,
            stage_since = CASE WHEN c.stage = f.new_stage THEN c.stage_since ELSE as_of END,
            next_change = f.new_next_change, next_order = f.next_order,
            r = (f.rfm).r, f = (f.rfm).f, m = (f.rfm).m, segment = (f.rfm).segment,
            churn_risk = f.churn_risk, expected_value = f.expected_value, updated_at = now()
        FROM fresh f
        WHERE f.known AND c.ctid = f.row_id
        RETURNING f.customer, f.old_stage, f.new_stage, f.old_last, f.last_purchase, f.purchases
    ), added AS (
        INSERT INTO lifecycle.customer_stage
            (source_id, customer, first_purchase, last_purchase, purchases, spend, stage,
             stage_since, next_change, next_order, r, f, m, segment, churn_risk, expected_value)
        SELECT s.id, f.customer, f.first_purchase, f.last_purchase, f.purchases, f.spend,
               f.new_stage, as_of, f.new_next_change, f.next_order, (f.rfm).r, (f.rfm).f,
               (f.rfm).m, (f.rfm).segment, f.churn_risk, f.expected_value
        FROM fresh f WHERE NOT f.known
        RETURNING customer, NULL::lifecycle.stage, stage, NULL::date, last_purchase, purchases
    ), removed AS (
        DELETE FROM lifecycle.customer_stage c
        USING pg_temp.lifecycle_work w
        WHERE w.gone AND w.known AND c.ctid = w.row_id
        RETURNING c.customer, c.stage, 'prospect'::lifecycle.stage, c.last_purchase, NULL::date,
                  0::bigint
    ), written (customer, old_stage, new_stage, old_last, new_last, purchases) AS (
        TABLE changed UNION ALL TABLE added UNION ALL TABLE removed
    )
    INSERT INTO lifecycle.transitions (source_id, customer, from_stage, to_stage, effective, cause)
    SELECT s.id, customer, coalesce(old_stage, 'prospect'), new_stage, as_of,
           coalesce(forced_cause,
                    CASE WHEN new_last > old_last OR (old_last IS NULL AND purchases > 0)
                         THEN 'purchase' ELSE 'correction' END)
    FROM written
    WHERE coalesce(old_stage, 'prospect') <> new_stage
    ORDER BY customer;
    GET DIAGNOSTICS logged = ROW_COUNT;
    RETURN logged;
END
$$;

-- A customer's RFM scores against the source's breakpoints (NULL before the first
-- rescoring, or without a purchase).
CREATE FUNCTION lifecycle._rfm_of(first date, last date, purchases bigint,
                                  spend double precision, as_of date,
                                  breakpoints lifecycle.rfm_breakpoints)
RETURNS lifecycle.rfm
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN purchases > 0 AND breakpoints IS NOT NULL
            THEN lifecycle.rfm_score(greatest(as_of - last, 0)::float8, purchases::float8,
                                     coalesce(spend, 0), breakpoints) END;

-- Moves customers whose next_change has come through their stages, one step at a time,
-- each logged with the day it took effect (cause 'time'). At most `budget` customers per
-- step. Customers with an order coming due are left to _collect_queued. Returns (customers
-- stepped, transitions logged).
CREATE FUNCTION lifecycle._step_time(s lifecycle.sources, as_of date, budget bigint,
                                     OUT stepped bigint, OUT logged bigint)
-- Each due row written back where it was read (by ctid), whatever the planner guesses:
-- with statistics from before a source was tracked it took the stage table for one row
-- and joined the due rows to it by a filter, quadratic in the customers stepped.
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    n bigint;
    t bigint;
BEGIN
    stepped := 0;
    logged := 0;
    FOR i IN 1 .. 8 LOOP   -- a customer passes at most 4 boundaries without buying
        WITH due AS (
            SELECT c.ctid AS row_id, c.customer, c.stage AS from_stage, c.next_change AS on_day,
                   lifecycle.lifecycle_stage(c.first_purchase, c.last_purchase, c.purchases,
                                             c.next_change, s.policy) AS to_stage,
                   lifecycle.next_stage_change(c.first_purchase, c.last_purchase, c.purchases,
                                               c.next_change, s.policy) AS next
            FROM lifecycle.customer_stage c
            WHERE c.source_id = s.id AND c.next_change <= as_of AND c.purchases > 0
              AND (c.next_order IS NULL OR c.next_order > c.next_change)
            ORDER BY c.next_change
            LIMIT budget
        ), moved AS (
            UPDATE lifecycle.customer_stage c
            SET stage = d.to_stage, next_change = least(d.next, c.next_order),
                stage_since = CASE WHEN d.to_stage = c.stage THEN c.stage_since ELSE d.on_day END,
                updated_at = now()
            FROM due d WHERE c.ctid = d.row_id
            RETURNING 1
        ), logged_rows AS (
            INSERT INTO lifecycle.transitions (source_id, customer, from_stage, to_stage,
                                               effective, cause)
            SELECT s.id, d.customer, d.from_stage, d.to_stage, d.on_day, 'time'
            FROM due d WHERE d.to_stage <> d.from_stage
            ORDER BY d.on_day, d.customer
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM logged_rows) INTO n, t;
        stepped := stepped + n;
        logged := logged + t;
        EXIT WHEN n = 0 OR stepped >= budget;
    END LOOP;
END
$$;

-- The scores that drift with time for everyone: RFM breakpoints and scores, churn risk
-- and expected value, recomputed over all the customers of source `src_id` every
-- lifecycle.rfm_interval (and after a new current model). A pass computes the breakpoints
-- when it starts (or when `restart`), then rescores customers in key order, at most
-- `budget` per call (NULL: all), so that a worker tick stays bounded; the pass's position
-- is kept in sources.rescore_from. Returns the rows changed and whether the pass ended.
CREATE FUNCTION lifecycle._rescore(src_id integer, as_of date, budget bigint DEFAULT NULL,
                                   restart boolean DEFAULT true,
                                   OUT changed bigint, OUT finished boolean)
-- Rows written back by ctid, as in _step_time: never a join by a filter.
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    s lifecycle.sources := (SELECT t FROM lifecycle.sources t WHERE t.id = src_id);
    model lifecycle.models := (SELECT k FROM lifecycle.models k WHERE is_current);
    horizon integer := lifecycle._churn_horizon(model, s.policy);
    taken bigint;
    upto text;
BEGIN
    IF restart OR NOT s.rescoring THEN
        -- (recency never below 0: a purchase after as_of only if lifecycle.as_of went back)
        s.rfm_breakpoints := (
            SELECT lifecycle.rfm_breakpoints(greatest(as_of - c.last_purchase, 0)::float8,
                                             c.purchases::float8, coalesce(c.spend, 0))
            FROM lifecycle.customer_stage c WHERE c.source_id = src_id AND c.purchases > 0);
        s.rescore_from := NULL;
        UPDATE lifecycle.sources t
        SET rfm_breakpoints = s.rfm_breakpoints, rescoring = true, rescore_from = NULL
        WHERE t.id = src_id;
    END IF;
    WITH batch AS (
        SELECT c.ctid AS row_id, c.customer,
               lifecycle._rfm_of(c.first_purchase, c.last_purchase, c.purchases, c.spend, as_of,
                                 s.rfm_breakpoints) AS rfm,
               lifecycle._churn_risk(model, c.first_purchase, c.last_purchase, c.purchases,
                                     as_of, horizon) AS churn_risk,
               lifecycle._expected_value(model, c.first_purchase, c.last_purchase, c.purchases,
                                         c.spend, as_of) AS expected_value
        FROM lifecycle.customer_stage c
        WHERE c.source_id = src_id AND (s.rescore_from IS NULL OR c.customer > s.rescore_from)
        ORDER BY c.customer
        LIMIT budget
    ), updated AS (
        UPDATE lifecycle.customer_stage c
        SET r = (x.rfm).r, f = (x.rfm).f, m = (x.rfm).m, segment = (x.rfm).segment,
            churn_risk = x.churn_risk, expected_value = x.expected_value
        FROM batch x
        WHERE c.ctid = x.row_id
          AND (c.r, c.f, c.m, c.segment, c.churn_risk, c.expected_value)
              IS DISTINCT FROM ((x.rfm).r, (x.rfm).f, (x.rfm).m, (x.rfm).segment, x.churn_risk,
                                x.expected_value)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM updated), (SELECT count(*) FROM batch),
           (SELECT max(customer) FROM batch)
    INTO changed, taken, upto;
    finished := budget IS NULL OR taken < budget;
    UPDATE lifecycle.sources t
    SET rescoring = NOT finished, rescore_from = CASE WHEN NOT finished THEN upto END,
        rfm_scored_at = CASE WHEN finished THEN now() ELSE t.rfm_scored_at END
    WHERE t.id = src_id;
END
$$;

-- Announces the transitions with id > after_id on the channel lifecycle.notify_channel.
-- With lifecycle.notify_payload = 'summary' (the default) one NOTIFY per source says
-- which transitions were logged: the source, the range of ids and the count per new
-- stage, and no customer id: LISTEN is open to every role, so listeners read the rows
-- from lifecycle.transitions under its privileges. With 'full', the transitions
-- themselves, in chunks under PostgreSQL's 8000-byte limit. Returns the number of
-- NOTIFYs.
CREATE FUNCTION lifecycle._announce(after_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    channel text := current_setting('lifecycle.notify_channel');
    payload text;
    sent integer := 0;
BEGIN
    IF current_setting('lifecycle.notify_payload') = 'full' THEN
        RETURN lifecycle._announce_full(channel, after_id);
    END IF;
    FOR payload IN
        WITH per_stage AS (
            SELECT t.source_id, t.to_stage, count(*) AS n, min(t.id) AS first_id,
                   max(t.id) AS last_id
            FROM lifecycle.transitions t
            WHERE t.id > after_id AND t.cause <> 'initial'
            GROUP BY t.source_id, t.to_stage
        )
        SELECT json_build_object('source', s.source::text, 'first_id', min(p.first_id),
                                 'last_id', max(p.last_id), 'transitions', sum(p.n),
                                 'to', json_object_agg(p.to_stage, p.n ORDER BY p.to_stage))::text
        FROM per_stage p JOIN lifecycle.sources s ON s.id = p.source_id
        GROUP BY p.source_id, s.source
        ORDER BY p.source_id
    LOOP
        PERFORM pg_notify(channel, payload);
        sent := sent + 1;
    END LOOP;
    RETURN sent;
END
$$;

-- The 'full' payloads: every transition with its customer, per source and chunk.
CREATE FUNCTION lifecycle._announce_full(channel text, after_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    chunk record;
    sent integer := 0;
BEGIN
    FOR chunk IN
        WITH items AS (
            SELECT t.id, t.source_id,
                   format('{"id":%s,"customer":%s,"from":"%s","to":"%s","cause":"%s","on":"%s"}',
                          t.id,
                          -- a very long id would not fit: the listener reads it from the log
                          CASE WHEN octet_length(t.customer) <= 200 THEN to_json(t.customer)::text
                               ELSE 'null' END,
                          t.from_stage, t.to_stage, t.cause, to_char(t.effective, 'YYYY-MM-DD'))
                       AS item
            FROM lifecycle.transitions t
            WHERE t.id > after_id AND t.cause <> 'initial'
        ), sized AS (
            SELECT *, sum(octet_length(item) + 1) OVER (PARTITION BY source_id ORDER BY id) / 7000
                      AS part
            FROM items
        )
        SELECT s.source::text AS source, string_agg(sized.item, ',' ORDER BY sized.id) AS list
        FROM sized JOIN lifecycle.sources s ON s.id = sized.source_id
        GROUP BY s.source, sized.source_id, part
        ORDER BY sized.source_id, part
    LOOP
        PERFORM pg_notify(channel, format('{"source":%s,"transitions":[%s]}',
                                          to_json(chunk.source), chunk.list));
        sent := sent + 1;
    END LOOP;
    RETURN sent;
END
$$;

CREATE TYPE lifecycle.refresh_result AS (
    sources       integer,          -- tracked sources looked at
    queued        bigint,           -- customers with changed orders
    due           bigint,           -- customers whose stage changed with time (steps)
    recomputed    bigint,           -- of those, customers recomputed from the source
    transitions   bigint,           -- rows added to the transitions log
    notifications integer,          -- NOTIFYs sent
    rfm_rescored  bigint,           -- customers whose RFM or model scores changed in a rescoring
    enrolled      bigint,           -- customers enrolled in playbooks (held out included)
    actions       bigint,           -- playbook actions made due
    more          boolean,          -- work was left for the next call
    elapsed_ms    double precision
);

-- Brings the stage table up to date, incrementally: per source, the customers whose
-- next_change has come (through the due index), then the customers in the change queue;
-- every stage change is logged and announced. At most max_customers of each per source
-- (NULL: all), and as many in a rescoring pass (started every lifecycle.rfm_interval).
-- Then the playbooks: purchases recorded against enrolments, customers enrolled from
-- the new transitions and the day's dates, at most max_customers due steps made into
-- actions, announced on lifecycle.actions_channel (src/engagement/schedule.sql).
-- Model refits are not done here: the worker runs them in transactions of their own.
CREATE FUNCTION lifecycle.refresh(max_customers integer DEFAULT NULL)
RETURNS lifecycle.refresh_result
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r lifecycle.refresh_result;
    started timestamptz := clock_timestamp();
    as_of date := lifecycle.engine_date();
    budget bigint := coalesce(max_customers, 9223372036854775807);
    last_id bigint;
    last_action bigint;
    s lifecycle.sources;
    queued bigint;
    recomputed bigint;
    stepped record;
    rescored record;
BEGIN
    IF max_customers < 1 THEN
        RAISE EXCEPTION 'argument "max_customers" must be at least 1, got %', max_customers
            USING ERRCODE = '22023';
    END IF;
    PERFORM lifecycle._lock_refresh();
    r := ROW(0, 0, 0, 0, 0, 0, 0, 0, 0, false, 0);
    SELECT coalesce(max(id), 0) INTO last_id FROM lifecycle.transitions;
    SELECT coalesce(max(id), 0) INTO last_action FROM lifecycle.actions;
    FOR s IN SELECT * FROM lifecycle.sources ORDER BY id LOOP
        IF NOT EXISTS (SELECT FROM pg_class WHERE oid = s.source) THEN
            -- dropped while event triggers were off (lifecycle_on_drop forgets it otherwise)
            PERFORM lifecycle._forget_source(s.id);
            CONTINUE;
        END IF;
        r.sources := r.sources + 1;
        stepped := lifecycle._step_time(s, as_of, budget);
        r.due := r.due + stepped.stepped;
        r.transitions := r.transitions + stepped.logged;
        PERFORM lifecycle._collect_queued(s, as_of, budget);
        SELECT count(*), count(*) FILTER (WHERE recompute) INTO queued, recomputed
        FROM pg_temp.lifecycle_work;
        IF queued > 0 THEN
            r.queued := r.queued + queued;
            r.recomputed := r.recomputed + recomputed;
            r.transitions := r.transitions + lifecycle._write_stages(s, as_of, NULL);
            PERFORM lifecycle._record_purchases(s);
        END IF;
        IF s.rescoring OR s.rfm_scored_at IS NULL OR s.rfm_scored_at
               < now() - current_setting('lifecycle.rfm_interval')::interval THEN
            rescored := lifecycle._rescore(s.id, as_of, max_customers, false);
            r.rfm_rescored := r.rfm_rescored + rescored.changed;
            r.more := r.more OR NOT rescored.finished;
        END IF;
        r.more := r.more
            OR EXISTS (SELECT FROM lifecycle.change_queue WHERE source_id = s.id)
            OR EXISTS (SELECT FROM lifecycle.customer_stage
                       WHERE source_id = s.id AND next_change <= as_of);
    END LOOP;
    r.enrolled := lifecycle._enroll(last_id) + lifecycle._enroll_dates(as_of);
    r.actions := lifecycle._schedule(budget);
    r.more := r.more OR EXISTS (SELECT FROM lifecycle.enrollments e
                                JOIN lifecycle.playbooks p ON p.name = e.playbook AND p.enabled
                                WHERE e.status = 'running'
                                  AND e.next_due_at <= lifecycle.engine_time());
    r.notifications := lifecycle._announce(last_id) + lifecycle._announce_actions(last_action);
    r.elapsed_ms := extract(epoch FROM clock_timestamp() - started) * 1000;
    RETURN r;
END
$$;

------------------------------------------------------------------------------------
-- The worker's side (src/worker/ runs these)
------------------------------------------------------------------------------------

-- One tick: a refresh of at most batch_size customers per source, recorded in
-- worker_state in the same transaction. Returns whether work is left.
CREATE FUNCTION lifecycle._worker_tick(batch_size integer) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r lifecycle.refresh_result := lifecycle.refresh(batch_size);
BEGIN
    INSERT INTO lifecycle.worker_state AS w (pid, ticks, last_tick_at, last_tick_ms,
                                             last_customers, last_transitions)
    VALUES (pg_backend_pid(), 1, now(), r.elapsed_ms, r.queued + r.due, r.transitions)
    ON CONFLICT (singleton) DO UPDATE SET
        pid = excluded.pid, ticks = w.ticks + 1, consecutive_errors = 0,
        last_tick_at = excluded.last_tick_at, last_tick_ms = excluded.last_tick_ms,
        last_customers = excluded.last_customers, last_transitions = excluded.last_transitions;
    RETURN r.more;
END
$$;

-- A tick failed (and was rolled back): count it and keep the message.
CREATE FUNCTION lifecycle._worker_failed(message text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO lifecycle.worker_state AS w (pid, errors, consecutive_errors, last_error,
                                             last_error_at)
    VALUES (pg_backend_pid(), 1, 1, message, now())
    ON CONFLICT (singleton) DO UPDATE SET
        pid = excluded.pid, errors = w.errors + 1, consecutive_errors = w.consecutive_errors + 1,
        last_error = excluded.last_error, last_error_at = excluded.last_error_at;
$$;

------------------------------------------------------------------------------------
-- The playbook scheduler: refresh() enrols customers from the transitions it logged and
-- from the day's dates, records purchases against enrolments, turns due steps into
-- actions and announces them (docs/playbooks.md).
------------------------------------------------------------------------------------

-- The engine's clock for playbooks: now(), or with lifecycle.as_of set (tests, replays)
-- the last moment of that day in the session's time zone, so that everything due on
-- the engine's day is due.
CREATE FUNCTION lifecycle.engine_time() RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    PERFORM lifecycle._load();
    IF current_setting('lifecycle.as_of') = '' THEN
        RETURN now();
    END IF;
    RETURN (current_setting('lifecycle.as_of')::date + 1)::timestamp::timestamptz
           - interval '1 microsecond';
END
$$;

-- A customer's value tier from the RFM monetary score: 4-5 high, 3 mid, 1-2 low.
CREATE FUNCTION lifecycle.value_tier(m integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN m >= 4 THEN 'high' WHEN m = 3 THEN 'mid' WHEN m >= 1 THEN 'low' END;

-- Whether `customer` is in the holdout of `playbook`: a hash of both, as a fraction in
-- [0, 1), below `share`. The same customer gets the same answer on every run and
-- machine (md5, not PostgreSQL's internal hash, which depends on the platform).
CREATE FUNCTION lifecycle._held_out(playbook text, customer text, share double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN share > 0 AND ('x' || left(md5(playbook || '/' || customer), 13))::bit(52)::bigint
                     / 4503599627370496.0 < share;

-- Whether a customer (segment, monetary score, churn risk) meets playbook `p`'s
-- restrictions; a customer with no stage row (NULLs) meets only an unrestricted one.
CREATE FUNCTION lifecycle._playbook_admits(p lifecycle.playbooks, segment text, m integer,
                                           churn_risk double precision)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (p.segments IS NULL OR segment = ANY (p.segments))
   AND (p.value_tiers IS NULL OR lifecycle.value_tier(m) = ANY (p.value_tiers))
   AND (p.min_churn_risk IS NULL OR churn_risk >= p.min_churn_risk);

-- Whether contact rule `rule` applies to a message on `channel` to a customer in
-- `stage` and value tier `tier`.
CREATE FUNCTION lifecycle._rule_applies(rule lifecycle.contact_policy, channel text, stage text,
                                        tier text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (rule.channel IS NULL OR rule.channel = channel) AND (rule.stage IS NULL OR rule.stage = stage)
   AND (rule.value_tier IS NULL OR rule.value_tier = tier);

-- The first moment at or after `t` outside the quiet window [quiet_from, quiet_until) of
-- local time in `zone` (the window may wrap past midnight).
CREATE FUNCTION lifecycle._after_quiet(t timestamptz, zone text, quiet_from time,
                                       quiet_until time)
RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    local timestamp := t AT TIME ZONE zone;
    clock time := local::time;
BEGIN
    IF quiet_from IS NULL OR quiet_until IS NULL THEN
        RETURN t;
    ELSIF quiet_from < quiet_until AND clock >= quiet_from AND clock < quiet_until THEN
        RETURN (local::date + quiet_until) AT TIME ZONE zone;
    ELSIF quiet_from > quiet_until AND clock >= quiet_from THEN
        RETURN (local::date + 1 + quiet_until) AT TIME ZONE zone;
    ELSIF quiet_from > quiet_until AND clock < quiet_until THEN
        RETURN (local::date + quiet_until) AT TIME ZONE zone;
    END IF;
    RETURN t;
END
$$;

-- The earliest time at or after `t` at which a message on `channel` to this customer
-- breaks no contact policy that applies to it (its stage and value tier) and falls
-- outside the channel's quiet hours; why it moved, and whether a policy (not only quiet
-- hours) moved it. Moves only forward, so a few rounds settle it.
CREATE FUNCTION lifecycle._allowed_at(src integer, who text, channel text, stage text,
                                      tier text, t timestamptz, zone text, quiet_from time,
                                      quiet_until time, OUT at timestamptz, OUT reason text,
                                      OUT capped boolean)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rule lifecycle.contact_policy;
    later timestamptz;
    moved boolean;
BEGIN
    at := t;
    capped := false;
    FOR round IN 1 .. 50 LOOP
        moved := false;
        later := lifecycle._after_quiet(at, zone, quiet_from, quiet_until);
        IF later > at THEN
            at := later;
            moved := true;
            reason := concat_ws('; ', nullif(reason, 'quiet hours'), 'quiet hours');
        END IF;
        FOR rule IN
            SELECT * FROM lifecycle.contact_policy p
            WHERE lifecycle._rule_applies(p, $3, $4, tier)
            ORDER BY p.name
        LOOP
            IF rule.min_gap IS NOT NULL THEN
                SELECT max(a.due_at) + rule.min_gap INTO later
                FROM lifecycle.actions a
                WHERE a.source_id = src AND a.customer = who AND a.kind = 'message'
                  AND a.status <> 'canceled' AND (rule.channel IS NULL OR a.channel = rule.channel)
                  AND a.due_at > at - rule.min_gap;
            ELSE
                later := NULL;
            END IF;
            IF rule.max_messages IS NOT NULL THEN
                -- the max_messages-th latest message in the window: one period after it
                -- the window holds one message fewer than the cap
                SELECT greatest(later, x.due_at + rule.per) INTO later
                FROM (SELECT a.due_at FROM lifecycle.actions a
                      WHERE a.source_id = src AND a.customer = who AND a.kind = 'message'
                        AND a.status <> 'canceled'
                        AND (rule.channel IS NULL OR a.channel = rule.channel)
                        AND a.due_at > at - rule.per
                      ORDER BY a.due_at DESC OFFSET rule.max_messages - 1 LIMIT 1) AS x;
            END IF;
            IF later > at THEN
                at := later;
                moved := true;
                capped := true;
                reason := concat_ws('; ', nullif(reason, 'contact policy ' || rule.name),
                                    'contact policy ' || rule.name);
            END IF;
        END LOOP;
        EXIT WHEN NOT moved;
    END LOOP;
END
$$;

-- Enrols the customers that entered a playbook's stages in the transitions after
-- `after_id` (not the 'initial' ones of track()), if they are still in one of them and
-- match its segments, value tiers and churn risk; at most once per playbook and episode
-- (the last purchase). Returns the number enrolled (held out included).
CREATE FUNCTION lifecycle._enroll(after_id bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    WITH entered AS (
        SELECT DISTINCT ON (p.name, t.source_id, t.customer)
               p.name AS playbook, p.holdout_share, p.attribution_days, t.id AS transition_id,
               t.source_id, t.customer, t.effective,
               coalesce(c.last_purchase, '-infinity') AS episode,
               coalesce(k.time_zone, s.time_zone) AS zone
        FROM lifecycle.transitions t
        JOIN lifecycle.playbooks p
          ON p.enabled AND p.trigger = 'stage' AND t.to_stage::text = ANY (p.to_stages)
        JOIN lifecycle.customer_stage c ON c.source_id = t.source_id AND c.customer = t.customer
        JOIN lifecycle.sources s ON s.id = t.source_id
        LEFT JOIN lifecycle.contacts k ON k.source_id = t.source_id AND k.customer = t.customer
        WHERE t.id > after_id AND t.cause <> 'initial'
          AND c.stage::text = ANY (p.to_stages)
          AND lifecycle._playbook_admits(p, c.segment, c.m, c.churn_risk)
        ORDER BY p.name, t.source_id, t.customer, t.id DESC
    )
    INSERT INTO lifecycle.enrollments AS e
        (playbook, source_id, customer, episode, started_on, transition_id, holdout, status,
         next_step, step_time, next_due_at, counts_after, attribution_until)
    SELECT x.playbook, x.source_id, x.customer, x.episode, x.effective, x.transition_id, x.holdout,
           CASE WHEN x.holdout THEN 'held_out' ELSE 'running' END,
           x.first_step, x.first_time, x.first_time, x.episode, x.attribution_until
    FROM (SELECT en.*, lifecycle._held_out(en.playbook, en.customer, en.holdout_share) AS holdout,
                 f.step AS first_step, (en.effective::timestamp AT TIME ZONE en.zone) + f.delay AS first_time,
                 lifecycle._attribution_until(en.playbook, en.effective, en.attribution_days)
                     AS attribution_until
          FROM entered en
          LEFT JOIN LATERAL (SELECT st.step, st.delay FROM lifecycle.playbook_steps st
                             WHERE st.playbook = en.playbook ORDER BY st.step LIMIT 1) f ON true) x
    ON CONFLICT (playbook, source_id, customer, episode) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- The last day a purchase counts for a playbook started on `started`: the series' full
-- length (all delays) plus its attribution window.
CREATE FUNCTION lifecycle._attribution_until(playbook text, started date, attribution_days integer)
RETURNS date
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (started + coalesce((SELECT sum(st.delay) FROM lifecycle.playbook_steps st
                            WHERE st.playbook = _attribution_until.playbook), interval '0'))::date
       + attribution_days;

-- Enrols customers in date-triggered playbooks (birthday, anniversary of the first
-- purchase) for the days after each playbook's last look, up to `as_of` (at most three
-- days back: a greeting a week late is worse than none). 29 February counts on 28
-- February in other years. Returns the number enrolled.
CREATE FUNCTION lifecycle._enroll_dates(as_of date) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p lifecycle.playbooks;
    day date;
    days integer[];
    n bigint;
    total bigint := 0;
BEGIN
    FOR p IN SELECT * FROM lifecycle.playbooks
             WHERE enabled AND trigger IN ('birthday', 'anniversary') ORDER BY name LOOP
        day := greatest(coalesce((SELECT d.done_upto FROM lifecycle.playbook_dates d
                                  WHERE d.playbook = p.name), as_of - 1), as_of - 3) + 1;
        CONTINUE WHEN day > as_of;   -- this day is done
        WHILE day <= as_of LOOP
            days := ARRAY[extract(month FROM day) * 100 + extract(day FROM day)];
            IF extract(month FROM day) = 2 AND extract(day FROM day) = 28
               AND extract(day FROM day + 1) = 1 THEN
                days := days || 229;
            END IF;
            WITH due AS (
                SELECT k.source_id, k.customer, k.time_zone
                FROM lifecycle.contacts k
                WHERE p.trigger = 'birthday' AND k.birthday IS NOT NULL
                  AND k.source_id IN (SELECT id FROM lifecycle.sources)
                  AND extract(month FROM k.birthday) * 100 + extract(day FROM k.birthday) = ANY (days)
                UNION ALL
                SELECT c.source_id, c.customer, NULL
                FROM lifecycle.customer_stage c
                WHERE p.trigger = 'anniversary' AND c.first_purchase < day
                  AND extract(month FROM c.first_purchase) * 100
                      + extract(day FROM c.first_purchase) = ANY (days)
            ), matching AS (
                SELECT d.*, coalesce(d.time_zone, (SELECT k.time_zone FROM lifecycle.contacts k
                                                   WHERE k.source_id = d.source_id
                                                     AND k.customer = d.customer),
                                     s.time_zone) AS zone,
                       lifecycle._held_out(p.name, d.customer, p.holdout_share) AS holdout
                FROM due d
                JOIN lifecycle.sources s ON s.id = d.source_id
                LEFT JOIN lifecycle.customer_stage c
                  ON c.source_id = d.source_id AND c.customer = d.customer
                WHERE lifecycle._playbook_admits(p, c.segment, c.m, c.churn_risk)
            )
            INSERT INTO lifecycle.enrollments
                (playbook, source_id, customer, episode, started_on, holdout, status, next_step,
                 step_time, next_due_at, counts_after, attribution_until)
            SELECT p.name, m.source_id, m.customer, day, day, m.holdout,
                   CASE WHEN m.holdout THEN 'held_out' ELSE 'running' END, f.step,
                   (day::timestamp AT TIME ZONE m.zone) + f.delay,
                   (day::timestamp AT TIME ZONE m.zone) + f.delay, day - 1,
                   lifecycle._attribution_until(p.name, day, p.attribution_days)
            FROM matching m
            LEFT JOIN LATERAL (SELECT st.step, st.delay FROM lifecycle.playbook_steps st
                               WHERE st.playbook = p.name ORDER BY st.step LIMIT 1) f ON true
            ON CONFLICT (playbook, source_id, customer, episode) DO NOTHING;
            GET DIAGNOSTICS n = ROW_COUNT;
            total := total + n;
            day := day + 1;
        END LOOP;
        INSERT INTO lifecycle.playbook_dates VALUES (p.name, as_of)
        ON CONFLICT (playbook) DO UPDATE SET done_upto = greatest(playbook_dates.done_upto, as_of);
    END LOOP;
    RETURN total;
END
$$;

-- Ends enrolments: status `status`, their messages not yet reported cancelled, `event`
-- logged. An action an application holds locked (claiming or reporting it in an open
-- transaction) is left as it is rather than waited for: the worker never waits on a
-- lock a sender can take.
CREATE FUNCTION lifecycle._end_enrollments(ids bigint[], status text, event text, detail text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE lifecycle.enrollments e
    SET status = _end_enrollments.status, next_step = NULL, step_time = NULL,
        next_due_at = NULL, waiting = NULL, ended_at = now()
    WHERE e.id = ANY (ids) AND e.status = 'running';
    UPDATE lifecycle.actions a SET status = 'canceled', updated_at = now()
    WHERE a.id IN (SELECT x.id FROM lifecycle.actions x
                   WHERE x.enrollment_id = ANY (ids) AND x.status IN ('due', 'claimed')
                     AND x.kind = 'message'
                   FOR UPDATE SKIP LOCKED);
    INSERT INTO lifecycle.playbook_log (enrollment_id, event, detail)
    SELECT unnest(ids), event, detail;
END
$$;

-- Purchases the last refresh of source `s` saw (in pg_temp.lifecycle_work: customers
-- whose last purchase moved forward) against the enrolments they count for: the first
-- sets converted_on, each adds its amount to revenue, and a running series that stops on
-- a purchase ends 'converted'.
CREATE FUNCTION lifecycle._record_purchases(s lifecycle.sources) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    stopped bigint[];
BEGIN
    WITH bought AS (
        UPDATE lifecycle.enrollments e
        SET converted_on = coalesce(e.converted_on, w.last_purchase),
            revenue = coalesce(e.revenue, 0) + greatest(coalesce(w.spend, 0) - coalesce(w.old_spend, 0), 0)
        FROM pg_temp.lifecycle_work w
        WHERE NOT w.gone AND w.last_purchase > coalesce(w.old_last, '-infinity')
          AND e.source_id = s.id AND e.customer = w.customer
          AND w.last_purchase > e.counts_after AND w.last_purchase <= e.attribution_until
        RETURNING e.id, e.status, e.playbook
    )
    SELECT array_agg(b.id) INTO stopped
    FROM bought b JOIN lifecycle.playbooks p ON p.name = b.playbook
    WHERE b.status = 'running' AND 'purchase' = ANY (p.stop_on);
    IF stopped IS NOT NULL THEN
        PERFORM lifecycle._end_enrollments(stopped, 'converted', 'stopped', 'purchase');
    END IF;
END
$$;

-- The scratch table of one scheduling pass: per due enrolment, its step and what the
-- pass decided.
CREATE FUNCTION lifecycle._due_table() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_temp.lifecycle_due') IS NOT NULL THEN
        RETURN;
    END IF;
    CREATE TEMP TABLE lifecycle_due (
        enrollment_id bigint PRIMARY KEY, source_id integer, customer text COLLATE "C",
        playbook text, step integer, step_time timestamptz, look_at timestamptz,
        channel text, kind text, message_key text, when_capped text,
        next_no integer, next_delay interval, zone text, quiet_from time, quiet_until time,
        granted boolean, stage text, tier text, waited text,
        at timestamptz, reason text, capped boolean, verdict text)
        ON COMMIT DELETE ROWS;
    GRANT ALL ON pg_temp.lifecycle_due TO PUBLIC;
END
$$;

-- One scheduling pass over at most `budget` enrolments whose next step is due by `now`:
-- each step becomes an action, waits (contact policy, quiet hours), is skipped (no
-- consent, or capped with when_capped = 'skip'), or ends the series (sunset, no step
-- left). Customers with no message in any policy's window are decided in bulk; the
-- others one at a time, so that each sees the actions just made. Returns the number of
-- enrolments looked at.
CREATE FUNCTION lifecycle._schedule_pass(now_ timestamptz, budget bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    d record;
    taken bigint;
BEGIN
    PERFORM lifecycle._due_table();
    TRUNCATE pg_temp.lifecycle_due;
    INSERT INTO pg_temp.lifecycle_due
    SELECT e.id, e.source_id, e.customer, e.playbook, e.next_step, e.step_time, e.next_due_at,
           st.channel, st.kind, st.message_key, st.when_capped, nx.step, nx.delay,
           coalesce(k.time_zone, s.time_zone), ch.quiet_from, ch.quiet_until,
           coalesce(cs.granted, false), c.stage::text, lifecycle.value_tier(c.m), e.waiting
    FROM (SELECT * FROM lifecycle.enrollments
          WHERE status = 'running' AND next_due_at <= now_
          ORDER BY next_due_at, id LIMIT budget) AS e
    JOIN lifecycle.playbooks p ON p.name = e.playbook AND p.enabled
    JOIN lifecycle.sources s ON s.id = e.source_id
    LEFT JOIN lifecycle.playbook_steps st ON st.playbook = e.playbook AND st.step = e.next_step
    LEFT JOIN lifecycle.channels ch ON ch.channel = st.channel
    LEFT JOIN lifecycle.contacts k ON k.source_id = e.source_id AND k.customer = e.customer
    LEFT JOIN lifecycle.consent cs
      ON cs.source_id = e.source_id AND cs.customer = e.customer AND cs.channel = st.channel
    LEFT JOIN lifecycle.customer_stage c ON c.source_id = e.source_id AND c.customer = e.customer
    LEFT JOIN LATERAL (SELECT x.step, x.delay FROM lifecycle.playbook_steps x
                       WHERE x.playbook = e.playbook AND x.step > e.next_step
                       ORDER BY x.step LIMIT 1) AS nx ON true;
    GET DIAGNOSTICS taken = ROW_COUNT;
    IF taken = 0 THEN
        RETURN 0;
    END IF;

    -- Stops reported since the last step (applications record them without touching
    -- enrolments): a click or reply on one of its actions, an opt-out of one of its
    -- channels since it began.
    UPDATE pg_temp.lifecycle_due u SET verdict = x.stop
    FROM (SELECT q.enrollment_id,
                 CASE WHEN EXISTS (
                          SELECT FROM lifecycle.actions a JOIN lifecycle.action_outcomes o
                            ON o.action_id = a.id
                          WHERE a.enrollment_id = q.enrollment_id
                            AND ((o.outcome = 'clicked' AND 'click' = ANY (p.stop_on))
                                 OR (o.outcome = 'replied' AND 'reply' = ANY (p.stop_on))))
                      THEN 'engaged'
                      WHEN 'opt_out' = ANY (p.stop_on) AND EXISTS (
                          SELECT FROM lifecycle.consent c JOIN lifecycle.enrollments e
                            ON e.id = q.enrollment_id
                          WHERE c.source_id = q.source_id AND c.customer = q.customer
                            AND NOT c.granted AND c.changed_at >= e.enrolled_at
                            AND c.channel IN (SELECT st.channel FROM lifecycle.playbook_steps st
                                              WHERE st.playbook = q.playbook))
                      THEN 'opted_out' END AS stop
          FROM pg_temp.lifecycle_due q JOIN lifecycle.playbooks p ON p.name = q.playbook) AS x
    WHERE x.enrollment_id = u.enrollment_id AND x.stop IS NOT NULL;
    UPDATE pg_temp.lifecycle_due SET verdict = CASE
        WHEN channel IS NULL THEN 'finished'   -- the step was deleted: the series ends
        WHEN NOT granted THEN 'no_consent'
        WHEN kind = 'sunset' THEN 'sunset'
        END
    WHERE verdict IS NULL;
    -- A sunset changes consent: if an application holds the customer's consent row
    -- locked (an open transaction after opt_in or opt_out), try again a minute later
    -- rather than wait.
    UPDATE pg_temp.lifecycle_due u SET verdict = 'busy', at = now_ + interval '1 minute'
    WHERE u.verdict = 'sunset'
      AND NOT EXISTS (SELECT FROM (SELECT 1 FROM lifecycle.consent c
                                   WHERE c.source_id = u.source_id AND c.customer = u.customer
                                     AND c.channel = u.channel
                                   FOR UPDATE SKIP LOCKED) AS locked);
    -- In bulk: the step's time after quiet hours, kept when it breaks no policy that
    -- applies and no other step of the customer's is due in this pass (a later time
    -- only shortens every policy's window, so nothing else can move it).
    UPDATE pg_temp.lifecycle_due u
    SET at = lifecycle._after_quiet(u.look_at, u.zone, u.quiet_from, u.quiet_until)
    WHERE u.verdict IS NULL;
    UPDATE pg_temp.lifecycle_due u
    SET capped = false, verdict = 'send',
        reason = CASE WHEN u.at > u.look_at THEN 'quiet hours' END
    WHERE u.verdict IS NULL
      AND NOT EXISTS (SELECT FROM pg_temp.lifecycle_due o
                      WHERE o.source_id = u.source_id AND o.customer = u.customer
                        AND o.enrollment_id <> u.enrollment_id AND o.verdict IS NULL)
      AND NOT EXISTS (
          SELECT FROM lifecycle.contact_policy p
          WHERE lifecycle._rule_applies(p, u.channel, u.stage, u.tier)
            AND (SELECT count(*) FROM lifecycle.actions a
                 WHERE a.source_id = u.source_id AND a.customer = u.customer AND a.kind = 'message'
                   AND a.status <> 'canceled' AND (p.channel IS NULL OR a.channel = p.channel)
                   AND a.due_at > u.at - greatest(p.per, p.min_gap))
                >= CASE WHEN p.min_gap IS NOT NULL THEN 1 ELSE p.max_messages END);
    -- One at a time, each action made at once so the next sees it.
    FOR d IN SELECT * FROM pg_temp.lifecycle_due WHERE verdict IS NULL
             ORDER BY look_at, enrollment_id LOOP
        SELECT x.at, x.reason, x.capped INTO d.at, d.reason, d.capped
        FROM lifecycle._allowed_at(d.source_id, d.customer, d.channel, d.stage, d.tier,
                                   d.look_at, d.zone, d.quiet_from, d.quiet_until) AS x;
        UPDATE pg_temp.lifecycle_due u
        SET at = d.at, reason = d.reason, capped = d.capped,
            verdict = CASE WHEN d.capped AND d.when_capped = 'skip' THEN 'capped'
                           WHEN d.at <= now_ THEN 'send' ELSE 'wait' END
        WHERE u.enrollment_id = d.enrollment_id;
        IF d.at <= now_ AND NOT (d.capped AND d.when_capped = 'skip') THEN
            PERFORM lifecycle._make_actions(d.enrollment_id);
        END IF;
    END LOOP;
    UPDATE pg_temp.lifecycle_due SET verdict = 'wait' WHERE verdict = 'send' AND at > now_;
    PERFORM lifecycle._make_actions(NULL);
    PERFORM lifecycle._apply_verdicts();
    RETURN taken;
END
$$;

-- Makes the actions of the 'send' and 'sunset' rows of lifecycle_due (of one enrolment,
-- or when `enrollment` is NULL of all not made yet) and marks them 'made'.
CREATE FUNCTION lifecycle._make_actions(enrollment bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    WITH made AS (
        UPDATE pg_temp.lifecycle_due u SET verdict = 'made_' || u.verdict
        WHERE u.verdict IN ('send', 'sunset') AND (enrollment IS NULL OR u.enrollment_id = enrollment)
        RETURNING u.*
    )
    INSERT INTO lifecycle.actions (enrollment_id, playbook, step, source_id, customer, channel,
                                   message_key, kind, scheduled_for, due_at, reason)
    SELECT m.enrollment_id, m.playbook, m.step, m.source_id, m.customer, m.channel,
           m.message_key, m.kind, m.step_time, coalesce(m.at, m.look_at),
           -- why it waited before (a cap), and why now (quiet hours)
           nullif(concat_ws('; ', m.waited, CASE WHEN m.reason IS DISTINCT FROM m.waited
                                                 THEN m.reason END), '')
    FROM made m ORDER BY m.look_at, m.enrollment_id;
END
$$;

-- What a scheduling pass decided, written to the enrolments: the next step (its own time
-- is this step's time plus its delay), a wait, a skip logged, a sunset, an end.
CREATE FUNCTION lifecycle._apply_verdicts() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    sunsets bigint[];
BEGIN
    INSERT INTO lifecycle.playbook_log (enrollment_id, step, event, detail)
    SELECT u.enrollment_id, u.step,
           CASE u.verdict WHEN 'wait' THEN 'postponed' ELSE 'skipped' END,
           CASE u.verdict WHEN 'no_consent' THEN 'no consent on ' || u.channel
                          WHEN 'capped' THEN u.reason || ' (allowed from ' || u.at || ')'
                          ELSE u.reason || ' (until ' || u.at || ')' END
    FROM pg_temp.lifecycle_due u JOIN lifecycle.enrollments e ON e.id = u.enrollment_id
    WHERE u.verdict IN ('no_consent', 'capped')
       OR (u.verdict = 'wait' AND e.waiting IS DISTINCT FROM u.reason);
    -- Sunsets: the channel suppressed (an opt-out logged with via 'sunset').
    PERFORM lifecycle._set_consent(u.source_id, u.customer, ARRAY[u.channel], false, 'sunset')
    FROM pg_temp.lifecycle_due u WHERE u.verdict = 'made_sunset';
    SELECT array_agg(u.enrollment_id) INTO sunsets FROM pg_temp.lifecycle_due u
    WHERE u.verdict = 'made_sunset';
    IF sunsets IS NOT NULL THEN
        PERFORM lifecycle._end_enrollments(sunsets, 'sunset', 'sunset', 'silent after the last step');
    END IF;
    PERFORM lifecycle._end_enrollments(array_agg(u.enrollment_id), u.verdict, 'stopped',
                                       CASE u.verdict WHEN 'engaged' THEN 'clicked or replied'
                                                      ELSE 'opted out' END)
    FROM pg_temp.lifecycle_due u WHERE u.verdict IN ('engaged', 'opted_out')
    GROUP BY u.verdict;
    UPDATE lifecycle.enrollments e
    SET next_due_at = u.at, waiting = CASE WHEN u.verdict = 'wait' THEN u.reason ELSE e.waiting END
    FROM pg_temp.lifecycle_due u
    WHERE e.id = u.enrollment_id AND u.verdict IN ('wait', 'busy');
    -- On to the next step, or the end of the series.
    UPDATE lifecycle.enrollments e
    SET next_step = u.next_no,
        step_time = CASE WHEN u.next_no IS NOT NULL
                         THEN coalesce(CASE WHEN u.verdict = 'made_send' THEN u.at END,
                                       u.step_time) + u.next_delay END,
        next_due_at = CASE WHEN u.next_no IS NOT NULL
                           THEN coalesce(CASE WHEN u.verdict = 'made_send' THEN u.at END,
                                         u.step_time) + u.next_delay END,
        waiting = NULL,
        status = CASE WHEN u.next_no IS NULL THEN 'finished' ELSE 'running' END,
        ended_at = CASE WHEN u.next_no IS NULL THEN now() END
    FROM pg_temp.lifecycle_due u
    WHERE e.id = u.enrollment_id AND u.verdict IN ('made_send', 'no_consent', 'capped', 'finished');
END
$$;

-- Every step due by the engine's time, in passes of at most `budget` enrolments (a step
-- made now can make the next one due at once, when its delay is 0). Returns the number
-- of actions made.
CREATE FUNCTION lifecycle._schedule(budget bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    now_ timestamptz := lifecycle.engine_time();
    before bigint := (SELECT coalesce(max(id), 0) FROM lifecycle.actions);
    looked bigint;
    total bigint := 0;
BEGIN
    FOR pass IN 1 .. 10 LOOP
        looked := lifecycle._schedule_pass(now_, budget - total);
        total := total + looked;
        EXIT WHEN looked = 0 OR total >= budget;
    END LOOP;
    RETURN (SELECT count(*) FROM lifecycle.actions WHERE id > before);
END
$$;

-- What a NOTIFY says of the actions with id > after_id: the range of ids and the count
-- per channel, never a customer id (any role can LISTEN). NULL when there are none.
CREATE FUNCTION lifecycle._actions_payload(after_id bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN (SELECT json_build_object('first_id', min(first_id), 'last_id', max(last_id),
                                 'actions', sum(n),
                                 'channels', json_object_agg(channel, n ORDER BY channel))::text
        FROM (SELECT a.channel, count(*) AS n, min(a.id) AS first_id, max(a.id) AS last_id
              FROM lifecycle.actions a WHERE a.id > after_id GROUP BY a.channel) AS per_channel
        HAVING count(*) > 0);

-- Announces the actions with id > after_id on the channel lifecycle.actions_channel, in
-- one NOTIFY. Returns the number of NOTIFYs (0 or 1).
CREATE FUNCTION lifecycle._announce_actions(after_id bigint) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    payload text := lifecycle._actions_payload(after_id);
BEGIN
    IF payload IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM pg_notify(current_setting('lifecycle.actions_channel'), payload);
    RETURN 1;
END
$$;
------------------------------------------------------------------------------------
-- What applications call: claim actions and report outcomes, consent, contact details,
-- churn reasons. SECURITY DEFINER, granted to lifecycle_sender only (privileges.sql):
-- they write the engine's tables, which that role cannot touch directly. Every name is
-- qualified and search_path pinned; no user code runs inside.
------------------------------------------------------------------------------------

-- The id of tracked source `source`; an ERROR naming the argument if it is not tracked.
CREATE FUNCTION lifecycle._tracked_source_id(source regclass) RETURNS integer
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id integer := (SELECT s.id FROM lifecycle.sources s WHERE s.source = _tracked_source_id.source);
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'argument "source": % is not tracked (see lifecycle.track)', source
            USING ERRCODE = '22023';
    END IF;
    RETURN id;
END
$$;

CREATE FUNCTION lifecycle._check_customer(customer text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF customer IS NULL THEN
        RAISE EXCEPTION 'argument "customer" must not be NULL' USING ERRCODE = '22004';
    END IF;
END
$$;

-- Sets customer `who`'s consent on `chans` to `grant_it` (with its origin `origin`) and
-- logs each change in consent_log.
CREATE FUNCTION lifecycle._set_consent(src integer, who text, chans text[], grant_it boolean,
                                       origin text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH changed AS (
        INSERT INTO lifecycle.consent AS c (source_id, customer, channel, granted, via)
        SELECT src, who, ch, grant_it, origin FROM unnest(chans) AS ch
        ON CONFLICT ON CONSTRAINT consent_pkey DO UPDATE
            SET granted = excluded.granted, changed_at = now(), via = excluded.via
        RETURNING c.*
    )
    INSERT INTO lifecycle.consent_log (source_id, customer, channel, granted, changed_at, via)
    SELECT c.source_id, c.customer, c.channel, c.granted, c.changed_at, c.via FROM changed c;
END;

-- Hands at most max_actions due actions (oldest first) to `consumer` for `lease`, or
-- until it reports an outcome. Concurrent consumers never get the same action (the rows
-- are locked with SKIP LOCKED, and a claimed row is due again only when its lease has
-- run out); an action whose lease ran out is handed out again, to one consumer.
CREATE FUNCTION lifecycle.claim_actions(consumer text, max_actions integer DEFAULT 100,
                                        lease interval DEFAULT '5 minutes',
                                        channels text[] DEFAULT NULL)
RETURNS SETOF lifecycle.actions
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ch text;
BEGIN
    IF consumer IS NULL OR consumer = '' THEN
        RAISE EXCEPTION 'argument "consumer" must name the consumer' USING ERRCODE = '22023';
    END IF;
    IF max_actions IS NULL OR max_actions < 1 THEN
        RAISE EXCEPTION 'argument "max_actions" must be at least 1, got %',
            coalesce(max_actions::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF lease IS NULL OR lease <= interval '0' THEN
        RAISE EXCEPTION 'argument "lease" must be positive, got %', coalesce(lease::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    FOREACH ch IN ARRAY coalesce(channels, '{}') LOOP
        PERFORM lifecycle._check_channel('argument "channels"', ch);
    END LOOP;
    RETURN QUERY
    WITH picked AS (
        SELECT a.id FROM lifecycle.actions a
        WHERE a.status IN ('due', 'claimed')
          AND ((a.status = 'due' AND a.due_at <= lifecycle.engine_time())
               OR (a.status = 'claimed' AND a.claim_expires < now()))
          AND (channels IS NULL OR a.channel = ANY (channels))
        ORDER BY a.due_at, a.id
        LIMIT max_actions
        FOR UPDATE SKIP LOCKED
    )
    UPDATE lifecycle.actions a
    SET status = 'claimed', claimed_by = consumer, claim_expires = now() + lease,
        attempts = a.attempts + 1, updated_at = now()
    FROM picked WHERE a.id = picked.id
    RETURNING a.*;
END
$$;

-- Records an outcome of action `action_id`: sent, delivered, opened, clicked, replied,
-- bounced, or failed (with retry_after: due again then; without: given up). The same
-- outcome reported twice for the same attempt is ignored. A click or a reply stops the
-- series when the playbook says so: its other actions not yet reported are cancelled at
-- once, and the scheduler ends the enrolment before its next step (the application's
-- transaction never locks an enrolment, which the worker writes: docs/playbooks.md).
-- Returns the action's status.
CREATE FUNCTION lifecycle.report_action(action_id bigint, outcome text, detail text DEFAULT NULL,
                                        retry_after interval DEFAULT NULL,
                                        consumer text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a lifecycle.actions;
    ranks constant text[] := '{sent,delivered,opened,clicked,replied}';
    stops text[];
BEGIN
    IF outcome IS NULL OR outcome NOT IN ('sent', 'delivered', 'opened', 'clicked', 'replied',
                                          'bounced', 'failed') THEN
        RAISE EXCEPTION 'argument "outcome": % is not an outcome (sent, delivered, opened, clicked, replied, bounced or failed)',
            coalesce(quote_literal(outcome), 'NULL') USING ERRCODE = '22023';
    END IF;
    IF retry_after IS NOT NULL AND (outcome <> 'failed' OR retry_after < interval '0') THEN
        RAISE EXCEPTION 'argument "retry_after" goes only with outcome failed, and is not negative'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO a FROM lifecycle.actions x WHERE x.id = action_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'argument "action_id": there is no action %', coalesce(action_id::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO lifecycle.action_outcomes (action_id, attempt, outcome, consumer, detail)
    VALUES (a.id, a.attempts, outcome, consumer, detail)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND OR a.status = 'canceled' THEN
        RETURN a.status;   -- a repeat, or too late: nothing changes
    END IF;
    a.status := CASE
        WHEN outcome = 'failed' AND retry_after IS NOT NULL THEN 'due'
        WHEN outcome IN ('failed', 'bounced') THEN outcome
        WHEN array_position(ranks, a.status) >= array_position(ranks, outcome) THEN a.status
        ELSE outcome END;
    UPDATE lifecycle.actions x
    SET status = a.status, updated_at = now(),
        due_at = CASE WHEN a.status = 'due' THEN now() + retry_after ELSE x.due_at END,
        claimed_by = CASE WHEN a.status = 'due' THEN NULL ELSE x.claimed_by END,
        claim_expires = CASE WHEN a.status = 'due' THEN NULL ELSE x.claim_expires END
    WHERE x.id = a.id;
    stops := (SELECT p.stop_on FROM lifecycle.playbooks p WHERE p.name = a.playbook);
    IF (outcome = 'clicked' AND 'click' = ANY (stops)) OR (outcome = 'replied' AND 'reply' = ANY (stops)) THEN
        UPDATE lifecycle.actions x SET status = 'canceled', updated_at = now()
        WHERE x.enrollment_id = a.enrollment_id AND x.id <> a.id AND x.kind = 'message'
          AND x.status IN ('due', 'claimed');
    END IF;
    RETURN a.status;
END
$$;

-- Records that customer `customer` of tracked `source` agreed (opt_in) to messages on
-- `channel`, with where it came from (`via`), in consent and its log.
CREATE FUNCTION lifecycle.opt_in(source regclass, customer text, channel text, via text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src integer := lifecycle._tracked_source_id(source);
BEGIN
    PERFORM lifecycle._check_customer(customer);
    PERFORM lifecycle._check_channel('argument "channel"', channel);
    PERFORM lifecycle._set_consent(src, customer, ARRAY[channel], true, via);
END
$$;

-- Opts customer `customer` out of `channel`, or of every channel when it is NULL: from
-- now on nothing is due there; actions not yet reported are cancelled at once, and the
-- customer's running series that stop on an opt-out (and use that channel) end before
-- their next step. Returns the number of actions cancelled.
CREATE FUNCTION lifecycle.opt_out(source regclass, customer text, channel text DEFAULT NULL,
                                  via text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src integer := lifecycle._tracked_source_id(source);
    canceled bigint;
BEGIN
    PERFORM lifecycle._check_customer(customer);
    IF channel IS NOT NULL THEN
        PERFORM lifecycle._check_channel('argument "channel"', channel);
    END IF;
    PERFORM lifecycle._set_consent(src, customer,
                                   CASE WHEN channel IS NULL
                                        THEN ARRAY(SELECT ch.channel FROM lifecycle.channels ch
                                                   ORDER BY ch.channel)
                                        ELSE ARRAY[channel] END,
                                   false, via);
    UPDATE lifecycle.actions a SET status = 'canceled', updated_at = now()
    WHERE a.source_id = src AND a.customer = opt_out.customer AND a.status IN ('due', 'claimed')
      AND (opt_out.channel IS NULL OR a.channel = opt_out.channel);
    GET DIAGNOSTICS canceled = ROW_COUNT;
    RETURN canceled;
END
$$;

-- Sets what the engine knows of a customer besides orders: time zone, birthday.
CREATE FUNCTION lifecycle.set_contact(source regclass, customer text, time_zone text DEFAULT NULL,
                                      birthday date DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src integer := lifecycle._tracked_source_id(source);
BEGIN
    PERFORM lifecycle._check_customer(customer);
    IF time_zone IS NOT NULL AND NOT lifecycle._valid_time_zone(time_zone) THEN
        RAISE EXCEPTION 'argument "time_zone": unknown time zone %', quote_literal(time_zone)
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO lifecycle.contacts AS k (source_id, customer, time_zone, birthday)
    VALUES (src, set_contact.customer, set_contact.time_zone, set_contact.birthday)
    ON CONFLICT ON CONSTRAINT contacts_pkey DO UPDATE
        SET time_zone = excluded.time_zone, birthday = excluded.birthday;
END
$$;

-- Records why a customer left (a reason code of lifecycle.churn_reasons, and a note).
CREATE FUNCTION lifecycle.record_churn_reason(source regclass, customer text, code text,
                                              note text DEFAULT NULL, via text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src integer := lifecycle._tracked_source_id(source);
    id bigint;
BEGIN
    PERFORM lifecycle._check_customer(customer);
    IF code IS NULL OR NOT EXISTS (SELECT FROM lifecycle.churn_reasons r WHERE r.code = $3) THEN
        RAISE EXCEPTION 'argument "code": unknown reason %  (see lifecycle.churn_reasons)',
            coalesce(quote_literal(code), 'NULL') USING ERRCODE = '22023';
    END IF;
    INSERT INTO lifecycle.customer_reasons (source_id, customer, code, note, via)
    VALUES (src, record_churn_reason.customer, record_churn_reason.code, record_churn_reason.note,
            record_churn_reason.via)
    RETURNING customer_reasons.id INTO id;
    RETURN id;
END
$$;
CREATE VIEW lifecycle.worker_status AS
SELECT current_database() AS database, w.pid, a.pid IS NOT NULL AS running, a.state,
       a.backend_start AS started_at, w.ticks, w.errors, w.consecutive_errors, w.last_tick_at,
       w.last_tick_ms, w.last_customers, w.last_transitions, w.last_error, w.last_error_at,
       (SELECT count(*) FROM lifecycle.change_queue) AS queued,
       (SELECT count(*) FROM lifecycle.customer_stage
        WHERE next_change <= lifecycle.engine_date()) AS due
FROM (SELECT true AS singleton) AS one
LEFT JOIN lifecycle.worker_state w USING (singleton)
LEFT JOIN pg_stat_activity a ON a.pid = w.pid AND a.backend_type = 'lifecycle worker';
COMMENT ON VIEW lifecycle.worker_status IS
    'The lifecycle worker of this database: alive or not, its last tick, errors, work waiting';

------------------------------------------------------------------------------------
-- Views for BI
------------------------------------------------------------------------------------

CREATE VIEW lifecycle.stage_counts AS
SELECT s.source::text AS source, c.stage, count(*) AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY s.id), 2) AS percent
FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
GROUP BY s.id, s.source, c.stage;

CREATE VIEW lifecycle.transitions_per_day AS
SELECT s.source::text AS source, t.effective AS day, t.from_stage, t.to_stage, t.cause,
       count(*) AS transitions
FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id
WHERE t.cause <> 'initial'
GROUP BY s.source, t.effective, t.from_stage, t.to_stage, t.cause;

CREATE VIEW lifecycle.rfm_segment_counts AS
SELECT s.source::text AS source, c.segment, count(*) AS customers,
       avg(c.spend) AS average_spend, avg(c.purchases) AS average_purchases
FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
WHERE c.segment IS NOT NULL
GROUP BY s.source, c.segment;

-- Churn per complete calendar month since tracking began, from the transitions log, with
-- DESIGN.md's definition: the base is the customers whose stage at the month's start
-- (judged from purchases before it) is new, active, at_risk or inactive; the churned are
-- those of the base that are lapsed at its end. A purchase logged on day D counts from
-- D + 1 on (it is not "before" D); a time step on D counts on D.
CREATE VIEW lifecycle.churn_per_month AS
WITH months AS (
    SELECT s.id AS source_id, s.source, m::date AS month_start,
           (m + interval '1 month')::date AS month_end
    FROM lifecycle.sources s,
         generate_series(date_trunc('month', s.tracked_on) + interval '1 month',
                         date_trunc('month', lifecycle.engine_date()) - interval '1 month',
                         interval '1 month') AS m
), steps AS (
    SELECT source_id, customer, id, to_stage, cause, effective,
           CASE WHEN cause = 'time' THEN effective ELSE effective + 1 END AS counts_from
    FROM lifecycle.transitions
), per_customer AS (
    SELECT m.source_id, m.source, m.month_start, t.customer,
           (array_agg(t.to_stage ORDER BY t.id DESC)
                FILTER (WHERE t.counts_from <= m.month_start))[1] AS at_start,
           (array_agg(t.to_stage ORDER BY t.id DESC)
                FILTER (WHERE t.counts_from <= m.month_end))[1] AS at_end,
           bool_or(t.cause = 'purchase' AND t.effective >= m.month_start
                   AND t.effective < m.month_end) AS bought
    FROM months m JOIN steps t ON t.source_id = m.source_id AND t.counts_from <= m.month_end
    GROUP BY m.source_id, m.source, m.month_start, t.customer
)
SELECT source::text AS source, month_start AS month,
       count(*) FILTER (WHERE at_start IN ('new', 'active', 'at_risk', 'inactive')) AS base,
       count(*) FILTER (WHERE at_start IN ('new', 'active', 'at_risk', 'inactive')
                          AND at_end = 'lapsed') AS churned,
       count(*) FILTER (WHERE at_start IN ('inactive', 'lapsed') AND bought) AS reactivated,
       count(*) FILTER (WHERE coalesce(at_start, 'prospect') = 'prospect' AND bought) AS new,
       round(count(*) FILTER (WHERE at_start IN ('new', 'active', 'at_risk', 'inactive')
                                AND at_end = 'lapsed')::numeric
             / nullif(count(*) FILTER (WHERE at_start IN ('new', 'active', 'at_risk',
                                                           'inactive')), 0), 4) AS churn_rate
FROM per_customer
GROUP BY source_id, source, month_start;
------------------------------------------------------------------------------------
-- Views of the playbooks for BI and the demo.
------------------------------------------------------------------------------------

CREATE VIEW lifecycle.actions_per_day AS
SELECT s.source::text AS source, (a.due_at AT TIME ZONE s.time_zone)::date AS day, a.channel,
       a.kind, count(*) AS actions,
       count(*) FILTER (WHERE a.status IN ('due', 'claimed')) AS pending,
       count(*) FILTER (WHERE a.status IN ('sent', 'delivered', 'opened', 'clicked', 'replied'))
           AS sent,
       count(*) FILTER (WHERE a.status IN ('opened', 'clicked', 'replied')) AS engaged,
       count(*) FILTER (WHERE a.status IN ('failed', 'bounced')) AS failed,
       count(*) FILTER (WHERE a.status = 'canceled') AS canceled
FROM lifecycle.actions a JOIN lifecycle.sources s ON s.id = a.source_id
GROUP BY s.source, s.time_zone, 2, a.channel, a.kind;
COMMENT ON VIEW lifecycle.actions_per_day IS
    'Actions per day (in the source''s time zone), channel and kind: made, pending, sent, engaged, failed, cancelled';

CREATE VIEW lifecycle.suppressions AS
SELECT s.source::text AS source, c.channel, coalesce(c.via, 'unknown') AS via,
       count(*) AS customers
FROM lifecycle.consent c JOIN lifecycle.sources s ON s.id = c.source_id
WHERE NOT c.granted
GROUP BY s.source, c.channel, c.via;
COMMENT ON VIEW lifecycle.suppressions IS
    'Customers who may not be contacted on a channel, by how it came about (an opt-out, a sunset)';

CREATE VIEW lifecycle.playbook_progress AS
SELECT e.playbook, s.source::text AS source, e.status, count(*) AS customers,
       count(*) FILTER (WHERE e.converted_on IS NOT NULL) AS reactivated
FROM lifecycle.enrollments e JOIN lifecycle.sources s ON s.id = e.source_id
GROUP BY e.playbook, s.source, e.status;
COMMENT ON VIEW lifecycle.playbook_progress IS 'Customers per playbook and state of their run';

-- Per playbook and month of enrolment, for enrolments whose attribution window has
-- closed: the share of customers who bought again within it, treated against held out,
-- the difference with a 95 % confidence interval (normal approximation for two
-- independent proportions), and revenue per customer in the window.
CREATE VIEW lifecycle.playbook_uplift AS
WITH closed AS (
    SELECT e.playbook, date_trunc('month', e.started_on)::date AS month, e.holdout,
           e.converted_on IS NOT NULL AS reactivated, coalesce(e.revenue, 0) AS revenue
    FROM lifecycle.enrollments e
    WHERE e.attribution_until < lifecycle.engine_date()
), rates AS (
    SELECT playbook, month,
           count(*) FILTER (WHERE NOT holdout) AS treated,
           count(*) FILTER (WHERE NOT holdout AND reactivated) AS treated_reactivated,
           count(*) FILTER (WHERE holdout) AS held_out,
           count(*) FILTER (WHERE holdout AND reactivated) AS held_out_reactivated,
           avg(revenue) FILTER (WHERE NOT holdout) AS revenue_per_treated,
           avg(revenue) FILTER (WHERE holdout) AS revenue_per_held_out
    FROM closed GROUP BY playbook, month
), shares AS (
    SELECT r.*, r.treated_reactivated::float8 / nullif(r.treated, 0) AS p1,
           r.held_out_reactivated::float8 / nullif(r.held_out, 0) AS p0
    FROM rates r
)
SELECT playbook, month, treated, treated_reactivated, p1 AS treated_rate, held_out,
       held_out_reactivated, p0 AS held_out_rate, p1 - p0 AS uplift,
       p1 - p0 - 1.959964 * sqrt(p1 * (1 - p1) / treated + p0 * (1 - p0) / held_out) AS uplift_low,
       p1 - p0 + 1.959964 * sqrt(p1 * (1 - p1) / treated + p0 * (1 - p0) / held_out) AS uplift_high,
       revenue_per_treated, revenue_per_held_out
FROM shares;
COMMENT ON VIEW lifecycle.playbook_uplift IS
    'Reactivation treated vs held out per playbook and month, with a 95 % interval, and revenue per customer';

-- Lapsed customers by the last reason recorded for them and value tier.
CREATE VIEW lifecycle.lapsed_by_reason AS
SELECT s.source::text AS source, coalesce(r.code, 'unknown') AS reason,
       lifecycle.value_tier(c.m) AS value_tier, count(*) AS customers,
       sum(c.spend) AS spend, avg(c.expected_value) AS average_expected_value
FROM lifecycle.customer_stage c
JOIN lifecycle.sources s ON s.id = c.source_id
LEFT JOIN LATERAL (SELECT x.code FROM lifecycle.customer_reasons x
                   WHERE x.source_id = c.source_id AND x.customer = c.customer
                   ORDER BY x.id DESC LIMIT 1) r ON true
WHERE c.stage = 'lapsed'
GROUP BY s.source, 2, 3;
COMMENT ON VIEW lifecycle.lapsed_by_reason IS
    'Lapsed customers by the reason recorded last (or unknown) and value tier, with their spend';
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
                                'set_contact', 'record_churn_reason')
          AND (p.proname NOT LIKE '\_%'
               -- internal helpers that compute only from their arguments, which public
               -- functions call with the caller's rights
               OR p.proname IN ('_load', '_unit_days', '_holdout_purchases', '_rfm_of',
                                '_churn_risk', '_expected_value', '_allowed_type',
                                '_risk_features', '_calibration_holdout', '_auc',
                                -- the checks the playbook tables' triggers run as the
                                -- editor writing them
                                '_bad_argument', '_check_channel', '_check_stage',
                                '_check_value_tier', '_valid_time_zone', '_check_code'))
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION lifecycle.track(regclass, name, name, name, text),
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

-- Tables and views.
GRANT SELECT ON lifecycle.policies, lifecycle.rfm_default_segments, lifecycle.rfm_segments,
                lifecycle.rfm_segment_rules
    TO PUBLIC;
GRANT SELECT ON lifecycle.customer_stage, lifecycle.transitions, lifecycle.sources,
                lifecycle.models, lifecycle.stage_counts, lifecycle.transitions_per_day,
                lifecycle.rfm_segment_counts, lifecycle.churn_per_month,
                lifecycle.worker_status,
                lifecycle.channels, lifecycle.playbooks, lifecycle.playbook_steps,
                lifecycle.contact_policy, lifecycle.churn_reasons, lifecycle.enrollments,
                lifecycle.actions, lifecycle.action_outcomes, lifecycle.playbook_log,
                lifecycle.consent, lifecycle.consent_log, lifecycle.contacts,
                lifecycle.customer_reasons, lifecycle.actions_per_day, lifecycle.suppressions,
                lifecycle.playbook_progress, lifecycle.playbook_uplift, lifecycle.lapsed_by_reason
    TO lifecycle_reader;
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
                                        lifecycle.consent_log, lifecycle.playbook_dates
    TO lifecycle_worker;
GRANT UPDATE ON lifecycle.refresh_lock TO lifecycle_worker;  -- to LOCK it
GRANT USAGE ON ALL SEQUENCES IN SCHEMA lifecycle TO lifecycle_worker;
