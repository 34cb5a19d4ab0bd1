
------------------------------------------------------------------------------------
-- 0.2.0: predictive models (BG/NBD, Gamma-Gamma), their summary, fits and scores.
-- Part of lifecycle--0.2.0.sql and of the 0.1.0 -> 0.2.0 upgrade (see the Makefile).
------------------------------------------------------------------------------------
