// The one boundary between C++ and PostgreSQL. Three rules, each enforced by a mechanism:
//
// 1. No C++ exception crosses into PostgreSQL. Every SQL-callable function is declared
//    with LIFECYCLE_FUNCTION, which runs its body inside call_guarded(): a try/catch
//    that copies the exception's message into plain memory, leaves the catch scope (so
//    the exception object is destroyed) and only then raises the PostgreSQL ERROR with
//    the matching SQLSTATE (core Error -> 22023/22008, std::bad_alloc -> 53200,
//    anything else -> XX000).
//
// 2. No PostgreSQL ERROR (a longjmp) skips a C++ destructor. Function bodies in src/pg
//    hold only plain data (scalars, pointers, PODs) while they call PostgreSQL; C++
//    objects with destructors live only inside core calls, and the core never calls
//    PostgreSQL. Code that must call PostgreSQL while C++ objects are alive wraps the call
//    in pg_call(), which catches the ERROR under its own PG_TRY and rethrows it as a
//    PgError exception; the destructors run as that unwinds, and call_guarded() re-raises
//    the original PostgreSQL error (same SQLSTATE and message). After a PgError the C++
//    code must not call PostgreSQL again: it only unwinds.
//
// 3. A C++ exception leaves PostgreSQL's error stacks as it found them. PostgreSQL keeps
//    two global stacks that point into C frames: PG_exception_stack (the innermost
//    PG_TRY's sigjmp_buf) and error_context_stack (the errcontext callbacks). A frame
//    that pushes onto them pops only on its normal exit or PG_CATCH, which a C++
//    exception skips. So call_guarded() and pg_call() snapshot both stacks (PgStacks)
//    on entry and put them back before an exception leaves them: pg_call() before it
//    rethrows a C++ exception thrown inside its PG_TRY, call_guarded() before it
//    raises the ERROR. No pointer to an unwound frame survives the unwinding.
//
// Long core loops are cancellable (core/interrupt.hpp): the module registers a callback
// reading PostgreSQL's pending-interrupt flags; the core throws Interrupted, and
// call_guarded() then runs CHECK_FOR_INTERRUPTS() outside every catch scope, which
// raises PostgreSQL's own cancel (57014) or termination error.
#pragma once

#include <exception>

#include "pg/postgres_headers.hpp"

namespace lifecycle::pg {

using FunctionBody = Datum (*)(FunctionCallInfo);

Datum call_guarded(FunctionBody body, FunctionCallInfo fcinfo);

// A PostgreSQL ERROR caught by pg_call, on its way to call_guarded.
class PgError : public std::exception {
public:
    explicit PgError(ErrorData* data) : data_(data) {}
    ErrorData* data() const noexcept { return data_; }
    const char* what() const noexcept override { return "PostgreSQL error"; }

private:
    ErrorData* data_;
};

void throw_pg_error(MemoryContext caller);

// PostgreSQL's error stacks at one point of the C++ code (rule 3 above).
struct PgStacks {
    sigjmp_buf* exception;
    ErrorContextCallback* context;

    static PgStacks current() { return PgStacks{PG_exception_stack, error_context_stack}; }
    void restore() const {
        PG_exception_stack = exception;
        error_context_stack = context;
    }
};

// Runs `call` (PostgreSQL code holding no C++ objects) and turns an ERROR into PgError.
// A C++ exception thrown inside `call` (say by a callback PostgreSQL makes into our
// code) leaves with the stacks restored to those outside this PG_TRY.
template <typename Call>
void pg_call(Call&& call) {
    MemoryContext caller = CurrentMemoryContext;
    const PgStacks outside = PgStacks::current();
    volatile bool failed = false;
    PG_TRY();
    {
        try {
            call();
        } catch (...) {
            outside.restore();
            throw;
        }
    }
    PG_CATCH();
    {
        failed = true;
    }
    PG_END_TRY();
    if (failed) throw_pg_error(caller);
}

}  // namespace lifecycle::pg

// Declares a SQL-callable function `name` whose body runs behind the guard:
//   LIFECYCLE_FUNCTION(lifecycle_stage_windows) { ... return ...; }
#define LIFECYCLE_FUNCTION(name)                                                   \
    static Datum name##_body(FunctionCallInfo fcinfo);                            \
    extern "C" {                                                                   \
    PG_FUNCTION_INFO_V1(name);                                                     \
    }                                                                              \
    Datum name(PG_FUNCTION_ARGS) { return lifecycle::pg::call_guarded(name##_body, fcinfo); } \
    static Datum name##_body([[maybe_unused]] FunctionCallInfo fcinfo)
