// The GUCs. Everything the worker does is set here; SIGHUP reloads them (PGC_SIGHUP),
// and the per-session ones can also be changed by a superuser for a manual refresh().
#include "worker/settings.hpp"

#include "pg/postgres_headers.hpp"

extern "C" {
#include "utils/datetime.h"
#include "utils/guc.h"
}

namespace lifecycle::worker {

char* databases = nullptr;
char* role = nullptr;
int refresh_interval = 10000;
int poll_interval = 250;
int batch_size = 10000;
int rfm_interval = 3600;
int refit_interval = 0;
char* notify_channel = nullptr;
char* actions_channel = nullptr;
int notify_payload = kNotifySummary;
int lock_timeout = 5000;
int tick_timeout = 300000;
char* as_of = nullptr;

namespace {

const struct config_enum_entry kPayloads[] = {
    {"summary", kNotifySummary, false}, {"full", kNotifyFull, false}, {nullptr, 0, false}};

// The channel is used as an identifier by LISTEN: a plain, non-empty name keeps it
// usable unquoted from every client.
bool check_channel(char** value, void**, GucSource) {
    const char* s = *value;
    if (s == nullptr || *s == '\0' || strlen(s) >= NAMEDATALEN) {
        GUC_check_errdetail("A lifecycle NOTIFY channel must be 1 to %d characters.", NAMEDATALEN - 1);
        return false;
    }
    for (const char* c = s; *c; ++c)
        if (!(isalnum(static_cast<unsigned char>(*c)) || *c == '_')) {
            GUC_check_errdetail("A lifecycle NOTIFY channel may hold only letters, digits and _.");
            return false;
        }
    return true;
}

// '' or a date PostgreSQL can read; checked here so a typo fails at SET, not at a tick.
// The value is kept in ISO form (YYYY-MM-DD), as read in the session that sets it: other
// sessions read it again (the worker's, lifecycle.engine_date()), and their DateStyle
// may read 01/02/2026 as another day. Write it in ISO form in postgresql.conf, where
// each process reads the file with its own DateStyle.
bool check_as_of(char** value, void**, GucSource) {
    if (*value == nullptr || **value == '\0') return true;
    volatile bool ok = true;
    volatile DateADT day = 0;
    MemoryContext caller = CurrentMemoryContext;
    PG_TRY();
    {
        day = DatumGetDateADT(DirectFunctionCall1(date_in, CStringGetDatum(*value)));
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller);
        FlushErrorState();
        ok = false;
    }
    PG_END_TRY();
    int year = 0, month = 0, mday = 0;
    if (ok && !DATE_NOT_FINITE(day)) j2date(day + POSTGRES_EPOCH_JDATE, &year, &month, &mday);
    if (!ok || DATE_NOT_FINITE(day) || year < 1 || year > 9999) {
        GUC_check_errdetail("lifecycle.as_of must be empty or a date, e.g. 2026-01-31.");
        return false;
    }
    // (a check hook replaces a string with one allocated as the GUC code allocates)
#if PG_VERSION_NUM >= 160000
    char* iso = static_cast<char*>(guc_malloc(LOG, 11));
#else
    char* iso = static_cast<char*>(malloc(11));
#endif
    if (iso == nullptr) return false;
    snprintf(iso, 11, "%04d-%02d-%02d", year, month, mday);
#if PG_VERSION_NUM >= 160000
    guc_free(*value);
#else
    free(*value);
#endif
    *value = iso;
    return true;
}

}  // namespace

void define_settings() {
    DefineCustomStringVariable(
        "lifecycle.databases", "Databases in which the lifecycle worker keeps stages fresh.",
        "A comma-separated list of database names; empty: the worker idles.", &databases, "",
        PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "lifecycle.role", "Role the lifecycle worker connects as.",
        "lifecycle_worker (created by CREATE EXTENSION) by default; empty: the bootstrap "
        "superuser, which is not recommended.",
        &role, "lifecycle_worker", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "lifecycle.refresh_interval", "Time between two refresh ticks of the lifecycle worker.",
        nullptr, &refresh_interval, 10000, 10, 24 * 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS,
        nullptr, nullptr, nullptr);
    // A purchase should reach a LISTENing application within about a second, while the
    // regular tick (needed for changes that come with time and for playbooks) may stay
    // rare: between ticks the worker asks lifecycle._work_waiting(), a one-row probe that
    // takes no lock, and ticks at once when something is queued.
    DefineCustomIntVariable(
        "lifecycle.poll_interval",
        "Time between two checks for queued changes while the lifecycle worker waits.",
        "When a check finds changes the worker ticks at once instead of waiting for "
        "lifecycle.refresh_interval; 0: no checks.",
        &poll_interval, 250, 0, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "lifecycle.batch_size", "Most customers one refresh tick recomputes per tracked source.",
        "A tick with more to do ends after this many; the worker runs the next one at once.",
        // PGC_SIGHUP: the worker's tick size is the server's, not a database owner's
        // (ALTER DATABASE ... SET) or a role's; refresh(max_customers) takes its own.
        &batch_size, 10000, 1, 100000000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "lifecycle.rfm_interval", "Time between two RFM rescorings of the stage table.",
        "Breakpoints are recomputed over all customers of a source this often.", &rfm_interval,
        3600, 1, 366 * 24 * 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "lifecycle.refit_interval", "Time between two refits of the current predictive model.",
        "0: the engine never refits (lifecycle.fit_model does).", &refit_interval, 0, 0,
        3660 * 24 * 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "lifecycle.notify_channel", "NOTIFY channel on which stage transitions are announced.",
        nullptr, &notify_channel, "lifecycle", PGC_SUSET, 0, check_channel, nullptr, nullptr);
    DefineCustomStringVariable(
        "lifecycle.actions_channel", "NOTIFY channel on which playbook actions are announced.",
        "The payload: the range of action ids and the count per channel, no customer id.",
        &actions_channel, "lifecycle_actions", PGC_SUSET, 0, check_channel, nullptr, nullptr);
    DefineCustomEnumVariable(
        "lifecycle.notify_payload", "What a NOTIFY of stage transitions carries.",
        "summary: the source, the range of transition ids and counts per new stage, no "
        "customer id (any role can LISTEN); full: every transition with its customer id.",
        &notify_payload, kNotifySummary, kPayloads, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "lifecycle.lock_timeout", "Longest wait of the lifecycle worker for a lock.",
        "A tick that waits longer fails and is retried; 0: no limit.", &lock_timeout, 5000, 0,
        INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "lifecycle.tick_timeout", "Longest run of one lifecycle worker tick or model refit.",
        "A tick that runs longer is cancelled, rolled back and retried; 0: no limit.",
        &tick_timeout, 300000, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "lifecycle.as_of", "The date the stage engine takes as today.",
        "Empty: the current date. For demos and tests that replay history.", &as_of, "",
        PGC_SUSET, 0, check_as_of, nullptr, nullptr);
    MarkGUCPrefixReserved("lifecycle");
}

}  // namespace lifecycle::worker
