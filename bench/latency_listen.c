/* bench/latency_listen.c: a libpq client for bench/latency.sh. It LISTENs on a channel
 * and, for every transition in the 'full' payloads (lifecycle.notify_payload = 'full'),
 * writes one line "customer<TAB>to_stage<TAB>received_us" to stdout, received_us being
 * CLOCK_REALTIME in microseconds when the notification was read from the socket: the
 * same clock as pg_xact_commit_timestamp() on this machine, so the latency can be
 * worked out in SQL. It runs until SIGTERM or SIGINT, then flushes and exits 0.
 *   latency_listen CONNINFO CHANNEL
 * It prints "ready" to stderr once LISTEN is in effect, so the caller can start the work. */
#include <libpq-fe.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop = 0;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static long long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (long long)t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

/* Copies the JSON string value after `key` (e.g. "\"customer\":") at or after `from` into
 * `out`; returns a pointer past it, or NULL when there is none. Customer ids and stage
 * names of this benchmark hold no escapes; a null customer (id too long) is skipped. */
static const char *string_after(const char *from, const char *key, char *out, size_t size) {
    const char *p = strstr(from, key);
    if (p == NULL) return NULL;
    p += strlen(key);
    if (*p != '"') {
        out[0] = '\0';
        return p;
    }
    const char *end = strchr(++p, '"');
    if (end == NULL) return NULL;
    size_t n = (size_t)(end - p) < size - 1 ? (size_t)(end - p) : size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return end + 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: latency_listen CONNINFO CHANNEL\n");
        return 2;
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal; /* no SA_RESTART: poll() returns at once with EINTR */
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    PGconn *conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "latency_listen: %s", PQerrorMessage(conn));
        return 1;
    }
    char *channel = PQescapeIdentifier(conn, argv[2], strlen(argv[2]));
    char sql[200];
    snprintf(sql, sizeof sql, "LISTEN %s", channel);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "latency_listen: %s", PQerrorMessage(conn));
        return 1;
    }
    PQclear(res);
    fprintf(stderr, "ready\n");
    long notifications = 0, transitions = 0;
    while (!stop) {
        struct pollfd fd = {PQsocket(conn), POLLIN, 0};
        int rc = poll(&fd, 1, 1000);
        if (rc < 0 && errno != EINTR) break;
        if (rc <= 0) continue;
        if (!PQconsumeInput(conn)) {
            fprintf(stderr, "latency_listen: %s", PQerrorMessage(conn));
            return 1;
        }
        /* One reading for everything that came in this read: they arrived together. */
        const long long received = now_us();
        PGnotify *note;
        while ((note = PQnotifies(conn)) != NULL) {
            notifications++;
            char customer[256], to[32];
            const char *p = note->extra;
            while ((p = string_after(p, "\"customer\":", customer, sizeof customer)) != NULL &&
                   (p = string_after(p, "\"to\":", to, sizeof to)) != NULL) {
                transitions++;
                if (customer[0] != '\0') printf("%s\t%s\t%lld\n", customer, to, received);
            }
            PQfreemem(note);
        }
    }
    fflush(stdout);
    fprintf(stderr, "latency_listen: %ld notifications, %ld transitions\n", notifications,
            transitions);
    PQfinish(conn);
    return 0;
}
