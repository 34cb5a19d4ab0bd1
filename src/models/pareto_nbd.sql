
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
