
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
