#!/usr/bin/env node
// A LISTEN client for lifecycle's stage transitions, with node-postgres (the `pg` package).
//
//     node listen_transitions.js [CONNECTION_STRING]
//
// Without a connection string the PG* environment variables (PGHOST, PGPORT, PGDATABASE,
// PGUSER, ...) apply; PGHOST may be a socket folder. The role needs lifecycle_reader.
// Environment:
//     LIFECYCLE_STATE    file that keeps the last processed transition id
//                        (default: lifecycle-last-id in the current folder)
//     LIFECYCLE_OUT      where processed transitions go, one line each (default: stdout)
//     LIFECYCLE_CHANNEL  the channel, lifecycle.notify_channel (default: lifecycle)
//
// What it does (docs/engine.md, "Catching up after a disconnect"):
//   1. connect, LISTEN, then read every logged transition with id > the last one processed;
//   2. on each notification, read the new rows from the log by id (the default 'summary'
//      payload names no customer: it only says which ids were logged);
//   3. when the connection is lost, reconnect with backoff and start again at 1.
// A notification is sent in the transaction that logs its rows and refreshes are
// serialized, so ids follow commit order: "id > last" after LISTEN misses nothing, and
// skipping ids <= last drops the duplicates. The log is read in ORDER BY id, and the last
// id is saved after each batch: a restarted client resumes where it stopped.
'use strict';
const fs = require('fs');
const { Client } = require('pg');

const APP_NAME = 'lifecycle-example-node'; // what pg_stat_activity shows (PGAPPNAME wins)
const BATCH = 500;                         // rows per read of the log
const BACKOFF_FIRST = 500, BACKOFF_MAX = 10000; // ms between reconnection attempts

const STATE = process.env.LIFECYCLE_STATE || 'lifecycle-last-id';
const CHANNEL = process.env.LIFECYCLE_CHANNEL || 'lifecycle';
const OUT = process.env.LIFECYCLE_OUT ? fs.openSync(process.env.LIFECYCLE_OUT, 'a') : 1;

const log = (message) => console.error(`${APP_NAME}: ${message}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function loadLastId() {
    try {
        return BigInt(fs.readFileSync(STATE, 'utf8').trim() || '0');
    } catch (e) {
        if (e.code === 'ENOENT') return 0n;
        throw e;
    }
}

function saveLastId(lastId) {
    // Write a new file and rename it over the old one: a crash leaves one or the other.
    fs.writeFileSync(STATE + '.tmp', `${lastId}\n`);
    fs.renameSync(STATE + '.tmp', STATE);
}

// The highest transition id a notification announces: last_id in the 'summary' payload,
// the largest "id" in the 'full' one; null if unreadable (then read the log anyway).
// Ids are bigint in the log: BigInt throughout.
function announcedLastId(payload) {
    try {
        const data = JSON.parse(payload);
        if (data.last_id !== undefined) return BigInt(data.last_id);
        return data.transitions.map((t) => BigInt(t.id)).reduce((a, b) => (a > b ? a : b));
    } catch (e) {
        return null;
    }
}

// The application's work goes here. This one writes a line per transition.
function processRow(r) {
    fs.writeSync(OUT, `${r.id}\t${r.source}\t${r.customer}\t${r.from_stage}\t${r.to_stage}\t` +
                      `${r.cause}\t${r.effective}\n`);
}

let lastId = loadLastId();

// Processes every transition logged after lastId, in id order. `initial` transitions
// (what track() found) are not stage changes: skipped. A batch is processed and its last
// id saved synchronously, so a signal (handled between callbacks) never splits the two.
async function catchUp(client) {
    for (;;) {
        const { rows } = await client.query(
            `SELECT t.id::text AS id, s.source::text AS source, t.customer, t.from_stage,
                    t.to_stage, t.cause, t.effective::text AS effective
             FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id
             WHERE t.id > $1 AND t.cause <> 'initial'
             ORDER BY t.id LIMIT $2`, [lastId.toString(), BATCH]);
        if (rows.length === 0) return;
        rows.forEach(processRow);
        lastId = BigInt(rows[rows.length - 1].id);
        saveLastId(lastId);
        if (rows.length < BATCH) return;
    }
}

// One connection's life: LISTEN, catch up, then follow the notifications. Resolves when
// the connection breaks; calls onCaughtUp once it has caught up.
function listen(onCaughtUp) {
    return new Promise((resolve) => {
        const client = new Client({
            connectionString: process.argv[2],
            fallback_application_name: APP_NAME,
            // a connection lost without a word (a network cut) still ends in an error
            keepAlive: true, keepAliveInitialDelayMillis: 10000,
        });
        let announced = 0n, draining = false, ended = false;
        const end = (e) => {
            if (ended) return;
            ended = true;
            // Only a lost connection is worth a reconnection: no SQLSTATE (a socket error),
            // class 08 (connection), 57 (terminated by an operator) or 53 (resources).
            // Another error (no privilege on the log, say) would happen again.
            if (e.code && !/^(08|57|53)/.test(e.code)) {
                log(`giving up: ${e.message}`);
                process.exit(1);
            }
            log(`connection lost or refused: ${e.message}`);
            client.end().catch(() => {});
            resolve();
        };
        // One read of the log at a time: notifications only raise `announced`, and the
        // loop reads until it has caught up with it.
        const drain = async () => {
            if (draining) return;
            draining = true;
            try {
                while (!ended && announced > lastId) {
                    const before = lastId;
                    await catchUp(client);
                    if (lastId === before) { // nothing to read (an unreadable payload): wait
                        announced = lastId;
                        break;
                    }
                }
            } catch (e) {
                end(e);
            }
            draining = false;
        };
        client.on('notification', (n) => {
            const high = announcedLastId(n.payload);
            const target = high !== null ? high : lastId + 1n;
            if (target > announced) announced = target;
            drain(); // 3. only ids not processed yet
        });
        client.on('error', (e) => end(e));
        client.on('end', () => end(new Error('the server closed the connection')));
        (async () => {
            await client.connect();
            await client.query(`LISTEN ${client.escapeIdentifier(CHANNEL)}`); // 1. first
            draining = true;                 // notifications wait for the catch-up
            await catchUp(client);           // 2. then the log
            draining = false;
            log(`listening on ${CHANNEL}, caught up to id ${lastId}`);
            onCaughtUp();
            drain();                         // what was announced meanwhile
        })().catch((e) => end(e));
    });
}

async function main() {
    let delay = BACKOFF_FIRST;
    for (;;) {
        await listen(() => { delay = BACKOFF_FIRST; });
        // jitter: clients do not reconnect in step
        await sleep(delay * (0.5 + Math.random() / 2));
        delay = Math.min(delay * 2, BACKOFF_MAX);
    }
}

// SIGTERM/SIGINT stop the client, but never between processing a batch and saving its
// last id: those run synchronously, and a signal is handled between callbacks.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));

main();
