#!/usr/bin/python3
"""A LISTEN client for lifecycle's stage transitions, with psycopg 3.

    /usr/bin/python3 listen_transitions.py [CONNINFO]

CONNINFO is a libpq connection string; without it the PG* environment variables
(PGHOST, PGPORT, PGDATABASE, PGUSER, ...) apply. The role needs lifecycle_reader.
Environment:
    LIFECYCLE_STATE    file that keeps the last processed transition id
                       (default: lifecycle-last-id in the current folder)
    LIFECYCLE_OUT      where processed transitions go, one line each (default: stdout)
    LIFECYCLE_CHANNEL  the channel, lifecycle.notify_channel (default: lifecycle)

What it does (docs/engine.md, "Catching up after a disconnect"):
  1. connect, LISTEN, then read every logged transition with id > the last one processed;
  2. on each notification, read the new rows from the log by id (the default 'summary'
     payload names no customer: it only says which ids were logged);
  3. when the connection is lost, reconnect with backoff and start again at 1.
A notification is sent in the transaction that logs its rows and refreshes are
serialized, so ids follow commit order: "id > last" after LISTEN misses nothing, and
skipping ids <= last drops the duplicates. The log is read in ORDER BY id, and the last
id is saved after each batch: a restarted client resumes where it stopped.
"""
import json
import os
import random
import signal
import sys
import time

import psycopg
from psycopg import sql

APP_NAME = "lifecycle-example-python"  # what pg_stat_activity shows (PGAPPNAME wins)
BATCH = 500                             # rows per read of the log
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0  # seconds between reconnection attempts

STATE = os.environ.get("LIFECYCLE_STATE", "lifecycle-last-id")
CHANNEL = os.environ.get("LIFECYCLE_CHANNEL", "lifecycle")
out = open(os.environ["LIFECYCLE_OUT"], "a") if os.environ.get("LIFECYCLE_OUT") else sys.stdout


def log(message):
    print(f"{APP_NAME}: {message}", file=sys.stderr, flush=True)


def load_last_id():
    try:
        with open(STATE) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


def save_last_id(last_id):
    # Write a new file and rename it over the old one: a crash leaves one or the other.
    with open(STATE + ".tmp", "w") as f:
        f.write(f"{last_id}\n")
    os.replace(STATE + ".tmp", STATE)


# SIGTERM/SIGINT stop the client, but never between processing a batch and saving its
# last id (that would process the batch again after a restart).
in_batch = False
stop_requested = False


def on_signal(signum, frame):
    global stop_requested
    if in_batch:
        stop_requested = True  # the batch loop exits when the batch is saved
    else:
        sys.exit(0)


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)


def announced_last_id(payload):
    """The highest transition id a notification announces: last_id in the 'summary'
    payload, the largest "id" in the 'full' one; None if unreadable (then read anyway)."""
    try:
        data = json.loads(payload)
        if "last_id" in data:
            return int(data["last_id"])
        return max(int(t["id"]) for t in data["transitions"])
    except (ValueError, KeyError, TypeError):
        return None


def process(row):
    # The application's work goes here. This one writes a line per transition.
    tid, source, customer, from_stage, to_stage, cause, effective = row
    out.write(f"{tid}\t{source}\t{customer}\t{from_stage}\t{to_stage}\t{cause}\t{effective}\n")


def catch_up(conn, last_id):
    """Processes every transition logged after last_id, in id order; returns the new last
    id. `initial` transitions (what track() found) are not stage changes: skipped."""
    global in_batch
    while True:
        rows = conn.execute(
            """SELECT t.id, s.source::text, t.customer, t.from_stage, t.to_stage, t.cause,
                      t.effective
               FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id
               WHERE t.id > %s AND t.cause <> 'initial'
               ORDER BY t.id LIMIT %s""",
            (last_id, BATCH),
        ).fetchall()
        if not rows:
            return last_id
        in_batch = True
        for row in rows:
            process(row)
        out.flush()
        last_id = rows[-1][0]
        save_last_id(last_id)
        in_batch = False
        if stop_requested:
            sys.exit(0)
        if len(rows) < BATCH:
            return last_id


def listen(conninfo, last_id, on_caught_up):
    """One connection's life: LISTEN, catch up, then follow the notifications, until the
    connection breaks (psycopg raises OperationalError)."""
    # keepalives: a connection lost without a word (a network cut) still ends in an error.
    with psycopg.connect(conninfo, autocommit=True, fallback_application_name=APP_NAME,
                         keepalives=1, keepalives_idle=10, keepalives_interval=5,
                         keepalives_count=3) as conn:
        # Notifications that arrive while a query runs go to the handlers, not to
        # conn.notifies() (psycopg 3.1): both paths raise `announced`.
        announced = 0

        def note(n):
            nonlocal announced
            high = announced_last_id(n.payload)
            announced = max(announced, high if high is not None else last_id + 1)

        conn.add_notify_handler(note)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))  # 1. LISTEN first,
        last_id = catch_up(conn, last_id)                                   # 2. then the log
        log(f"listening on {CHANNEL}, caught up to id {last_id}")
        on_caught_up()
        while True:
            if announced > last_id:  # 3. only notifications of ids not processed yet
                before, last_id = last_id, catch_up(conn, last_id)
                if last_id == before:  # nothing to read (an unreadable payload): wait
                    announced = last_id
                continue
            for n in conn.notifies():  # blocks until a notification or an error
                note(n)
                if announced > last_id:
                    # Leaving the generator drops the notifications it holds: harmless,
                    # catch_up() reads every row committed so far, theirs included.
                    break


def main():
    conninfo = sys.argv[1] if len(sys.argv) > 1 else ""
    delay = BACKOFF_FIRST

    def reset_backoff():
        nonlocal delay
        delay = BACKOFF_FIRST

    while True:
        try:
            listen(conninfo, load_last_id(), reset_backoff)  # the state file has the last id
        except psycopg.OperationalError as e:  # connection errors; others end the client
            log(f"connection lost or refused: {str(e).strip()}")
        time.sleep(delay * random.uniform(0.5, 1.0))  # jitter: clients do not reconnect in step
        delay = min(delay * 2, BACKOFF_MAX)


if __name__ == "__main__":
    main()
