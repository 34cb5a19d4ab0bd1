// The background worker: a launcher started by the postmaster, which starts one refresh
// worker per database named in lifecycle.databases.
#pragma once

namespace lifecycle::worker {

// Registers the launcher; called from _PG_init under shared_preload_libraries.
void register_launcher();

}  // namespace lifecycle::worker
