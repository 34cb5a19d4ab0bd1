// The launcher: started by the postmaster (shared_preload_libraries), it keeps one
// refresh worker running per database named in lifecycle.databases. It restarts a worker
// that stopped (after a pause, so a failing database is not retried in a hot loop), stops
// the workers of databases taken off the list, and restarts them all when
// lifecycle.role changes. Plain C-style code: PostgreSQL may longjmp out of any call.
#include "worker/launcher.hpp"

#include "pg/postgres_headers.hpp"
#include "worker/refresh_worker.hpp"
#include "worker/settings.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

PGDLLEXPORT void lifecycle_launcher_main(Datum);
}

namespace lifecycle::worker {

namespace {

constexpr int kMaxDatabases = 32;
constexpr long kCheckEveryMs = 1000;
// A worker that stopped soon after it started (a missing database, a bad role) is
// restarted after a pause that doubles each time, from 5 seconds up to 5 minutes.
constexpr TimestampTz kRestartPauseUs = 5 * USECS_PER_SEC;
constexpr TimestampTz kMaxRestartPauseUs = 300 * USECS_PER_SEC;
constexpr TimestampTz kHealthyUs = 60 * USECS_PER_SEC;

// One entry per database on the list: its worker's handle and when it last started.
struct Slot {
    char database[NAMEDATALEN];
    BackgroundWorkerHandle* handle;
    TimestampTz started;
    TimestampTz pause;  // before the next start
    bool listed;
};

Slot slots[kMaxDatabases];
int slot_count = 0;
char current_role[NAMEDATALEN] = "";

Slot* find_slot(const char* database) {
    for (int i = 0; i < slot_count; ++i)
        if (strcmp(slots[i].database, database) == 0) return &slots[i];
    return nullptr;
}

void stop_worker(Slot* slot) {
    if (slot->handle != nullptr) TerminateBackgroundWorker(slot->handle);
    slot->handle = nullptr;
}

// Marks the slots of the databases in lifecycle.databases (adding new ones); a name list
// that does not parse is reported and leaves the slots as they were.
void read_database_list() {
    char* raw = pstrdup(databases != nullptr ? databases : "");
    List* names = NIL;
    if (!SplitIdentifierString(raw, ',', &names)) {
        ereport(LOG, (errmsg("lifecycle launcher: lifecycle.databases is not a list of names: \"%s\"",
                             databases)));
        list_free(names);
        pfree(raw);
        return;
    }
    for (int i = 0; i < slot_count; ++i) slots[i].listed = false;
    ListCell* cell;
    foreach (cell, names) {
        const char* name = static_cast<const char*>(lfirst(cell));
        Slot* slot = find_slot(name);
        if (slot == nullptr) {
            if (slot_count == kMaxDatabases) {
                ereport(LOG, (errmsg("lifecycle launcher: more than %d databases listed; \"%s\" is ignored",
                                     kMaxDatabases, name)));
                continue;
            }
            slot = &slots[slot_count++];
            strlcpy(slot->database, name, NAMEDATALEN);
            slot->handle = nullptr;
            slot->started = 0;
            slot->pause = kRestartPauseUs;
        }
        slot->listed = true;
    }
    list_free(names);
    pfree(raw);
}

// Whether lifecycle.role names an existing role ('' is the bootstrap superuser). The
// default role is created by CREATE EXTENSION: until then no worker is started, rather
// than one that fails to log in and is retried ever more slowly.
bool role_exists() {
    if (role == nullptr || role[0] == '\0') return true;
    StartTransactionCommand();
    const bool exists = OidIsValid(get_role_oid(role, true));
    CommitTransactionCommand();
    return exists;
}

void start_worker(Slot* slot) {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    describe_refresh_worker(&worker, slot->database);
    worker.bgw_notify_pid = MyProcPid;
    slot->started = GetCurrentTimestamp();
    if (!RegisterDynamicBackgroundWorker(&worker, &slot->handle)) {
        slot->handle = nullptr;
        ereport(LOG, (errmsg("lifecycle launcher: no background worker slot for database \"%s\"",
                             slot->database),
                      errhint("Raise max_worker_processes.")));
    }
}

// Starts the listed databases' workers that are not running (and were not started in
// the last few seconds); stops those of databases no longer listed.
void reconcile() {
    const TimestampTz now = GetCurrentTimestamp();
    const bool can_start = role_exists();
    for (int i = 0; i < slot_count; ++i) {
        Slot* slot = &slots[i];
        pid_t pid;
        if (slot->handle != nullptr &&
            GetBackgroundWorkerPid(slot->handle, &pid) == BGWH_STOPPED) {
            slot->handle = nullptr;
            const bool quick = now - slot->started < kHealthyUs;
            slot->pause = quick ? Min(slot->pause * 2, kMaxRestartPauseUs) : kRestartPauseUs;
        }
        if (!slot->listed) {
            stop_worker(slot);
        } else if (can_start && slot->handle == nullptr && now - slot->started >= slot->pause) {
            start_worker(slot);
        }
    }
}

void reload_settings() {
    ConfigReloadPending = false;
    ProcessConfigFile(PGC_SIGHUP);
    read_database_list();
    const char* role_now = role != nullptr ? role : "";
    if (strcmp(role_now, current_role) != 0) {
        strlcpy(current_role, role_now, NAMEDATALEN);
        for (int i = 0; i < slot_count; ++i) {
            stop_worker(&slots[i]);
            slots[i].started = 0;
            slots[i].pause = kRestartPauseUs;
        }
    }
}

// On the way out, the workers go too: a new launcher would otherwise start second ones.
void stop_all_workers(int, Datum) {
    for (int i = 0; i < slot_count; ++i) stop_worker(&slots[i]);
}

}  // namespace

void register_launcher() {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    // A connection to no database: enough to appear in pg_stat_activity.
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 10;
    strlcpy(worker.bgw_library_name, "lifecycle", BGW_MAXLEN);
    strlcpy(worker.bgw_function_name, "lifecycle_launcher_main", BGW_MAXLEN);
    strlcpy(worker.bgw_name, "lifecycle launcher", BGW_MAXLEN);
    strlcpy(worker.bgw_type, "lifecycle launcher", BGW_MAXLEN);
    RegisterBackgroundWorker(&worker);
}

}  // namespace lifecycle::worker

void lifecycle_launcher_main(Datum) {
    using namespace lifecycle::worker;
    // _PG_init registers no launcher in binary-upgrade mode; should one start anyway,
    // it starts no worker (an exit code of 0 unregisters it).
    if (IsBinaryUpgrade) proc_exit(0);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    on_shmem_exit(stop_all_workers, 0);
    strlcpy(current_role, role != nullptr ? role : "", NAMEDATALEN);
    read_database_list();
    while (!ShutdownRequestPending) {
        if (ConfigReloadPending) reload_settings();
        reconcile();
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kCheckEveryMs,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
    proc_exit(0);
}
