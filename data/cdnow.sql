-- The CDNOW 1/10 sample (2,357 customers, 6,919 purchases, 1997-01-01 .. 1998-06-30)
-- as an orders table. The caller first fills cdnow_raw with the lines of
-- data/cdnow_sample.txt, e.g. with psql:
--   CREATE TABLE cdnow_raw (line text);
--   \copy cdnow_raw FROM 'data/cdnow_sample.txt'
--   \i data/cdnow.sql
-- Each line: master customer id, sample id (1 .. 2357), date YYYYMMDD, CDs, dollars.
CREATE TABLE cdnow_orders (
    customer_id integer NOT NULL,  -- the sample id, as in the published summaries
    master_id   integer NOT NULL,
    order_date  date NOT NULL,
    cds         integer NOT NULL,
    amount      numeric(10, 2) NOT NULL
);

INSERT INTO cdnow_orders
SELECT f[2]::integer, f[1]::integer, to_date(f[3], 'YYYYMMDD'), f[4]::integer, f[5]::numeric
FROM (SELECT regexp_split_to_array(btrim(line, E' \r\t'), '\s+') AS f FROM cdnow_raw) AS parsed;

CREATE INDEX ON cdnow_orders (customer_id, order_date);
ANALYZE cdnow_orders;
DROP TABLE cdnow_raw;
