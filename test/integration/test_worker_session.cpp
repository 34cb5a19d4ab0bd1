// The worker's session is the worker's (issue 21, docs/worker.md "Its own session"): a
// database owner who is not a superuser sets, with ALTER DATABASE ... SET and ALTER ROLE
// lifecycle_worker SET, defaults that would make every tick fail
// (default_transaction_read_only, role), steer it (lifecycle.batch_size, search_path) or change
// how it reads text (DateStyle, TimeZone); after the worker reconnects, ticks go on with
// the server's batch size, and a tick that fails is still recorded in worker_status.
#include <gtest/gtest.h>

#include "harness.hpp"

using it::Connection;

namespace {

std::string worker_pid(Connection& db) {
    return db.value("SELECT pid FROM pg_stat_activity WHERE backend_type = 'lifecycle worker' "
                    "AND datname = current_database()");
}

// Ends the worker and waits for the launcher's new one (which connects under the
// settings in force now) to finish a tick.
void reconnect_worker(Connection& db) {
    const std::string old_pid = worker_pid(db);
    ASSERT_FALSE(old_pid.empty()) << "no worker";
    db.exec("SELECT pg_terminate_backend(" + old_pid + ")");
    ASSERT_TRUE(it::wait_until([&] {
        const std::string pid = worker_pid(db);
        return !pid.empty() && pid != old_pid;
    }, std::chrono::seconds(30))) << "no new worker";
    it::wait_for_tick(db);
}

// Undoes the database's and the role's settings and gives the database back to its
// owner, also when a check fails half-way (the later tests connect to this database).
struct Restore {
    Connection& db;
    std::string owner;
    ~Restore() {
        try {
            db.exec("ALTER DATABASE " + std::string("lifecycle_it") + " RESET ALL");
            db.exec("ALTER ROLE lifecycle_worker RESET ALL");
            db.exec("ALTER DATABASE lifecycle_it OWNER TO " + owner);
            db.exec("DROP ROLE IF EXISTS it_db_owner");
            db.exec("DROP TRIGGER IF EXISTS it_session_fault ON lifecycle.worker_state");
            db.exec("DROP TRIGGER IF EXISTS it_session_seen ON lifecycle.worker_state");
            db.exec("SELECT lifecycle.untrack(source) FROM lifecycle.sources");
            reconnect_worker(db);
        } catch (const std::exception& e) {
            ADD_FAILURE() << "restoring the database: " << e.what();
        }
    }
};

}  // namespace

TEST(WorkerSession, DatabaseAndRoleSettingsDoNotReachTheWorker) {
    Connection db;  // a superuser's, connected before the settings change
    ASSERT_EQ(db.value("SELECT current_database()"), "lifecycle_it");
    const std::string d0 = "2034-01-01";
    db.exec("SELECT lifecycle.untrack(source) FROM lifecycle.sources");
    db.exec("DROP TABLE IF EXISTS it_session CASCADE");
    db.exec("CREATE TABLE it_session (id bigserial PRIMARY KEY, customer_id bigint, ordered_at date, "
            "amount numeric)");
    db.exec("CREATE INDEX ON it_session (customer_id)");
    it::set_engine_date(db, d0);
    db.exec("SELECT lifecycle.track('it_session', 'customer_id', 'ordered_at', 'amount')");
    // A controlled failure of a whole tick: a trigger on the tick's own record (written after
    // the refresh; a fault inside a source's part would be contained to that source) that
    // raises while it_session_fault says so, on a tick's success only (the failure's record
    // must go through).
    db.exec("CREATE TABLE IF NOT EXISTS it_session_fault (on_ boolean)");
    db.exec("TRUNCATE it_session_fault");
    db.exec("INSERT INTO it_session_fault VALUES (false)");
    db.exec("GRANT SELECT ON it_session_fault TO lifecycle_worker");
    db.exec("CREATE OR REPLACE FUNCTION it_session_fault() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF (SELECT on_ FROM public.it_session_fault) AND NEW.ticks <> OLD.ticks THEN "
            "RAISE EXCEPTION 'injected session fault'; END IF; RETURN NEW; END $$");
    db.exec("CREATE TRIGGER it_session_fault BEFORE UPDATE ON lifecycle.worker_state "
            "FOR EACH ROW EXECUTE FUNCTION it_session_fault()");

    // What the worker's session says, seen from inside it: a trigger on its figures.
    db.exec("CREATE TABLE IF NOT EXISTS it_session_seen (settings text)");
    db.exec("TRUNCATE it_session_seen");
    db.exec("GRANT INSERT ON it_session_seen TO lifecycle_worker");
    db.exec("CREATE OR REPLACE FUNCTION it_session_seen() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN INSERT INTO public.it_session_seen SELECT concat_ws(' | ', current_user, "
            "current_setting('default_transaction_read_only'), current_setting('transaction_read_only'), "
            "current_setting('transaction_isolation'), current_setting('search_path'), "
            "current_setting('DateStyle'), current_setting('IntervalStyle'), "
            "current_setting('TimeZone') <> 'Pacific/Kiritimati', "
            "current_setting('statement_timeout'), current_setting('lifecycle.batch_size')); "
            "RETURN NEW; END $$");
    db.exec("CREATE TRIGGER it_session_seen BEFORE UPDATE ON lifecycle.worker_state "
            "FOR EACH ROW EXECUTE FUNCTION it_session_seen()");

    Restore restore{db, db.value("SELECT pg_get_userbyid(datdba) FROM pg_database "
                                 "WHERE datname = current_database()")};
    db.exec("DROP ROLE IF EXISTS it_db_owner");
    // CREATEROLE: in PostgreSQL 15 that is what ALTER ROLE lifecycle_worker SET needs.
    db.exec("CREATE ROLE it_db_owner LOGIN CREATEROLE NOSUPERUSER");
    db.exec("ALTER DATABASE lifecycle_it OWNER TO it_db_owner");
    {
        Connection owner("it_db_owner");
        ASSERT_EQ(owner.value("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"), "f");
        // From PostgreSQL 16 on, CREATEROLE alone no longer lets a role alter another (it
        // needs ADMIN on it): there the role's settings are made by a superuser, which the
        // worker must not follow either.
        Connection& role_setter =
            db.number("SELECT current_setting('server_version_num')::int") < 160000 ? owner : db;
        for (const char* setting :
             {"default_transaction_read_only = on", "role = lifecycle_reader",
              "search_path = it_nowhere", "DateStyle = 'SQL, DMY'",
              "TimeZone = 'Pacific/Kiritimati'", "IntervalStyle = 'sql_standard'",
              "statement_timeout = '1ms'", "lock_timeout = '1ms'", "extra_float_digits = -15",
              "default_transaction_isolation = 'serializable'"}) {
            owner.exec(std::string("ALTER DATABASE lifecycle_it SET ") + setting);
            role_setter.exec(std::string("ALTER ROLE lifecycle_worker SET ") + setting);
        }
        // The tick size is the server's: refused here ...
        EXPECT_THROW(owner.exec("ALTER DATABASE lifecycle_it SET lifecycle.batch_size = 1"),
                     std::runtime_error);
        EXPECT_THROW(role_setter.exec("ALTER ROLE lifecycle_worker SET lifecycle.batch_size = 1"),
                     std::runtime_error);
    }
    // ... and ignored when it is there anyway (stored by 0.2.0, where it was a user setting).
    db.exec("UPDATE pg_db_role_setting SET setconfig = setconfig || '{lifecycle.batch_size=1}' "
            "WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND setrole = 0");
    EXPECT_EQ(db.value("SELECT array_to_string(setconfig, ' ') LIKE '%default_transaction_read_only=on%"
                       "lifecycle.batch_size=1%' FROM pg_db_role_setting WHERE setdatabase = "
                       "(SELECT oid FROM pg_database WHERE datname = current_database()) AND setrole = 0"),
              "t");
    reconnect_worker(db);
    {
        // What the worker now connects under, as any new session of this role gets it ...
        Connection fresh("lifecycle_worker");
        EXPECT_EQ(fresh.value("SHOW default_transaction_read_only"), "on");
        EXPECT_EQ(fresh.value("SHOW TimeZone"), "Pacific/Kiritimati");
        EXPECT_EQ(fresh.value("SELECT current_user"), "lifecycle_reader");
    }
    // ... and what its ticks ran under since it reconnected.
    db.exec("TRUNCATE it_session_seen");
    it::wait_for_tick(db);
    EXPECT_EQ(db.value("SELECT string_agg(DISTINCT settings, ' // ') FROM it_session_seen"),
              "lifecycle_worker | off | off | read committed | pg_catalog, pg_temp | ISO, MDY | postgres | t | 0 | "
              "10000");

    // A failing tick is recorded, although the defaults say read-only.
    const long errors_before = db.number("SELECT coalesce(errors, 0) FROM lifecycle.worker_status");
    db.exec("UPDATE it_session_fault SET on_ = true");
    db.exec("INSERT INTO it_session (customer_id, ordered_at, amount) "
            "SELECT g, '" + d0 + "', g FROM generate_series(1, 50) g");
    EXPECT_TRUE(it::wait_until([&] {
        return db.number("SELECT coalesce(errors, 0) FROM lifecycle.worker_status") >= errors_before + 2;
    })) << "failed ticks were not recorded";
    EXPECT_EQ(db.value("SELECT last_error FROM lifecycle.worker_status"), "injected session fault");
    EXPECT_EQ(db.value("SELECT last_error_at > now() - interval '1 minute' FROM lifecycle.worker_status"),
              "t");

    // The fault gone, the next tick takes all 50 customers at once (the server's batch
    // size, 10,000; with lifecycle.batch_size = 1 it would take 50 ticks): their 50
    // transitions share one transaction's logged_at.
    db.exec("UPDATE it_session_fault SET on_ = false");
    ASSERT_TRUE(it::wait_until([&] {
        return db.value("SELECT queued = 0 AND due = 0 FROM lifecycle.worker_status") == "t";
    })) << "the worker did not catch up";
    it::wait_for_tick(db);
    EXPECT_EQ(db.value("SELECT count(*) || ' ' || count(DISTINCT logged_at) FROM lifecycle.transitions "
                       "WHERE cause = 'purchase' AND source_id = "
                       "(SELECT id FROM lifecycle.sources WHERE source = 'it_session'::regclass)"),
              "50 1");
    EXPECT_EQ(db.value("SELECT consecutive_errors FROM lifecycle.worker_status"), "0");
    EXPECT_EQ(db.number("SELECT count(*) FROM lifecycle.customer_stage c JOIN lifecycle.sources s "
                        "ON s.id = c.source_id WHERE s.source = 'it_session'::regclass AND c.stage = 'new'"),
              50);
}
