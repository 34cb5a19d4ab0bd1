------------------------------------------------------------------------------------
-- Models kept, how well they predict, and what the stage engine takes from them
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
