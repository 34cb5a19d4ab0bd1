// The refresh worker: one per database, running lifecycle._worker_tick() every
// lifecycle.refresh_interval (at once again while work is left, or when a check every
// lifecycle.poll_interval finds changes queued).
#pragma once

#include "pg/postgres_headers.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace lifecycle::worker {

// Fills `worker` to start a refresh worker for `database`.
void describe_refresh_worker(BackgroundWorker* worker, const char* database);

}  // namespace lifecycle::worker
