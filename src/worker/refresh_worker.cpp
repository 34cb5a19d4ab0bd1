// The refresh worker of one database, connected as lifecycle.role (lifecycle_worker by
// default). Each tick is one transaction running lifecycle._worker_tick(lifecycle.batch_size),
// the same code path as lifecycle.refresh(); it first takes the refresh lock, before
// any snapshot, so that waiting for it never holds back vacuum, and it runs under
// lock_timeout = lifecycle.lock_timeout and a statement timeout of lifecycle.tick_timeout.
// After connecting it pins the settings a tick depends on (pin_settings), whatever
// ALTER DATABASE or ALTER ROLE ... SET say.
// A due model refit runs after a tick in a transaction of its own. Between ticks the
// worker checks every lifecycle.poll_interval, in a short transaction that takes no lock,
// whether changes are queued (lifecycle._work_waiting()), and ticks at once if so: a
// purchase reaches LISTENers within about poll_interval plus a tick, while the regular
// tick still comes every refresh_interval. An ERROR in a tick is
// logged, rolled back (so nothing of it is kept and nothing queued is lost), counted
// through lifecycle._worker_failed(), and the tick is retried after a pause that doubles
// up to a minute. SIGHUP rereads the settings; SIGTERM ends the worker at once (die).
// Plain C-style code: PostgreSQL may longjmp out of any call, so no C++ object with a
// destructor lives in these frames.
#include "worker/refresh_worker.hpp"

#include "pg/compat.hpp"

#include "worker/settings.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "storage/lmgr.h"
#include "utils/timeout.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void lifecycle_refresh_worker_main(Datum);
}

namespace lifecycle::worker {

namespace {

constexpr long kMaxPauseMs = 60 * 1000;
const char* const kTickQuery = "SELECT lifecycle._worker_tick($1)";
const char* const kRefitQuery = "SELECT lifecycle._refit_if_due()";
const char* const kWaitingQuery = "SELECT lifecycle._work_waiting()";

enum class Tick { done, more, not_installed, failed };

// The settings a tick runs under, for this process (the worker runs only ticks).
void apply_timeouts() {
    char value[32];
    snprintf(value, sizeof value, "%d", lock_timeout);
    SetConfigOption("lock_timeout", value, PGC_USERSET, PGC_S_SESSION);
}

// The worker's session is the worker's: a database owner (ALTER DATABASE ... SET) or a
// role's settings (ALTER ROLE lifecycle_worker SET) must not change what a tick does,
// make it fail (default_transaction_read_only = on) or keep its failures from being
// recorded. These are pinned after connecting at PGC_S_OVERRIDE, which outranks the
// database and role settings (PGC_S_DATABASE, PGC_S_USER, PGC_S_DATABASE_USER) and the
// configuration file, and is also what RESET and the end of a SET LOCAL return to; a
// function's own SET clause (search_path, plan_cache_mode) still applies inside it.
// docs/worker.md lists them and why. Settings that only tune speed (work_mem, jit, the
// planner's) are left to ALTER ROLE lifecycle_worker SET.
struct Pinned {
    const char* name;
    const char* value;  // nullptr: the server's own value (see capture_server_settings)
};
Pinned pinned[] = {
    // who runs the ticks: the worker's login, not a role it is a member of (ALTER
    // DATABASE ... SET role = lifecycle_reader would make every tick, and recording its
    // failure, fail on permissions)
    {"role", "none"},
    {"default_transaction_read_only", "off"},
    {"default_transaction_isolation", "read committed"},
    {"default_transaction_deferrable", "off"},
    {"search_path", "pg_catalog, pg_temp"},
    // the engine's today (CURRENT_DATE, lifecycle.engine_time()) and how AT TIME ZONE
    // reads a stored zone (abbreviations come first): the server's, not a database's
    {"TimeZone", nullptr},
    {"timezone_abbreviations", nullptr},
    // text the engine writes (NOTIFY payloads, last_error) or reads back
    {"DateStyle", "ISO, MDY"},
    {"IntervalStyle", "postgres"},
    {"extra_float_digits", "1"},
    {"standard_conforming_strings", "on"},
    {"transform_null_equals", "off"},
    {"check_function_bodies", "on"},
    // what runs: every trigger and rule (replica would skip them), every row
    {"session_replication_role", "origin"},
    {"row_security", "on"},
    // where the scratch tables go
    {"default_table_access_method", "heap"},
    {"default_tablespace", ""},
    {"temp_tablespaces", ""},
    // how long: the worker's own bounds (lifecycle.tick_timeout, lifecycle.lock_timeout)
    {"statement_timeout", "0"},
    {"idle_in_transaction_session_timeout", "0"},
    {"idle_session_timeout", "0"},
    // durability of announced transitions: the server's
    {"synchronous_commit", nullptr},
};
char* server_values[sizeof pinned / sizeof pinned[0]];

// Before connecting, the process still has the postmaster's settings (the configuration
// file, the command line, the defaults): those are the server's values kept for the
// settings pinned to nullptr.
void capture_server_settings() {
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; ++i)
        if (pinned[i].value == nullptr) {
            const char* value = GetConfigOption(pinned[i].name, false, false);
            // (NULL: not set up in the postmaster, as timezone_abbreviations may not be;
            // then the process sets it up itself, from the same server settings)
            server_values[i] = value != nullptr ? MemoryContextStrdup(TopMemoryContext, value) : nullptr;
        }
}

void pin_settings() {
    for (size_t i = 0; i < sizeof pinned / sizeof pinned[0]; ++i) {
        const char* value = pinned[i].value != nullptr ? pinned[i].value : server_values[i];
        if (value != nullptr) SetConfigOption(pinned[i].name, value, PGC_SUSET, PGC_S_OVERRIDE);
    }
}

// Every transaction of the worker writes (its figures at least): read-write whatever
// the defaults say, and READ COMMITTED whatever default_transaction_isolation says: a
// watermark capture moves only when its read sees what committed after it looked at the
// sequence's holders (src/engine/capture.sql).
void start_transaction() {
    StartTransactionCommand();
    XactIsoLevel = XACT_READ_COMMITTED;
    XactReadOnly = false;
}

// The OID of lifecycle.refresh_lock, or InvalidOid when the extension (0.2.0 or later)
// is not installed here. Inside a transaction.
Oid refresh_lock_table() {
    const Oid schema = get_namespace_oid("lifecycle", true);
    return OidIsValid(schema) ? get_relname_relid("refresh_lock", schema) : InvalidOid;
}

// Takes the refresh lock with no snapshot held: the catalog snapshot used to find the
// table is dropped before the wait. lock_timeout bounds the wait.
void lock_without_snapshot(Oid table) {
    InvalidateCatalogSnapshot();
    LockRelationOid(table, ExclusiveLock);
}

// Runs `query` (with one int4 argument, or none) in a transaction of its own, after
// taking the refresh lock when `lock_table` is valid and under the tick's statement
// timeout, and returns the boolean in its first column (false when there is none).
// `report`: shown in pg_stat_activity while it runs. Errors propagate.
bool run_in_transaction(const char* query, bool with_argument, int argument, Oid lock_table,
                        bool report = true) {
    SetCurrentStatementStartTimestamp();
    start_transaction();
    if (tick_timeout > 0) enable_timeout_after(STATEMENT_TIMEOUT, tick_timeout);
    if (OidIsValid(lock_table)) lock_without_snapshot(lock_table);
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    if (report) pgstat_report_activity(STATE_RUNNING, query);
    Oid type = INT4OID;
    Datum value = Int32GetDatum(argument);
    int rc = SPI_execute_with_args(query, with_argument ? 1 : 0, &type, &value, nullptr, false, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "lifecycle worker: %s failed: %d", query, rc);
    bool result = false;
    if (SPI_processed > 0) {
        bool isnull;
        Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
        result = !isnull && DatumGetBool(d);
    }
    SPI_finish();
    PopActiveSnapshot();
    if (tick_timeout > 0) disable_timeout(STATEMENT_TIMEOUT, false);
    CommitTransactionCommand();
    pgstat_report_stat(false);
    if (report) pgstat_report_activity(STATE_IDLE, nullptr);
    return result;
}

// In a PG_CATCH block: logs the error (first copying its message into `error`, when
// given), aborts the transaction and leaves the process ready for the next one, in the
// memory context `caller` that was current at PG_TRY.
void recover_from_error(MemoryContext caller, char* error, size_t error_size) {
    MemoryContextSwitchTo(caller);
    HOLD_INTERRUPTS();
    if (error != nullptr) {
        ErrorData* data = CopyErrorData();
        strlcpy(error, data->message != nullptr ? data->message : "unknown error", error_size);
        FreeErrorData(data);
    }
    EmitErrorReport();
    disable_all_timeouts(false);
    AbortOutOfAnyTransaction();
    FlushErrorState();
    pgstat_report_activity(STATE_IDLE, nullptr);
    RESUME_INTERRUPTS();
}

// Records a failed tick through lifecycle._worker_failed(message), in a read-write
// transaction of its own (the tick's was rolled back), under lifecycle.lock_timeout and
// lifecycle.tick_timeout like a tick; a failure here is only logged.
void record_failure(const char* message) {
    MemoryContext caller = CurrentMemoryContext;
    PG_TRY();
    {
        SetCurrentStatementStartTimestamp();
        start_transaction();
        if (tick_timeout > 0) enable_timeout_after(STATEMENT_TIMEOUT, tick_timeout);
        SPI_connect();
        PushActiveSnapshot(GetTransactionSnapshot());
        Oid type = TEXTOID;
        Datum value = CStringGetTextDatum(message);
        SPI_execute_with_args("SELECT lifecycle._worker_failed($1)", 1, &type, &value, nullptr,
                              false, 1);
        SPI_finish();
        PopActiveSnapshot();
        if (tick_timeout > 0) disable_timeout(STATEMENT_TIMEOUT, false);
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        recover_from_error(caller, nullptr, 0);
    }
    PG_END_TRY();
}

// One tick. The extension may not be installed (yet) in the database, or be an older
// version without the engine: then there is nothing to do.
Tick tick(char* error, size_t error_size) {
    MemoryContext caller = CurrentMemoryContext;
    volatile Tick outcome = Tick::done;
    PG_TRY();
    {
        StartTransactionCommand();
        const Oid lock_table = refresh_lock_table();
        CommitTransactionCommand();
        if (!OidIsValid(lock_table)) {
            outcome = Tick::not_installed;
        } else {
            outcome = run_in_transaction(kTickQuery, true, batch_size, lock_table) ? Tick::more
                                                                                     : Tick::done;
            if (outcome == Tick::done && refit_interval > 0)
                (void)run_in_transaction(kRefitQuery, false, 0, InvalidOid);
        }
    }
    PG_CATCH();
    {
        recover_from_error(caller, error, error_size);
        outcome = Tick::failed;
    }
    PG_END_TRY();
    return outcome;
}

// Sleeps `ms`, or less when the latch is set (a reload, a signal); returns whether it was.
bool wait_ms(long ms) {
    const int rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
                             PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
    return (rc & WL_LATCH_SET) != 0;
}

// Whether lifecycle._work_waiting() exists here: 0.2.0 has no such function, and the
// worker must keep working with it (without polling) until the extension is updated.
// Looked up in the catalog rather than by calling it and catching the error, which would
// log an error every poll_interval. Inside a transaction.
bool work_waiting_exists() {
    const Oid schema = get_namespace_oid("lifecycle", true);
    if (!OidIsValid(schema)) return false;
    return SearchSysCacheExists3(PROCNAMEARGSNSP, CStringGetDatum("_work_waiting"),
                                 PointerGetDatum(buildoidvector(nullptr, 0)),
                                 ObjectIdGetDatum(schema));
}

enum class Poll { idle, work, failed };

// One check for queued work between ticks: lifecycle._work_waiting() in a transaction of
// its own that does not take the refresh lock (so it never waits behind a manual
// refresh()); lock_timeout and tick_timeout bound it like a tick. It does not report
// itself in pg_stat_activity, where the worker keeps showing its last tick.
Poll poll_for_work() {
    MemoryContext caller = CurrentMemoryContext;
    volatile Poll outcome = Poll::idle;
    PG_TRY();
    {
        StartTransactionCommand();
        const bool exists = work_waiting_exists();
        CommitTransactionCommand();
        if (exists && run_in_transaction(kWaitingQuery, false, 0, InvalidOid, false))
            outcome = Poll::work;
    }
    PG_CATCH();
    {
        recover_from_error(caller, nullptr, 0);
        outcome = Poll::failed;
    }
    PG_END_TRY();
    return outcome;
}

// The wait after a tick that left nothing to do: `interval` ms from now, checking every
// poll_interval for queued work and returning as soon as some is found, or when the
// latch is set (a reload or a signal: the next tick then runs at once, as after a plain
// wait). A check that fails is logged and ends the checks until the next tick, so a
// broken check costs one log entry per interval and never delays the regular tick.
void wait_for_work(long interval) {
    const TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), interval);
    bool polling = poll_interval > 0;
    for (;;) {
        const long remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);
        if (remaining <= 0) return;
        const bool last_step = !polling || remaining <= poll_interval;
        if (wait_ms(last_step ? remaining : poll_interval) || last_step) return;
        switch (poll_for_work()) {
            case Poll::work:
                return;
            case Poll::failed:
                ereport(LOG, (errmsg("lifecycle worker: checking for queued changes failed; "
                                     "waiting for the next tick")));
                polling = false;
                break;
            case Poll::idle:
                break;
        }
    }
}

}  // namespace

void describe_refresh_worker(BackgroundWorker* worker, const char* database) {
    worker->bgw_flags = lifecycle::pg::kDatabaseWorkerFlags;
    worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker->bgw_restart_time = BGW_NEVER_RESTART;  // the launcher restarts it
    strlcpy(worker->bgw_library_name, "lifecycle", BGW_MAXLEN);
    strlcpy(worker->bgw_function_name, "lifecycle_refresh_worker_main", BGW_MAXLEN);
    snprintf(worker->bgw_name, BGW_MAXLEN, "lifecycle worker for %s", database);
    strlcpy(worker->bgw_type, "lifecycle worker", BGW_MAXLEN);
    strlcpy(worker->bgw_extra, database, BGW_EXTRALEN);
}

}  // namespace lifecycle::worker

void lifecycle_refresh_worker_main(Datum) {
    using namespace lifecycle::worker;
    char database[NAMEDATALEN];
    strlcpy(database, MyBgworkerEntry->bgw_extra, NAMEDATALEN);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    capture_server_settings();
    BackgroundWorkerInitializeConnection(database, role != nullptr && role[0] != '\0' ? role : nullptr,
                                         0);
    pgstat_report_appname("lifecycle worker");
    pin_settings();
    apply_timeouts();
    ereport(LOG, (errmsg("lifecycle worker started for database \"%s\"", database)));
    int failures = 0;
    bool reported_missing = false;
    char error[1024];
    for (;;) {
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
            apply_timeouts();
        }
        switch (tick(error, sizeof error)) {
            case Tick::more:
                failures = 0;
                CHECK_FOR_INTERRUPTS();
                continue;
            case Tick::done:
                failures = 0;
                reported_missing = false;
                wait_for_work(refresh_interval);
                break;
            case Tick::not_installed:
                if (!reported_missing)
                    ereport(LOG, (errmsg("lifecycle worker: extension lifecycle 0.2.0 or later is not "
                                         "installed in database \"%s\"; waiting for it",
                                         database)));
                reported_missing = true;
                (void)wait_ms(refresh_interval);
                break;
            case Tick::failed: {
                record_failure(error);
                const int doublings = failures < 16 ? failures : 16;
                long pause = static_cast<long>(refresh_interval) << doublings;
                if (pause > kMaxPauseMs) pause = kMaxPauseMs;
                ++failures;
                ereport(LOG, (errmsg("lifecycle worker: tick failed (%d in a row); retrying in %ld ms",
                                     failures, pause)));
                (void)wait_ms(pause);
                break;
            }
        }
    }
}
