#include <cstdio>
#include <new>

#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "pg/guard.hpp"

namespace lifecycle::pg {

namespace {

int sqlstate_of(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::invalid_parameter: return ERRCODE_INVALID_PARAMETER_VALUE;
        case ErrorKind::date_out_of_range: return ERRCODE_DATETIME_VALUE_OUT_OF_RANGE;
    }
    return ERRCODE_INTERNAL_ERROR;
}

void copy_message(char* buffer, size_t size, const char* prefix, const char* text) {
    snprintf(buffer, size, "%s%s", prefix, text);
}

}  // namespace

void throw_pg_error(MemoryContext caller) {
    // Still inside PostgreSQL's error handling: copy the error out of ErrorContext
    // before clearing it, then leave as a C++ exception.
    MemoryContextSwitchTo(caller);
    ErrorData* data = CopyErrorData();
    FlushErrorState();
    throw PgError(data);
}

Datum call_guarded(FunctionBody body, FunctionCallInfo fcinfo) {
    const PgStacks on_entry = PgStacks::current();
    int sqlstate = ERRCODE_INTERNAL_ERROR;
    char message[1024];
    ErrorData* pg_error = nullptr;
    bool interrupted = false;
    try {
        return body(fcinfo);
    } catch (const Interrupted&) {
        interrupted = true;
    } catch (const Error& e) {
        sqlstate = sqlstate_of(e.kind());
        copy_message(message, sizeof message, "", e.what());
    } catch (const PgError& e) {
        pg_error = e.data();
    } catch (const std::bad_alloc&) {
        sqlstate = ERRCODE_OUT_OF_MEMORY;
        copy_message(message, sizeof message, "", "out of memory in lifecycle");
    } catch (const std::exception& e) {
        copy_message(message, sizeof message, "lifecycle internal error: ", e.what());
    } catch (...) {
        copy_message(message, sizeof message, "lifecycle internal error: ", "unknown exception");
    }
    // Out of every catch scope: no C++ object is alive in this frame any more. Whatever
    // the unwound frames pushed onto PostgreSQL's error stacks is gone with them.
    on_entry.restore();
    if (pg_error != nullptr) ReThrowError(pg_error);
    if (interrupted) {
        // The core saw a pending cancel or termination: let PostgreSQL raise its own
        // error. Should it decline (interrupts held off since the callback looked), the
        // work is abandoned all the same.
        CHECK_FOR_INTERRUPTS();
        ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED), errmsg("canceling statement due to user request")));
    }
    ereport(ERROR, (errcode(sqlstate), errmsg("%s", message)));
    pg_unreachable();
}

}  // namespace lifecycle::pg
