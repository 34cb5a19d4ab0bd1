
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
