/* bench/listen.c: a libpq client that LISTENs on a channel and counts the transitions
 * announced (the "id" keys of the JSON payloads) until it has seen `expected` of them
 * (0: until nothing came for 3 s after the first) or `timeout` seconds pass; then prints
 * "notifications transitions largest_payload_bytes last_arrival_epoch_seconds".
 *   listen CONNINFO CHANNEL EXPECTED TIMEOUT_SECONDS
 * It prints "ready" once LISTEN is in effect, so the caller can start the work. */
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static long count_ids(const char *payload) {
    long n = 0;
    for (const char *p = payload; (p = strstr(p, "\"id\":")) != NULL; p += 5) n++;
    return n;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: listen CONNINFO CHANNEL EXPECTED TIMEOUT_SECONDS\n");
        return 2;
    }
    PGconn *conn = PQconnectdb(argv[1]);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "listen: %s", PQerrorMessage(conn));
        return 1;
    }
    char *channel = PQescapeIdentifier(conn, argv[2], strlen(argv[2]));
    char sql[200];
    snprintf(sql, sizeof sql, "LISTEN %s", channel);
    PQclear(PQexec(conn, sql));
    printf("ready\n");
    fflush(stdout);
    long expected = atol(argv[3]), transitions = 0, notifications = 0;
    size_t largest = 0;
    double deadline = now() + atof(argv[4]), last = 0;
    while ((expected == 0 || transitions < expected) && now() < deadline) {
        if (expected == 0 && notifications > 0 && now() - last > 3) break;
        struct pollfd fd = {PQsocket(conn), POLLIN, 0};
        if (poll(&fd, 1, 100) < 0) break;
        PQconsumeInput(conn);
        PGnotify *note;
        while ((note = PQnotifies(conn)) != NULL) {
            last = now();
            notifications++;
            transitions += count_ids(note->extra);
            if (strlen(note->extra) > largest) largest = strlen(note->extra);
            PQfreemem(note);
        }
    }
    printf("%ld %ld %zu %.6f\n", notifications, transitions, largest, last);
    PQfinish(conn);
    return expected == 0 || transitions == expected ? 0 : 1;
}
