// The extension's settings (GUCs). Defined whenever the library is loaded, so SQL code
// (lifecycle.refresh()) and the background worker read the same values.
#pragma once

namespace lifecycle::worker {

// Values of the GUCs; valid after define_settings().
extern char* databases;        // lifecycle.databases: where the worker runs, comma-separated
extern char* role;             // lifecycle.role: the role the worker connects as ('' = superuser)
extern int refresh_interval;   // lifecycle.refresh_interval, milliseconds between ticks
extern int batch_size;         // lifecycle.batch_size: customers per tick and source
extern int rfm_interval;       // lifecycle.rfm_interval, seconds between RFM rescorings
extern int refit_interval;     // lifecycle.refit_interval, seconds between model refits (0: never)
extern char* notify_channel;   // lifecycle.notify_channel: NOTIFY channel of transitions
extern char* as_of;            // lifecycle.as_of: the date the engine calls today ('' = today)

void define_settings();

}  // namespace lifecycle::worker
