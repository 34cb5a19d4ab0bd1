// The extension's settings (GUCs). Defined whenever the library is loaded, so SQL code
// (lifecycle.refresh()) and the background worker read the same values.
#pragma once

namespace lifecycle::worker {

// Values of the GUCs; valid after define_settings().
extern char* databases;        // lifecycle.databases: where the worker runs, comma-separated
extern char* role;             // lifecycle.role: the role the worker connects as
                               // (default lifecycle_worker; '' = the bootstrap superuser)
extern int refresh_interval;   // lifecycle.refresh_interval, milliseconds between ticks
extern int poll_interval;      // lifecycle.poll_interval, ms between checks for queued work
                               // while the worker waits for the next tick (0: no checks)
extern int batch_size;         // lifecycle.batch_size: customers per tick and source
extern int rfm_interval;       // lifecycle.rfm_interval, seconds between RFM rescorings
extern int refit_interval;     // lifecycle.refit_interval, seconds between model refits (0: never)
extern char* notify_channel;   // lifecycle.notify_channel: NOTIFY channel of transitions
extern char* actions_channel;  // lifecycle.actions_channel: NOTIFY channel of playbook actions
extern int notify_payload;     // lifecycle.notify_payload: kNotifySummary or kNotifyFull
extern int lock_timeout;       // lifecycle.lock_timeout, ms a tick waits for a lock (0: no limit)
extern int tick_timeout;       // lifecycle.tick_timeout, ms a tick or refit may run (0: no limit)
extern char* as_of;            // lifecycle.as_of: the date the engine calls today ('' = today)

enum NotifyPayload { kNotifySummary, kNotifyFull };

void define_settings();

}  // namespace lifecycle::worker
