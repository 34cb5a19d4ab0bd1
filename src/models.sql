
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
-- Models kept, and how well they predict
------------------------------------------------------------------------------------

-- Fitted models by name; the current one (at most one) fills churn_risk and
-- expected_value in the stage table. Kept by pg_dump.
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
    bgnbd           lifecycle.bgnbd_model NOT NULL,
    gamma_gamma     lifecycle.gamma_gamma_model,   -- NULL with fewer than two repeat buyers
    is_current      boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX models_one_current ON lifecycle.models (is_current) WHERE is_current;
SELECT pg_catalog.pg_extension_config_dump('lifecycle.models', '');
COMMENT ON TABLE lifecycle.models IS 'Fitted BG/NBD and Gamma-Gamma models (lifecycle.fit_model)';

-- Fits both models on a source's orders up to calibration_end and keeps them as `name`
-- (replacing a model of that name); with make_current the stage engine uses it from its
-- next refresh.
CREATE FUNCTION lifecycle.fit_model(name text, source regclass, customer_column name,
                                    time_column name, amount_column name,
                                    calibration_end date DEFAULT CURRENT_DATE,
                                    unit text DEFAULT 'week', make_current boolean DEFAULT true)
RETURNS lifecycle.models
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m lifecycle.models;
BEGIN
    PERFORM lifecycle._unit_days(unit);
    SELECT lifecycle.bgnbd_fit(s.frequency, s.recency, s.t), count(*),
           CASE WHEN count(*) FILTER (WHERE s.frequency > 0) >= 2
                THEN lifecycle.gamma_gamma_fit(s.frequency, s.monetary_value) END
    INTO m.bgnbd, m.customers, m.gamma_gamma
    FROM lifecycle.model_summary(source, customer_column, time_column, amount_column,
                                 calibration_end, unit) AS s;
    IF make_current THEN
        UPDATE lifecycle.models SET is_current = false WHERE is_current;
        -- the stage engine rescores every customer from its next refresh on
        UPDATE lifecycle.sources SET rfm_scored_at = NULL, rescoring = false, rescore_from = NULL;
    END IF;
    INSERT INTO lifecycle.models AS k (name, source, customer_column, time_column, amount_column,
                                       calibration_end, unit, customers, bgnbd, gamma_gamma,
                                       is_current)
    VALUES (fit_model.name, source::text, customer_column, time_column, amount_column,
            calibration_end, unit, m.customers, m.bgnbd, m.gamma_gamma, make_current)
    ON CONFLICT ON CONSTRAINT models_pkey DO UPDATE SET
        fitted_at = now(), source = excluded.source, customer_column = excluded.customer_column,
        time_column = excluded.time_column, amount_column = excluded.amount_column,
        calibration_end = excluded.calibration_end,
        unit = excluded.unit, customers = excluded.customers, bgnbd = excluded.bgnbd,
        gamma_gamma = excluded.gamma_gamma, is_current = excluded.is_current
    RETURNING * INTO m;
    RETURN m;
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
-- (1 - P(alive); note that BG/NBD gives a customer without a repeat purchase P(alive) = 1)
-- or 'expected_purchases' (fewer expected purchases in the holdout = more at risk).
CREATE FUNCTION lifecycle.churn_auc(model lifecycle.bgnbd_model, source regclass,
                                    customer_column name, time_column name, amount_column name,
                                    calibration_end date, holdout_end date,
                                    unit text DEFAULT 'week', score text DEFAULT 'churn_risk')
RETURNS double precision
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    auc double precision;
BEGIN
    IF score NOT IN ('churn_risk', 'expected_purchases') THEN
        RAISE EXCEPTION 'argument "score" must be ''churn_risk'' or ''expected_purchases'', got %',
            quote_literal(score) USING ERRCODE = '22023';
    END IF;
    WITH scored AS (
        SELECT CASE score
                   WHEN 'churn_risk' THEN 1 - lifecycle.p_alive(model, s.frequency, s.recency, s.t)
                   ELSE -lifecycle.expected_purchases(model,
                            (holdout_end - calibration_end) / lifecycle._unit_days(unit),
                            s.frequency, s.recency, s.t) END AS risk,
               h.actual = 0 AS churned
        FROM lifecycle.model_summary(source, customer_column, time_column, amount_column,
                                     calibration_end, unit) AS s
        JOIN lifecycle._holdout_purchases(source, customer_column, time_column,
                                          calibration_end, holdout_end) AS h USING (customer)
    ), ranked AS (
        SELECT churned, rank() OVER (ORDER BY risk) AS low,
               count(*) OVER (PARTITION BY risk) AS ties FROM scored
    )
    SELECT (sum(low + (ties - 1) / 2.0) FILTER (WHERE churned)
            - count(*) FILTER (WHERE churned) * (count(*) FILTER (WHERE churned) + 1) / 2.0)
           / nullif(count(*) FILTER (WHERE churned) * count(*) FILTER (WHERE NOT churned), 0)
    INTO auc FROM ranked;
    RETURN auc;
END
$$;

-- What the stage engine writes into customer_stage under the current model `m`: churn
-- risk = 1 - P(alive), and the expected value of the next year (12 monthly steps, 1 %
-- discount per step). From the stage table's columns: x = purchase days - 1, times in
-- the model's unit, and the mean spend per purchase day (the first included, which the
-- table does not tell apart) as the order value. NULL where a model cannot say.
CREATE FUNCTION lifecycle._churn_risk(m lifecycle.models, first date, last date,
                                      purchases bigint, as_of date)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN m.bgnbd IS NOT NULL AND purchases > 0 AND as_of >= last THEN
    1 - lifecycle.p_alive(m.bgnbd, purchases - 1, (last - first) / lifecycle._unit_days(m.unit),
                          (as_of - first) / lifecycle._unit_days(m.unit)) END;

CREATE FUNCTION lifecycle._expected_value(m lifecycle.models, first date, last date,
                                          purchases bigint, spend double precision, as_of date)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN m.gamma_gamma IS NOT NULL AND purchases > 0 AND as_of >= last AND spend > 0
                 AND (m.gamma_gamma).q + (m.gamma_gamma).p * (purchases - 1) > 1 THEN
    lifecycle.customer_lifetime_value(m.bgnbd, m.gamma_gamma, purchases - 1,
        (last - first) / lifecycle._unit_days(m.unit), (as_of - first) / lifecycle._unit_days(m.unit),
        spend / purchases, 365 / lifecycle._unit_days(m.unit), 12, 0.01) END;

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
    SELECT lifecycle.bgnbd_fit(h.purchases - 1, (h.last_purchase - h.first_purchase) / unit_days,
                               (as_of - h.first_purchase) / unit_days),
           count(*),
           CASE WHEN count(*) FILTER (WHERE h.purchases > 1) >= 2
                THEN lifecycle.gamma_gamma_fit(h.purchases - 1,
                         CASE WHEN h.purchases > 1
                              THEN (h.spend - h.first_day_spend) / (h.purchases - 1) ELSE 0 END) END
    INTO k.bgnbd, k.customers, k.gamma_gamma
    FROM lifecycle._source_histories(src.id, NULL, as_of) AS h
    WHERE h.purchases > 0;
    UPDATE lifecycle.models
    SET fitted_at = now(), calibration_end = as_of, customers = k.customers, bgnbd = k.bgnbd,
        gamma_gamma = k.gamma_gamma
    WHERE name = k.name;
    -- the stage engine rescores every customer from its next refresh on
    UPDATE lifecycle.sources SET rfm_scored_at = NULL, rescoring = false, rescore_from = NULL;
    RETURN true;
END
$$;
