# lifecycle: PGXS build. `make`, `make install`, `make installcheck`.
# The pure C++ core and its unit tests also build with CMake (see CMakeLists.txt).

EXTENSION   = lifecycle
MODULE_big  = lifecycle
OBJS        = $(patsubst %.cpp,%.o,$(sort $(wildcard src/core/*.cpp src/pg/*.cpp src/worker/*.cpp)))
# Released scripts are kept as they shipped, in released/ (install and upgrade scripts
# of 0.1.0 and 0.2.0; released/SHA256SUMS guards them). The current version's install
# script is put together from the SQL sources in src/; its upgrade from the last release
# is written by hand, as the change it is, in updates/. sql/99_upgrade and
# test/upgrade.sh check that the upgrade gives what a fresh install gives.
EXT_VERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" lifecycle.control)
SQL_SOURCES = src/lifecycle.sql src/models.sql \
              src/models/mbgnbd.sql src/models/pareto_nbd.sql \
              src/models/logistic.sql src/models/kept.sql \
              src/engine/tables.sql src/engagement/tables.sql src/engagement/checks.sql \
              src/engine/capture.sql src/engine/refresh.sql src/engine/wake.sql \
              src/engagement/schedule.sql \
              src/engagement/actions.sql src/engine/views.sql src/engagement/views.sql \
              src/engine/history_views.sql src/comments.sql src/privileges.sql
DATA        = $(wildcard released/lifecycle--*.sql) $(wildcard updates/lifecycle--*.sql)
DATA_built  = lifecycle--$(EXT_VERSION).sql

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

# The released scripts must not change; the current one is the sources put together.
lifecycle--$(EXT_VERSION).sql: $(SQL_SOURCES) released/SHA256SUMS
	cd released && sha256sum --quiet -c SHA256SUMS || { echo 'a released script changed: put changes in src/ and updates/'; exit 1; }
	cat $(SQL_SOURCES) >$@
