// C entry points for the boundary's regression test (sql/boundary.sql). They are not
// part of the extension's SQL: the test declares them itself, so production databases
// never see them.
#include <string>
#include <vector>

#include "core/selftest.hpp"
#include "pg/guard.hpp"

// lifecycle_selftest_throw(kind text, depth int): throws from `depth` frames deep in the core.
LIFECYCLE_FUNCTION(lifecycle_selftest_throw) {
    char* kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
    const int depth = PG_GETARG_INT32(1);
    lifecycle::selftest::throw_from_depth(kind, depth);
}

// lifecycle_selftest_pg_error(): raises a PostgreSQL ERROR (division by zero) through
// pg_call while C++ objects are alive; they must be destroyed, and the client must see
// the original error.
LIFECYCLE_FUNCTION(lifecycle_selftest_pg_error) {
    lifecycle::selftest::Probe probe;
    std::vector<std::string> alive(8, std::string(100, 'y'));
    lifecycle::pg::pg_call([] { DirectFunctionCall2(int4div, Int32GetDatum(1), Int32GetDatum(0)); });
    PG_RETURN_VOID();
}

// lifecycle_selftest_live_probes(): how many Probe objects exist (0 after any unwinding).
LIFECYCLE_FUNCTION(lifecycle_selftest_live_probes) {
    PG_RETURN_INT64(lifecycle::selftest::live_probes());
}
