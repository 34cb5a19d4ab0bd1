// What an unprivileged role can learn from, or do to, the running engine (docs/security.md):
// the worker is not a superuser; the default NOTIFY payload carries no customer id; no
// lock an ordinary role can take stalls the worker's ticks.
#include <gtest/gtest.h>

#include <thread>

#include "harness.hpp"

using it::Connection;

namespace {

void make_roles(Connection& db) {
    db.exec("DO $$ BEGIN "
            "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'it_nobody') THEN "
            "CREATE ROLE it_nobody LOGIN; END IF; END $$");
}

void track_orders(Connection& db, const std::string& table) {
    db.exec("SELECT lifecycle.untrack(source) FROM lifecycle.sources");
    db.exec("DROP TABLE IF EXISTS " + table);
    db.exec("CREATE TABLE " + table + " (customer_id bigint, ordered_at date, amount numeric)");
    db.exec("CREATE INDEX ON " + table + " (customer_id)");
    db.exec("SELECT lifecycle.track('" + table + "', 'customer_id', 'ordered_at', 'amount')");
}

bool queue_drains(Connection& db) {
    return it::wait_until([&] {
        return db.value("SELECT queued = 0 AND due = 0 FROM lifecycle.worker_status") == "t";
    }, std::chrono::seconds(10));
}

}  // namespace

TEST(Security, WorkerIsNotASuperuser) {
    Connection db;
    ASSERT_TRUE(it::wait_until([&] {
        return db.value("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lifecycle worker'") == "1";
    }));
    EXPECT_EQ(db.value("SELECT a.usename || ' ' || r.rolsuper FROM pg_stat_activity a "
                       "JOIN pg_roles r ON r.rolname = a.usename "
                       "WHERE a.backend_type = 'lifecycle worker'"),
              "lifecycle_worker false");
}

// An unprivileged listener hears that transitions happened, and when, but not who; the
// log itself is closed to it.
TEST(Security, DefaultPayloadNamesNoCustomer) {
    Connection db;
    make_roles(db);
    track_orders(db, "it_secret");
    Connection nobody("it_nobody");
    nobody.exec("LISTEN lifecycle");
    db.exec("INSERT INTO it_secret VALUES (987654321, current_date, 10), (123456789, current_date, 5)");
    ASSERT_TRUE(queue_drains(db));
    const auto payloads = nobody.notifications(std::chrono::milliseconds(3000));
    ASSERT_EQ(payloads.size(), 1u);
    const std::string& p = payloads.front();
    EXPECT_EQ(p.find("987654321"), std::string::npos) << p;
    EXPECT_EQ(p.find("123456789"), std::string::npos) << p;
    const it::Summary s = it::parse_summary(p);
    EXPECT_EQ(s.source, "public.it_secret");
    EXPECT_EQ(s.transitions, 2);
    EXPECT_EQ(db.value("SELECT string_agg(customer, ',' ORDER BY customer) FROM lifecycle.transitions "
                       "WHERE id BETWEEN " + std::to_string(s.first_id) + " AND " + std::to_string(s.last_id)),
              "123456789,987654321");
    EXPECT_THROW(nobody.exec("SELECT * FROM lifecycle.transitions"), std::runtime_error);
    EXPECT_THROW(nobody.exec("SELECT * FROM lifecycle.customer_stage"), std::runtime_error);
    db.exec("SELECT lifecycle.untrack('it_secret')");
}

// An unprivileged session holding advisory locks (the key refreshes once used among
// them) in an open transaction with a snapshot does not hold back a tick; it cannot lock
// the refresh lock's table at all.
TEST(Security, NoOrdinaryLockStallsTheWorker) {
    Connection db;
    make_roles(db);
    track_orders(db, "it_stall");
    Connection nobody("it_nobody");
    nobody.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
    nobody.exec("SELECT pg_advisory_xact_lock(7810175542870287461)");
    nobody.exec("SELECT pg_advisory_xact_lock(k) FROM generate_series(1, 1000) k");
    nobody.exec("SELECT pg_advisory_lock(k::int, j::int) FROM generate_series(1, 30) k, generate_series(1, 30) j");
    db.exec("INSERT INTO it_stall VALUES (42, current_date, 1)");
    EXPECT_TRUE(queue_drains(db)) << "a tick waited for an advisory lock";
    EXPECT_EQ(db.value("SELECT stage FROM lifecycle.customer_stage WHERE customer = '42'"), "new");
    nobody.exec("ROLLBACK");
    EXPECT_THROW(nobody.exec("BEGIN; LOCK TABLE lifecycle.refresh_lock IN ACCESS SHARE MODE"),
                 std::runtime_error);
    nobody.exec("ROLLBACK");
    EXPECT_THROW(nobody.exec("BEGIN; LOCK TABLE lifecycle.customer_stage IN SHARE MODE"),
                 std::runtime_error);
    nobody.exec("ROLLBACK");
    nobody.exec("SELECT pg_advisory_unlock_all()");
    db.exec("SELECT lifecycle.untrack('it_stall')");
}

// A superuser's session that holds the refresh lock makes the worker's tick fail after
// lifecycle.lock_timeout (and be retried), not wait for ever holding a snapshot.
TEST(Security, WorkerGivesUpWaitingAfterLockTimeout) {
    Connection db, holder;
    track_orders(db, "it_wait");
    db.exec("ALTER SYSTEM SET lifecycle.lock_timeout = '2s'");
    db.exec("SELECT pg_reload_conf()");
    it::wait_for_tick(db);
    const long errors = db.number("SELECT coalesce(errors, 0) FROM lifecycle.worker_status");
    holder.exec("BEGIN; LOCK TABLE lifecycle.refresh_lock IN EXCLUSIVE MODE");
    db.exec("INSERT INTO it_wait VALUES (1, current_date, 1)");
    // While it waits, the worker holds no snapshot: its backend_xmin is NULL.
    ASSERT_TRUE(it::wait_until([&] {
        return db.value("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'lifecycle worker' "
                        "AND wait_event_type = 'Lock'") == "1";
    })) << "the worker was never seen waiting for the lock";
    EXPECT_EQ(db.value("SELECT backend_xmin IS NULL AND backend_xid IS NULL FROM pg_stat_activity "
                       "WHERE backend_type = 'lifecycle worker'"),
              "t");
    EXPECT_TRUE(it::wait_until([&] {
        return db.number("SELECT coalesce(errors, 0) FROM lifecycle.worker_status") > errors;
    })) << "the tick did not time out";
    EXPECT_NE(db.value("SELECT last_error FROM lifecycle.worker_status").find("lock timeout"),
              std::string::npos);
    holder.exec("ROLLBACK");
    EXPECT_TRUE(queue_drains(db));
    db.exec("ALTER SYSTEM RESET lifecycle.lock_timeout");
    db.exec("SELECT pg_reload_conf()");
    db.exec("SELECT lifecycle.untrack('it_wait')");
}
