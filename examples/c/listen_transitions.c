/* A LISTEN client for lifecycle's stage transitions, with libpq.
 *
 *     listen_transitions [CONNINFO]
 *
 * CONNINFO is a libpq connection string; without it the PG* environment variables
 * (PGHOST, PGPORT, PGDATABASE, PGUSER, ...) apply. The role needs lifecycle_reader.
 * Environment:
 *     LIFECYCLE_STATE    file that keeps the last processed transition id
 *                        (default: lifecycle-last-id in the current folder)
 *     LIFECYCLE_OUT      where processed transitions go, one line each (default: stdout)
 *     LIFECYCLE_CHANNEL  the channel, lifecycle.notify_channel (default: lifecycle)
 *
 * What it does (docs/engine.md, "Catching up after a disconnect"):
 *   1. connect, LISTEN, then read every logged transition with id > the last one processed;
 *   2. on each notification, read the new rows from the log by id (the default 'summary'
 *      payload names no customer: it only says which ids were logged);
 *   3. when the connection is lost, reconnect with backoff and start again at 1.
 * A notification is sent in the transaction that logs its rows and refreshes are
 * serialized, so ids follow commit order: "id > last" after LISTEN misses nothing, and
 * skipping ids <= last drops the duplicates. The log is read in ORDER BY id, and the last
 * id is saved after each batch: a restarted client resumes where it stopped. */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define APP_NAME "lifecycle-example-c" /* what pg_stat_activity shows (PGAPPNAME wins) */
#define BATCH "500"                     /* rows per read of the log */
#define BACKOFF_FIRST_MS 500            /* between reconnection attempts, doubling */
#define BACKOFF_MAX_MS 10000

static const char *state_path, *channel;
static FILE *out;
/* Set by SIGTERM/SIGINT, acted on between batches: a batch is never processed without
 * its last id being saved. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int signum) {
    (void)signum;
    stop_requested = 1;
}

static void say(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stderr, APP_NAME ": ");
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
}

static int64_t load_last_id(void) {
    FILE *f = fopen(state_path, "r");
    int64_t id = 0;
    if (f) {
        if (fscanf(f, "%" SCNd64, &id) != 1) id = 0;
        fclose(f);
    }
    return id;
}

/* Writes a new file and renames it over the old one: a crash leaves one or the other. */
static void save_last_id(int64_t id) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", state_path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%" PRId64 "\n", id) < 0 || fclose(f) != 0 || rename(tmp, state_path)) {
        say("cannot save the last id in %s: %s", state_path, strerror(errno));
        exit(1);
    }
}

/* The highest transition id a notification announces: "last_id" in the 'summary'
 * payload, the largest "id" in the 'full' one; -1 if there is none (then read anyway).
 * The payloads are json_build_object()'s or the engine's own format: a key search is
 * enough here; a real client would use a JSON parser. */
static int64_t announced_last_id(const char *payload) {
    const char *p = strstr(payload, "\"last_id\"");
    if (p && (p = strchr(p, ':'))) return strtoll(p + 1, NULL, 10);
    int64_t high = -1;
    for (p = payload; (p = strstr(p, "\"id\":")) != NULL; p += 5) {
        int64_t id = strtoll(p + 5, NULL, 10);
        if (id > high) high = id;
    }
    return high;
}

/* The application's work goes here. This one writes a line per transition. */
static void process(PGresult *r, int row) {
    fprintf(out, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", PQgetvalue(r, row, 0), PQgetvalue(r, row, 1),
            PQgetvalue(r, row, 2), PQgetvalue(r, row, 3), PQgetvalue(r, row, 4),
            PQgetvalue(r, row, 5), PQgetvalue(r, row, 6));
}

/* Processes every transition logged after *last_id, in id order, and saves the last id
 * after each batch. `initial` transitions (what track() found) are not stage changes:
 * skipped. Returns 0, or -1 when the query failed (the connection is checked by the
 * caller). */
static int catch_up(PGconn *conn, int64_t *last_id) {
    for (;;) {
        char after[32];
        snprintf(after, sizeof after, "%" PRId64, *last_id);
        const char *params[2] = {after, BATCH};
        PGresult *r = PQexecParams(conn,
            "SELECT t.id, s.source::text, t.customer, t.from_stage, t.to_stage, t.cause, "
            "       t.effective "
            "FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id "
            "WHERE t.id > $1 AND t.cause <> 'initial' "
            "ORDER BY t.id LIMIT $2",
            2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            say("reading the log: %s", PQerrorMessage(conn));
            PQclear(r);
            return -1;
        }
        int n = PQntuples(r);
        for (int i = 0; i < n; i++) process(r, i);
        if (n > 0) {
            fflush(out);
            *last_id = strtoll(PQgetvalue(r, n - 1, 0), NULL, 10);
            save_last_id(*last_id);
        }
        PQclear(r);
        if (stop_requested) exit(0);
        if (n < atoi(BATCH)) return 0;
    }
}

/* Raises *announced to what the notifications received so far announce. */
static void take_notifications(PGconn *conn, int64_t last_id, int64_t *announced) {
    PGnotify *note;
    while ((note = PQnotifies(conn)) != NULL) {
        int64_t high = announced_last_id(note->extra);
        if (high < 0) high = last_id + 1;
        if (high > *announced) *announced = high;
        PQfreemem(note);
    }
}

/* One connection's life: LISTEN, catch up, then follow the notifications, until the
 * connection breaks. Returns 1 if it caught up at least once (the backoff starts over). */
static int listen_once(const char *conninfo, int64_t *last_id) {
    /* keepalives: a connection lost without a word (a network cut) still ends in an
     * error. The caller's conninfo and PG* variables win over these. */
    const char *keys[] = {"fallback_application_name", "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "dbname", NULL};
    const char *values[] = {APP_NAME, "10", "5", "3", conninfo, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    int caught_up = 0;
    if (PQstatus(conn) != CONNECTION_OK) {
        say("cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 0;
    }
    char *ident = PQescapeIdentifier(conn, channel, strlen(channel));
    char sql[512];
    snprintf(sql, sizeof sql, "LISTEN %s", ident);
    PQfreemem(ident);
    PGresult *r = PQexec(conn, sql); /* 1. LISTEN first, */
    int listening = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    int64_t announced = 0;
    if (listening && catch_up(conn, last_id) == 0) { /* 2. then the log */
        say("listening on %s, caught up to id %" PRId64, channel, *last_id);
        caught_up = 1;
        while (!stop_requested) {
            take_notifications(conn, *last_id, &announced); /* also those read by queries */
            if (announced > *last_id) { /* 3. only ids not processed yet */
                int64_t before = *last_id;
                if (catch_up(conn, last_id) != 0) break;
                if (*last_id == before) announced = before; /* nothing to read: wait */
                continue;
            }
            struct pollfd fd = {PQsocket(conn), POLLIN, 0};
            if (poll(&fd, 1, -1) < 0 && errno != EINTR) break;
            if (!PQconsumeInput(conn)) break; /* the connection is gone */
        }
    }
    if (stop_requested) exit(0);
    /* A query that failed on a live connection (no privilege on the log, say) would fail
     * again: only a lost connection is worth a reconnection. */
    if (PQstatus(conn) == CONNECTION_OK && PQconsumeInput(conn)) {
        say("giving up: %s", PQerrorMessage(conn));
        exit(1);
    }
    say("connection lost: %s", PQerrorMessage(conn));
    PQfinish(conn);
    return caught_up;
}

int main(int argc, char **argv) {
    const char *conninfo = argc > 1 ? argv[1] : "";
    const char *out_path = getenv("LIFECYCLE_OUT");
    state_path = getenv("LIFECYCLE_STATE") ? getenv("LIFECYCLE_STATE") : "lifecycle-last-id";
    channel = getenv("LIFECYCLE_CHANNEL") ? getenv("LIFECYCLE_CHANNEL") : "lifecycle";
    out = out_path && *out_path ? fopen(out_path, "a") : stdout;
    if (!out) {
        say("cannot open %s: %s", out_path, strerror(errno));
        return 1;
    }
    /* No SA_RESTART: the signal interrupts poll() and the loop sees stop_requested. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());

    int64_t last_id = load_last_id();
    int delay = BACKOFF_FIRST_MS;
    while (!stop_requested) {
        if (listen_once(conninfo, &last_id)) delay = BACKOFF_FIRST_MS;
        /* jitter: clients do not reconnect in step */
        int ms = delay / 2 + rand() % (delay / 2 + 1);
        struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
        delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    }
    return 0;
}
