// The PostgreSQL headers, in one place. Include this last: the C++ standard library,
// Boost and the core come first (postgres.h defines macros such as `likely` that break
// Boost, and the core refuses to compile after postgres.h).
#pragma once

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "windowapi.h"
}
