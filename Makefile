# lifecycle: PGXS build. `make`, `make install`, `make installcheck`.
# The pure C++ core and its unit tests also build with CMake (see CMakeLists.txt).

EXTENSION   = lifecycle
MODULE_big  = lifecycle
OBJS        = $(patsubst %.cpp,%.o,$(sort $(wildcard src/core/*.cpp src/pg/*.cpp src/worker/*.cpp)))
# The install scripts are put together from the SQL sources. src/lifecycle.sql is the
# released 0.1.0 and stays as it was; what 0.2.0 adds lives in its own files, which make
# both the 0.2.0 install script and the 0.1.0 -> 0.2.0 upgrade (ALTER EXTENSION UPDATE).
SQL_0_1_0   = src/lifecycle.sql
SQL_0_2_0   = src/models.sql \
              src/models/mbgnbd.sql src/models/pareto_nbd.sql \
              src/models/logistic.sql src/models/kept.sql \
              src/engine/tables.sql src/engagement/tables.sql src/engagement/checks.sql \
              src/engine/capture.sql src/engine/refresh.sql src/engagement/schedule.sql \
              src/engagement/actions.sql src/engine/views.sql src/engagement/views.sql \
              src/privileges.sql
DATA_built  = lifecycle--0.1.0.sql lifecycle--0.2.0.sql lifecycle--0.1.0--0.2.0.sql

# pg_regress tests are discovered: every sql/*.sql runs, in name order.
REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --temp-instance=tmp_check --temp-config=test/regress.conf \
               --load-extension=plpgsql
EXTRA_CLEAN  = tmp_check results regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)

# C++17; warnings on, and errors in CI (make WERROR=1).
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-register -Wno-missing-field-initializers
ifeq ($(WERROR),1)
PG_CXXFLAGS += -Werror
endif
SHLIB_LINK  = -lnlopt -lstdc++
# Rebuild objects when a header they include changes (PGXS writes .deps/*.Po).
override autodepend := yes

include $(PGXS)

# Server headers as system headers (so -Wextra judges only our code), src/ first.
override CPPFLAGS := -I$(srcdir)/src $(patsubst -I%,-isystem %,$(CPPFLAGS))
# PGXS compiles LLVM bitcode with clang and without our C++ flags.
override BITCODE_CXXFLAGS += -std=c++17

# 0.1.0 is released: its script must not change (new objects and changes go in 0.2.0's files).
lifecycle--0.1.0.sql: $(SQL_0_1_0)
	echo '81e2493027a7aa5e8088c45766d7616883baec5123f675728c0698cb152af95e  $<' | sha256sum --quiet -c || { echo '$< changed after its release; put changes in $(SQL_0_2_0)'; exit 1; }
	cat $^ >$@
lifecycle--0.2.0.sql: $(SQL_0_1_0) $(SQL_0_2_0)
	cat $^ >$@
lifecycle--0.1.0--0.2.0.sql: $(SQL_0_2_0)
	{ printf '%s\n' '\echo Use "ALTER EXTENSION lifecycle UPDATE" to load this file. \quit'; cat $^; } >$@
