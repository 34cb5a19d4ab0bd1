# lifecycle: PGXS build. `make`, `make install`, `make installcheck`.
# The pure C++ core and its unit tests also build with CMake (see CMakeLists.txt).

EXTENSION   = lifecycle
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" lifecycle.control)
MODULE_big  = lifecycle
OBJS        = $(patsubst %.cpp,%.o,$(sort $(wildcard src/core/*.cpp src/pg/*.cpp)))
DATA_built  = lifecycle--$(EXTVERSION).sql
DATA        = $(wildcard src/upgrade/lifecycle--*--*.sql)

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

lifecycle--$(EXTVERSION).sql: src/lifecycle.sql lifecycle.control
	cp $< $@
