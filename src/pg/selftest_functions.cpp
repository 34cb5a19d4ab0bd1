// C entry points for the boundary's regression test (sql/boundary.sql). They are not
// part of the extension's SQL: the test declares them itself, so production databases
// never see them.
#include <cstring>
#include <string>
#include <vector>

#include "core/error.hpp"
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

namespace {

void stale_context(void*) { errcontext("selftest: a stale error context callback"); }

// Pushes an error context callback living in this frame, then throws a C++ exception
// past its pop, as C++ code called back from PostgreSQL code might.
[[noreturn]] void throw_with_context_pushed() {
    ErrorContextCallback callback;
    callback.callback = stale_context;
    callback.arg = nullptr;
    callback.previous = error_context_stack;
    error_context_stack = &callback;
    lifecycle::throw_invalid("selftest: thrown while PostgreSQL's stacks pointed into unwound frames");
}

}  // namespace

// lifecycle_selftest_unwind_stacks(inside_pg_call bool): throws a core Error with an error
// context pushed, inside pg_call's PG_TRY when inside_pg_call (PG_exception_stack then
// points into pg_call's frame too). The guard must put both stacks back: the client sees
// the Error's 22023 without the stale context, and the backend goes on.
LIFECYCLE_FUNCTION(lifecycle_selftest_unwind_stacks) {
    if (PG_GETARG_BOOL(0))
        lifecycle::pg::pg_call([] { throw_with_context_pushed(); });
    else
        throw_with_context_pushed();
    PG_RETURN_VOID();
}
