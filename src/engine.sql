
------------------------------------------------------------------------------------
-- 0.2.0: the stage engine: tracked sources, the change queue, the stage table, the
-- transitions log, refresh() and the views the background worker and BI read.
-- Part of lifecycle--0.2.0.sql and of the 0.1.0 -> 0.2.0 upgrade (see the Makefile).
------------------------------------------------------------------------------------
