// Integration tests of the stage engine with the background worker running, against a
// real server (test/integration.sh starts it with shared_preload_libraries = lifecycle,
// lifecycle.databases = lifecycle_it, lifecycle.refresh_interval = 200ms). A real client
// LISTENs; time moves with lifecycle.as_of. Every check compares with an independent
// recomputation in plain SQL, or with transitions worked out by hand from DESIGN.md.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include "harness.hpp"

using it::Connection;

namespace {

// Plain-SQL oracles, created once in the test database: customer_stage must equal a full
// recomputation with lifecycle_stage, and every customer's transitions must chain.
const char* kOracles = R"sql(
CREATE OR REPLACE FUNCTION it_differences(source regclass, policy text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format(
        'WITH plain AS (
             SELECT customer_id::text AS customer, min(day) AS f, max(day) AS l,
                    count(DISTINCT day) AS n, round(sum(amount)::numeric, 6) AS spend,
                    lifecycle.lifecycle_stage(min(day), max(day), count(DISTINCT day), $1, $2) AS stage
             FROM (SELECT customer_id, ordered_at::date AS day, amount FROM %s) o
             WHERE day <= $1 AND customer_id IS NOT NULL GROUP BY customer_id),
         ours AS (
             SELECT c.customer COLLATE "default", c.first_purchase, c.last_purchase, c.purchases,
                    round(c.spend::numeric, 6), c.stage
             FROM lifecycle.customer_stage c JOIN lifecycle.sources s ON s.id = c.source_id
             WHERE s.source = %L::regclass AND c.purchases > 0)
         SELECT (SELECT count(*) FROM (TABLE ours EXCEPT TABLE plain) a)
              + (SELECT count(*) FROM (TABLE plain EXCEPT TABLE ours) b)', source, source)
    INTO n USING lifecycle.engine_date(), policy;
    RETURN n;
END $$;
CREATE OR REPLACE FUNCTION it_broken_chains(source regclass) RETURNS bigint LANGUAGE sql AS $$
    WITH t AS (
        SELECT t.customer, t.from_stage, t.to_stage,
               lag(t.to_stage, 1, 'prospect') OVER w AS previous,
               row_number() OVER w = count(*) OVER (PARTITION BY t.customer) AS is_last
        FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id
        WHERE s.source = $1 WINDOW w AS (PARTITION BY t.customer ORDER BY t.id))
    SELECT count(*) FROM t
    LEFT JOIN (SELECT c.customer, c.stage FROM lifecycle.customer_stage c
               JOIN lifecycle.sources s ON s.id = c.source_id WHERE s.source = $1) c USING (customer)
    WHERE t.from_stage <> t.previous OR (t.is_last AND t.to_stage <> coalesce(c.stage, 'prospect'))
$$;
INSERT INTO lifecycle.policies (name, onboarding_days, at_risk_days, inactive_days, lapsed_days,
                                rhythm_factor)
VALUES ('it_policy', 10, 20, 40, 60, 0) ON CONFLICT (name) DO NOTHING;
)sql";

// How sources are tracked: by triggers, or with IT_CAPTURE=watermark by their id column
// (test/integration.sh runs the Worker tests both ways).
std::string capture_argument() {
    const char* capture = std::getenv("IT_CAPTURE");
    return capture != nullptr && std::string(capture) == "watermark" ? ", watermark_column => 'id'"
                                                                      : "";
}

// Each test gets its own source table, tracked under it_policy at `date`.
void fresh_source(Connection& db, const std::string& table, const std::string& date) {
    db.exec(kOracles);
    db.exec("SELECT lifecycle.untrack(source) FROM lifecycle.sources");  // a failed test's
    db.exec("DROP TABLE IF EXISTS " + table + " CASCADE");
    db.exec("CREATE TABLE " + table +
            " (id bigserial PRIMARY KEY, customer_id bigint, ordered_at date, amount numeric)");
    db.exec("CREATE INDEX ON " + table + " (customer_id)");
    it::set_engine_date(db, date);
    db.exec("SELECT lifecycle.track('" + table + "', 'customer_id', 'ordered_at', 'amount', 'it_policy'" +
            capture_argument() + ")");
}

void untrack_all(Connection& db) {
    db.exec("SELECT lifecycle.untrack(source) FROM lifecycle.sources");
}

// Waits until the engine has caught up: nothing queued and nothing due.
void settle(Connection& db) {
    ASSERT_TRUE(it::wait_until([&] {
        return db.value("SELECT queued = 0 AND due = 0 FROM lifecycle.worker_status") == "t";
    })) << "the worker did not catch up";
    it::wait_for_tick(db);
}

std::string add_days(Connection& db, const std::string& date, int days) {
    return db.value("SELECT (date '" + date + "' + " + std::to_string(days) + ")::text");
}

}  // namespace

// One customer's life, as a LISTENing client sees it: new -> active -> at_risk ->
// inactive -> lapsed -> active again. Under it_policy (onboarding 10, at_risk 20,
// inactive 40, lapsed 60 days) with purchases on day 0 and day 7: active from day 11
// (first + 11), at_risk from day 28 (last + 21), inactive from day 48, lapsed from day 68;
// a purchase on day 100 makes the customer active.
TEST(Worker, ScriptedLifeIsAnnouncedExactly) {
    Connection db, listener;
    const std::string d0 = "2030-01-01";
    fresh_source(db, "it_life", d0);
    listener.exec("LISTEN lifecycle");
    db.exec("INSERT INTO it_life (customer_id, ordered_at, amount) VALUES (7, '" + d0 + "', 10)");
    settle(db);
    it::set_engine_date(db, add_days(db, d0, 7));
    db.exec("INSERT INTO it_life (customer_id, ordered_at, amount) VALUES (7, '" + add_days(db, d0, 7) + "', 5)");
    settle(db);
    it::set_engine_date(db, add_days(db, d0, 30));   // two steps in one jump
    settle(db);
    it::set_engine_date(db, add_days(db, d0, 100));  // two more
    settle(db);
    db.exec("INSERT INTO it_life (customer_id, ordered_at, amount) VALUES (7, '" + add_days(db, d0, 100) + "', 8)");
    settle(db);

    // The default payload names no customer: the listener reads each announced range of
    // ids from the log, as docs/engine.md tells applications to.
    std::vector<it::Announced> got;
    for (const auto& payload : listener.notifications(std::chrono::milliseconds(1500))) {
        const it::Summary summary = it::parse_summary(payload);
        EXPECT_EQ(summary.source, "public.it_life") << payload;
        EXPECT_EQ(payload.find("\"7\""), std::string::npos) << payload;
        const std::string range = " FROM lifecycle.transitions WHERE id BETWEEN " +
                                  std::to_string(summary.first_id) + " AND " +
                                  std::to_string(summary.last_id) + " ORDER BY id";
        const auto ids = db.column("SELECT id" + range);
        const auto customers = db.column("SELECT customer" + range);
        const auto from = db.column("SELECT from_stage" + range);
        const auto to = db.column("SELECT to_stage" + range);
        const auto cause = db.column("SELECT cause" + range);
        const auto on = db.column("SELECT effective" + range);
        EXPECT_EQ(static_cast<long>(ids.size()), summary.transitions) << payload;
        for (size_t i = 0; i < ids.size(); ++i)
            got.push_back({std::stol(ids[i]), customers[i], from[i], to[i], cause[i], on[i]});
    }
    const std::vector<std::vector<std::string>> expected = {
        {"prospect", "new", "purchase", d0},
        {"new", "active", "time", add_days(db, d0, 11)},
        {"active", "at_risk", "time", add_days(db, d0, 28)},
        {"at_risk", "inactive", "time", add_days(db, d0, 48)},
        {"inactive", "lapsed", "time", add_days(db, d0, 68)},
        {"lapsed", "active", "purchase", add_days(db, d0, 100)},
    };
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].customer, "7");
        EXPECT_EQ((std::vector<std::string>{got[i].from, got[i].to, got[i].cause, got[i].on}), expected[i])
            << "transition " << i;
        if (i > 0) {
            EXPECT_GT(got[i].id, got[i - 1].id);
        }
    }
    // The log holds the same rows (ids included), after the 'initial' ones.
    const auto logged = db.column(
        "SELECT t.id FROM lifecycle.transitions t JOIN lifecycle.sources s ON s.id = t.source_id "
        "WHERE s.source = 'it_life'::regclass AND cause <> 'initial' ORDER BY t.id");
    ASSERT_EQ(logged.size(), got.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(std::stol(logged[i]), got[i].id);
    untrack_all(db);
}

// DELETE and UPDATE correct the stage (cause correction); deleting every order removes
// the customer; TRUNCATE empties the source's stage table.
TEST(Worker, DeletesAndUpdatesCorrect) {
    Connection db;
    const std::string d0 = "2031-01-01";
    fresh_source(db, "it_fix", d0);
    db.exec("INSERT INTO it_fix (customer_id, ordered_at, amount) VALUES "
            "(1, '2030-09-01', 5), (1, '" + d0 + "', 5), (2, '" + d0 + "', 7), (3, '2030-12-20', 1)");
    settle(db);
    EXPECT_EQ(db.value("SELECT stage FROM lifecycle.customer_stage WHERE customer = '1'"), "active");
    db.exec("DELETE FROM it_fix WHERE customer_id = 1 AND ordered_at = '" + d0 + "'");  // a refund
    settle(db);
    EXPECT_EQ(db.value("SELECT stage FROM lifecycle.customer_stage WHERE customer = '1'"), "lapsed");
    EXPECT_EQ(db.value("SELECT cause FROM lifecycle.transitions WHERE customer = '1' ORDER BY id DESC LIMIT 1"),
              "correction");
    db.exec("UPDATE it_fix SET customer_id = 3 WHERE customer_id = 2");  // order moved
    settle(db);
    EXPECT_EQ(db.number("SELECT count(*) FROM lifecycle.customer_stage WHERE customer = '2'"), 0);
    EXPECT_EQ(db.value("SELECT purchases || ' ' || spend FROM lifecycle.customer_stage WHERE customer = '3'"),
              "2 8");
    EXPECT_EQ(db.number("SELECT it_differences('it_fix', 'it_policy')"), 0);
    db.exec("TRUNCATE it_fix");
    settle(db);
    EXPECT_EQ(db.number("SELECT count(*) FROM lifecycle.customer_stage c JOIN lifecycle.sources s "
                        "ON s.id = c.source_id WHERE s.source = 'it_fix'::regclass"), 0);
    EXPECT_EQ(db.number("SELECT it_broken_chains('it_fix')"), 0);
    untrack_all(db);
}

// A source whose part of a tick fails is rolled back alone and tried again after a pause:
// nothing it took from the queue is lost, its error shows in source_status, the tick
// itself succeeds, another source's orders are staged and announced meanwhile, and after
// the fault is gone every change is applied exactly once.
TEST(Worker, FailedSourceLosesNothingAndStopsNoOther) {
    Connection db;
    Connection listener;
    listener.exec("LISTEN lifecycle");
    const std::string d0 = "2032-01-01";
    fresh_source(db, "it_fail", d0);
    db.exec("DROP TABLE IF EXISTS it_ok CASCADE");
    db.exec("CREATE TABLE it_ok (id bigserial PRIMARY KEY, customer_id bigint, ordered_at date, "
            "amount numeric)");
    db.exec("CREATE INDEX ON it_ok (customer_id)");
    db.exec("SELECT lifecycle.track('it_ok', 'customer_id', 'ordered_at', 'amount', 'it_policy'" +
            capture_argument() + ")");
    db.exec("CREATE TABLE IF NOT EXISTS it_fault (on_ boolean)");
    db.exec("DELETE FROM it_fault");
    db.exec("INSERT INTO it_fault VALUES (true)");
    db.exec("GRANT SELECT ON it_fault TO lifecycle_worker");  // the worker's role fires it
    // (a fault of it_fail's transitions only)
    db.exec("CREATE OR REPLACE FUNCTION it_fault_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF (SELECT on_ FROM public.it_fault) AND NEW.source_id = "
            "(SELECT id FROM lifecycle.sources WHERE source = 'public.it_fail'::regclass) "
            "THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$");
    db.exec("CREATE TRIGGER it_fault BEFORE INSERT ON lifecycle.transitions "
            "FOR EACH ROW EXECUTE FUNCTION it_fault_trigger()");
    const long tick_errors_before = db.number("SELECT coalesce(errors, 0) FROM lifecycle.worker_status");
    db.exec("INSERT INTO it_fail (customer_id, ordered_at, amount) "
            "SELECT g, '" + d0 + "', g FROM generate_series(1, 50) g");
    db.exec("INSERT INTO it_ok (customer_id, ordered_at, amount) "
            "SELECT g, '" + d0 + "', g FROM generate_series(1, 30) g");
    EXPECT_TRUE(it::wait_until([&] {
        return db.number("SELECT errors FROM lifecycle.source_status WHERE source = 'it_fail'") >= 2;
    })) << "the fault did not make the source fail";
    EXPECT_EQ(db.value("SELECT last_error FROM lifecycle.source_status WHERE source = 'it_fail'"),
              "injected fault");
    // The other source went on: staged, and announced (by no notification of it_fail's).
    EXPECT_TRUE(it::wait_until([&] {
        return db.number("SELECT count(*) FROM lifecycle.customer_stage c JOIN lifecycle.sources s "
                         "ON s.id = c.source_id WHERE s.source = 'it_ok'::regclass") == 30;
    })) << "the other source was not staged";
    EXPECT_EQ(db.number("SELECT it_differences('it_ok', 'it_policy')"), 0);
    bool announced_ok = false;
    for (const std::string& payload : listener.notifications(std::chrono::milliseconds(2000))) {
        if (payload.find("\"public.it_ok\"") != std::string::npos) announced_ok = true;
        EXPECT_EQ(payload.find("\"public.it_fail\""), std::string::npos) << payload;
    }
    EXPECT_TRUE(announced_ok) << "no notification of it_ok's transitions";
    EXPECT_EQ(db.number("SELECT count(*) FROM lifecycle.customer_stage c JOIN lifecycle.sources s "
                        "ON s.id = c.source_id WHERE s.source = 'it_fail'::regclass"), 0);
    // all still queued (or, tracked by a watermark, still above it: not yet taken)
    EXPECT_EQ(db.number("SELECT (SELECT queued FROM lifecycle.source_status WHERE source = 'it_fail') + "
                        "(SELECT count(*) FROM it_fail o JOIN lifecycle.sources s "
                        " ON s.source = 'it_fail'::regclass WHERE o.id > s.watermark)"),
              50);
    db.exec("UPDATE it_fault SET on_ = false");
    // The source is tried again at its retry_at (1 s doubled per failure): wait for that
    // success, not just for an empty queue, which a watermark source never shows.
    EXPECT_TRUE(it::wait_until([&] {
        return db.value("SELECT consecutive_errors FROM lifecycle.source_status "
                        "WHERE source = 'it_fail'") == "0";
    }, std::chrono::seconds(90))) << "the source did not recover";
    settle(db);
    db.exec("DROP TRIGGER it_fault ON lifecycle.transitions");
    EXPECT_EQ(db.number("SELECT it_differences('it_fail', 'it_policy')"), 0);
    EXPECT_EQ(db.number("SELECT count(*) FROM lifecycle.transitions WHERE cause = 'purchase' "
                        "AND source_id = (SELECT id FROM lifecycle.sources WHERE source = 'it_fail'::regclass)"),
              50);
    EXPECT_EQ(db.value("SELECT consecutive_errors || ' ' || (retry_at IS NULL) FROM lifecycle.source_status "
                       "WHERE source = 'it_fail'"),
              "0 true");
    // (the ticks themselves never failed)
    EXPECT_EQ(db.number("SELECT coalesce(errors, 0) FROM lifecycle.worker_status"), tick_errors_before);
    EXPECT_EQ(db.value("SELECT consecutive_errors FROM lifecycle.worker_status"), "0");
    untrack_all(db);
}

// Writers keep writing while the worker is killed (pg_terminate_backend) and while the
// server stops immediately (a crash) and starts again. Afterwards the stage table equals
// the recomputation and the log has every transition once.
TEST(Worker, SurvivesTerminateAndImmediateRestart) {
    const std::string d0 = "2033-01-01";
    {
        Connection db;
        fresh_source(db, "it_crash", d0);
    }
    std::atomic<bool> stop{false};
    std::atomic<long> written{0};
    std::thread writer([&] {
        std::mt19937 random(7);
        while (!stop) {
            try {
                Connection w;
                while (!stop) {
                    w.exec("INSERT INTO it_crash (customer_id, ordered_at, amount) VALUES (" +
                           std::to_string(random() % 300) + ", '" + d0 + "', 1)");
                    ++written;
                }
            } catch (const std::exception&) {  // the server went away: reconnect
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
    });
    std::this_thread::sleep_for(std::chrono::seconds(2));
    {
        Connection db;
        EXPECT_EQ(db.value("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE backend_type = 'lifecycle worker' AND datname = current_database()"), "t");
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ(it::pg_ctl("stop -m immediate"), 0);
    EXPECT_EQ(it::pg_ctl("start -w"), 0);
    std::this_thread::sleep_for(std::chrono::seconds(3));
    stop = true;
    writer.join();
    EXPECT_GT(written.load(), 100);
    Connection db;
    EXPECT_TRUE(it::wait_until([&] {
        return db.value("SELECT running FROM lifecycle.worker_status") == "t";
    })) << "no worker after the restart";
    settle(db);
    EXPECT_EQ(db.number("SELECT it_differences('it_crash', 'it_policy')"), 0);
    EXPECT_EQ(db.number("SELECT it_broken_chains('it_crash')"), 0);
    // Each customer became new exactly once.
    EXPECT_EQ(db.number("SELECT count(*) - count(DISTINCT customer) FROM lifecycle.transitions "
                        "WHERE to_stage = 'new' AND source_id = (SELECT id FROM lifecycle.sources "
                        "WHERE source = 'it_crash'::regclass)"), 0);
    untrack_all(db);
}

// Thousands of random operations while the worker refreshes (and sometimes a manual
// refresh runs too), with time jumps; at the end the stage table equals the
// recomputation and the log chains.
TEST(Worker, RandomizedWorkloadMatchesRecomputation) {
    Connection db;
    std::string today = "2034-01-01";
    fresh_source(db, "it_random", today);
    const unsigned seed = 20261122;
    std::mt19937 random(seed);
    std::cout << "[          ] seed " << seed << std::endl;
    int operations = 0;
    for (int step = 0; step < 3000; ++step) {
        const int r = static_cast<int>(random() % 100);
        const std::string customer = std::to_string(random() % 200);
        const std::string some_order = "(SELECT min(id) FROM it_random WHERE id >= " +
                                       std::to_string(random() % 4000) + ")";
        if (r < 45) {
            db.exec("INSERT INTO it_random (customer_id, ordered_at, amount) VALUES (" + customer +
                    ", '" + today + "', " + std::to_string(random() % 100) + ")");
        } else if (r < 55) {
            db.exec("INSERT INTO it_random (customer_id, ordered_at, amount) VALUES (" + customer +
                    ", date '" + today + "' - " + std::to_string(random() % 90) + ", 3)");
        } else if (r < 65) {
            db.exec("UPDATE it_random SET amount = amount + 1, ordered_at = ordered_at - 3 WHERE id = " + some_order);
        } else if (r < 70) {
            db.exec("UPDATE it_random SET customer_id = " + customer + " WHERE id = " + some_order);
        } else if (r < 82) {
            db.exec("DELETE FROM it_random WHERE id = " + some_order);
        } else if (r < 84) {
            db.exec("DELETE FROM it_random WHERE customer_id = " + customer);
        } else if (r < 86) {
            db.exec("SELECT lifecycle.refresh(50)");
        } else if (r < 87) {
            today = add_days(db, today, static_cast<int>(random() % 25));
            db.exec("ALTER SYSTEM SET lifecycle.as_of = '" + today + "'");
            db.exec("SELECT pg_reload_conf()");
            it::wait_for_tick(db);  // orders of the new day must not come before the worker's day
            it::wait_for_tick(db);
        }
        ++operations;
    }
    EXPECT_EQ(operations, 3000);
    settle(db);
    EXPECT_GT(db.number("SELECT count(*) FROM lifecycle.customer_stage"), 150);
    EXPECT_EQ(db.number("SELECT it_differences('it_random', 'it_policy')"), 0);
    EXPECT_EQ(db.number("SELECT it_broken_chains('it_random')"), 0);
    untrack_all(db);
}

// With lifecycle.notify_payload = 'full', a time jump that moves 5,000 customers two
// steps at once: the notifications are chunked under PostgreSQL's 8,000-byte payload
// limit and carry exactly the logged transitions.
TEST(Worker, ManyTransitionsAreChunked) {
    Connection db, listener;
    const std::string d0 = "2035-01-01";
    db.exec("ALTER SYSTEM SET lifecycle.notify_payload = 'full'");
    fresh_source(db, "it_many", d0);
    db.exec("INSERT INTO it_many (customer_id, ordered_at, amount) "
            "SELECT g, '" + d0 + "', 1 FROM generate_series(1, 5000) g");
    settle(db);
    const long last_id = db.number("SELECT max(id) FROM lifecycle.transitions");
    listener.exec("LISTEN lifecycle");
    // every one: new -> active on day 11, active -> at_risk on day 21
    it::set_engine_date(db, add_days(db, d0, 30));
    settle(db);
    std::set<long> announced;
    size_t largest = 0;
    long payloads = 0;
    for (const auto& p : listener.notifications(std::chrono::milliseconds(2000))) {
        largest = std::max(largest, p.size());
        ++payloads;
        for (const auto& a : it::parse_payload(p)) {
            EXPECT_TRUE(announced.insert(a.id).second) << "announced twice: " << a.id;
            EXPECT_EQ(a.cause, "time");
        }
    }
    EXPECT_LT(largest, 8000u);
    EXPECT_GT(payloads, 40);
    const auto logged = db.column("SELECT id FROM lifecycle.transitions WHERE id > " +
                                  std::to_string(last_id) + " ORDER BY id");
    EXPECT_EQ(logged.size(), 10000u);
    ASSERT_EQ(announced.size(), logged.size());
    for (const auto& id : logged) EXPECT_TRUE(announced.count(std::stol(id))) << id;
    db.exec("ALTER SYSTEM RESET lifecycle.notify_payload");
    db.exec("SELECT pg_reload_conf()");
    untrack_all(db);
}

// lifecycle.poll_interval: with a regular tick only every hour, a purchase is still
// logged within a second or so, because the worker checks for queued changes between
// ticks; with poll_interval = 0 it waits for the next tick (here: the reset of the
// settings, which wakes the worker).
TEST(Worker, PollingPicksUpPurchasesBetweenTicks) {
    Connection db;
    const std::string d0 = "2035-01-01";
    fresh_source(db, "it_poll", d0);
    settle(db);
    auto logged = [&](int customer) {
        return db.value("SELECT count(*) FROM lifecycle.transitions t "
                        "JOIN lifecycle.sources s ON s.id = t.source_id "
                        "WHERE s.source = 'it_poll'::regclass AND t.customer = '" +
                        std::to_string(customer) + "'") == "1";
    };
    auto ticks = [&] { return db.number("SELECT ticks FROM lifecycle.worker_status"); };
    auto buy = [&](int customer) {
        db.exec("INSERT INTO it_poll (customer_id, ordered_at, amount) VALUES (" +
                std::to_string(customer) + ", '" + d0 + "', 1)");
    };
    db.exec("ALTER SYSTEM SET lifecycle.refresh_interval = '1h'");
    db.exec("ALTER SYSTEM SET lifecycle.poll_interval = '100ms'");
    std::string since = db.value("SELECT clock_timestamp()");
    db.exec("SELECT pg_reload_conf()");
    it::wait_for_tick_since(db, since);  // the reload wakes the worker
    // The hour is in force: no tick for a second (there would be five at 200 ms).
    std::this_thread::sleep_for(std::chrono::seconds(1));
    long before = ticks();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_EQ(ticks(), before);

    const auto bought = std::chrono::steady_clock::now();
    buy(1);
    EXPECT_TRUE(it::wait_until([&] { return logged(1); }, std::chrono::seconds(5)))
        << "not picked up between ticks";
    EXPECT_LT(std::chrono::steady_clock::now() - bought, std::chrono::seconds(3));

    db.exec("ALTER SYSTEM SET lifecycle.poll_interval = 0");
    since = db.value("SELECT clock_timestamp()");
    db.exec("SELECT pg_reload_conf()");
    it::wait_for_tick_since(db, since);
    std::this_thread::sleep_for(std::chrono::seconds(1));  // any SIGHUP-driven tick is over
    before = ticks();
    buy(2);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_FALSE(logged(2)) << "picked up with polling off";
    EXPECT_EQ(ticks(), before);

    db.exec("ALTER SYSTEM RESET lifecycle.refresh_interval");
    db.exec("ALTER SYSTEM RESET lifecycle.poll_interval");
    db.exec("SELECT pg_reload_conf()");
    EXPECT_TRUE(it::wait_until([&] { return logged(2); })) << "not picked up after the reset";
    untrack_all(db);
}

// DROP DATABASE of a database the worker serves: from PostgreSQL 19 on the worker is
// marked BGWORKER_INTERRUPTIBLE (src/pg/compat.hpp) and the DROP ends it; before 19 the
// DROP fails while the worker is connected ("being accessed by other users") and only
// WITH (FORCE) ends it. Either way the other databases' workers go on.
TEST(Worker, DroppingAServedDatabaseEndsOnlyItsWorker) {
    it::Connection db;
    const long version = db.number("SHOW server_version_num");
    db.exec("CREATE DATABASE it_dropped");
    db.exec("ALTER SYSTEM SET lifecycle.databases = 'lifecycle_it, it_dropped'");
    db.exec("SELECT pg_reload_conf()");
    const std::string served =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'it_dropped' "
        "AND backend_type = 'lifecycle worker'";
    ASSERT_TRUE(it::wait_until([&] { return db.number(served) == 1; }))
        << "no worker for it_dropped";
    if (version >= 190000) {
        EXPECT_NO_THROW(db.exec("DROP DATABASE it_dropped"));
    } else {
        EXPECT_THROW(db.exec("DROP DATABASE it_dropped"), std::runtime_error);
        db.exec("DROP DATABASE it_dropped WITH (FORCE)");
    }
    EXPECT_EQ(db.number("SELECT count(*) FROM pg_database WHERE datname = 'it_dropped'"), 0);
    db.exec("ALTER SYSTEM RESET lifecycle.databases");
    db.exec("SELECT pg_reload_conf()");
    it::wait_for_tick(db);  // lifecycle_it's worker still ticks
}
