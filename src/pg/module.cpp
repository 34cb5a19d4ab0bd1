// The shared library's identity and its start: the settings are defined whenever the
// library is loaded; the background worker is registered only from
// shared_preload_libraries (the postmaster starts it), and not by a server in
// binary-upgrade mode (pg_upgrade's).
#include "core/interrupt.hpp"
#include "pg/postgres_headers.hpp"
#include "worker/launcher.hpp"
#include "worker/settings.hpp"

extern "C" {
#include "miscadmin.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
PGDLLEXPORT Datum lifecycle_load(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(lifecycle_load);
}

namespace {

// The core's "is an interrupt pending?" (core/interrupt.hpp): plain reads of the flags
// the signal handlers set; it never processes the interrupt, so it never longjmps. Only a
// cancel or a termination that CHECK_FOR_INTERRUPTS() can act on now counts: other
// interrupts (barriers, parallel messages, ...) also set InterruptPending, and are
// handled at PostgreSQL's next check without abandoning our work.
bool interrupt_pending() {
    return InterruptPending && (QueryCancelPending || ProcDiePending) && INTERRUPTS_CAN_BE_PROCESSED();
}

}  // namespace

void _PG_init(void) {
    lifecycle::set_interrupt_callback(&interrupt_pending);
    lifecycle::worker::define_settings();
    // Not in binary-upgrade mode (the servers pg_upgrade starts, old and new, with the
    // configuration file's shared_preload_libraries): no tick may write to a cluster
    // being read or restored, or take OIDs and relfilenodes the restore must assign.
    if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade)
        lifecycle::worker::register_launcher();
}

// lifecycle._load(): does nothing; calling it loads the library, so that SQL code can
// read the lifecycle.* settings with their defaults.
Datum lifecycle_load(PG_FUNCTION_ARGS) {
    (void)fcinfo;
    PG_RETURN_VOID();
}
