
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
