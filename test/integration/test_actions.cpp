// The playbook actions queue with real concurrent consumers (docs/playbooks.md):
// claim_actions hands every action to exactly one consumer (FOR UPDATE SKIP LOCKED, and a
// claimed row is claimable again only after its lease), an expired claim goes to exactly
// one new consumer, repeated reports change nothing, and the worker announces the
// actions it makes on lifecycle_actions without naming customers.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <regex>
#include <set>
#include <thread>

#include "harness.hpp"

using it::Connection;

namespace {

// Synthetic actions belong to a source id no tracked source has (ids are serial, so
// positive) and to negative enrolment ids, so that nothing the worker does to real
// enrolments (ending them cancels their actions) or real customers (contact policies
// count their actions) touches them, and they are easy to delete.
const std::string kSource = "-4242";

void make_role(Connection& db, const std::string& role, const std::string& member_of) {
    db.exec("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '" + role + "') THEN "
            "CREATE ROLE " + role + " LOGIN" + (member_of.empty() ? "" : " IN ROLE " + member_of) +
            "; END IF; END $$");
}

void drop_synthetic(Connection& db) {
    db.exec("DELETE FROM lifecycle.action_outcomes WHERE action_id IN "
            "(SELECT id FROM lifecycle.actions WHERE source_id = " + kSource + ")");
    db.exec("DELETE FROM lifecycle.actions WHERE source_id = " + kSource);
}

// A fresh start: no synthetic actions left by a failed run, the consumers' role, and
// nothing else claimable (claim_actions hands out any due action in the database).
void start(Connection& db) {
    drop_synthetic(db);
    make_role(db, "it_sender", "lifecycle_sender");
    ASSERT_EQ(db.number("SELECT count(*) FROM lifecycle.actions WHERE status IN ('due', 'claimed')"), 0)
        << "other claimable actions would be handed out too";
}

void finish(Connection& db) {
    drop_synthetic(db);
    db.exec("DROP ROLE IF EXISTS it_sender");
}

// `n` due actions, due long ago (before any lifecycle.as_of the tests set), ids returned.
std::vector<std::string> insert_due(Connection& db, int n) {
    return db.column(
        "INSERT INTO lifecycle.actions (enrollment_id, playbook, step, source_id, customer, channel, "
        "message_key, kind, scheduled_for, due_at) "
        "SELECT -g, 'it_claims', 1, " + kSource + ", 'c' || g, 'email', 'k', 'message', "
        "'2000-01-01', '2000-01-01' FROM generate_series(1, " + std::to_string(n) + ") g RETURNING id");
}

std::string claim(const std::string& consumer, const std::string& lease) {
    return "SELECT id FROM lifecycle.claim_actions('" + consumer + "', 100, '" + lease + "')";
}

std::string in_list(const std::vector<std::string>& ids) {
    std::string out;
    for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
    return "(" + out + ")";
}

}  // namespace

// Two consumers drain 10,000 actions at the same time: every action goes to exactly one
// of them, and each reports 'sent' for its own.
TEST(Actions, ConcurrentConsumersClaimEachActionOnce) {
    Connection db;
    start(db);
    const auto inserted = insert_due(db, 10000);
    ASSERT_EQ(inserted.size(), 10000u);
    std::vector<std::string> got[2];
    std::vector<std::string> statuses[2];
    std::string errors[2];
    std::atomic<int> ready{0};
    auto consumer = [&](int n) {
        try {
            Connection c("it_sender");
            ++ready;
            while (ready < 2) std::this_thread::yield();  // start together, to contend
            const std::string name = "consumer-" + std::to_string(n + 1);
            for (;;) {
                const auto batch = c.column(claim(name, "10 minutes"));
                if (batch.empty()) break;
                got[n].insert(got[n].end(), batch.begin(), batch.end());
            }
            std::string array;
            for (const auto& id : got[n]) array += (array.empty() ? "" : ",") + id;
            statuses[n] = c.column("SELECT lifecycle.report_action(id, 'sent', consumer => '" + name +
                                   "') FROM unnest('{" + array + "}'::bigint[]) id");
        } catch (const std::exception& e) {
            errors[n] = e.what();
        }
    };
    std::thread one(consumer, 0), two(consumer, 1);
    one.join();
    two.join();
    EXPECT_EQ(errors[0], "");
    EXPECT_EQ(errors[1], "");
    std::cout << "[          ] split: consumer-1 " << got[0].size() << ", consumer-2 "
              << got[1].size() << std::endl;
    const std::set<std::string> first(got[0].begin(), got[0].end()), second(got[1].begin(), got[1].end());
    EXPECT_EQ(first.size(), got[0].size()) << "consumer-1 got an id twice";
    EXPECT_EQ(second.size(), got[1].size()) << "consumer-2 got an id twice";
    std::vector<std::string> both;
    std::set_intersection(first.begin(), first.end(), second.begin(), second.end(), std::back_inserter(both));
    EXPECT_TRUE(both.empty()) << both.size() << " ids went to both, e.g. " << both.front();
    std::set<std::string> all(first);
    all.insert(second.begin(), second.end());
    EXPECT_EQ(all, std::set<std::string>(inserted.begin(), inserted.end()));
    for (int n = 0; n < 2; ++n) {
        EXPECT_EQ(statuses[n].size(), got[n].size());
        EXPECT_EQ(std::count(statuses[n].begin(), statuses[n].end(), "sent"),
                  static_cast<long>(statuses[n].size()));
    }
    EXPECT_EQ(db.number("SELECT count(*) FROM lifecycle.actions WHERE source_id = " + kSource +
                        " AND status = 'sent' AND attempts = 1"), 10000);
    // claimed_by says who had it; the outcome row names the same consumer
    EXPECT_EQ(db.number("SELECT count(*) FROM lifecycle.actions a JOIN lifecycle.action_outcomes o "
                        "ON o.action_id = a.id AND o.attempt = 1 AND o.outcome = 'sent' "
                        "WHERE a.source_id = " + kSource + " AND o.consumer = a.claimed_by"), 10000);
    finish(db);
}

// A consumer that claims and goes silent loses its actions when the lease runs out; two
// consumers racing for them get each one exactly once, and the new lease holds.
TEST(Actions, ExpiredClaimIsReclaimedOnce) {
    Connection db;
    start(db);
    const auto inserted = insert_due(db, 5);
    {
        Connection a("it_sender");
        EXPECT_EQ(a.column(claim("A", "1 second")).size(), 5u);
        EXPECT_TRUE(a.column(claim("A", "1 second")).empty()) << "claimed while the lease runs";
    }
    // wait just until every lease has run out (claim_expires < now())
    ASSERT_TRUE(it::wait_until([&] {
        return db.value("SELECT bool_and(claim_expires < now()) FROM lifecycle.actions "
                        "WHERE source_id = " + kSource) == "t";
    }, std::chrono::seconds(5)));
    std::vector<std::string> got[2];
    std::string errors[2];
    std::atomic<int> ready{0};
    auto consumer = [&](int n) {
        try {
            Connection c("it_sender");
            ++ready;
            while (ready < 2) std::this_thread::yield();
            got[n] = c.column(claim(n == 0 ? "B" : "C", "10 minutes"));
        } catch (const std::exception& e) {
            errors[n] = e.what();
        }
    };
    std::thread b(consumer, 0), c(consumer, 1);
    b.join();
    c.join();
    EXPECT_EQ(errors[0], "");
    EXPECT_EQ(errors[1], "");
    std::cout << "[          ] reclaimed: B " << got[0].size() << ", C " << got[1].size() << std::endl;
    std::multiset<std::string> all(got[0].begin(), got[0].end());
    all.insert(got[1].begin(), got[1].end());
    EXPECT_EQ(all, std::multiset<std::string>(inserted.begin(), inserted.end()));  // each once
    EXPECT_EQ(db.number("SELECT count(*) FROM lifecycle.actions WHERE source_id = " + kSource +
                        " AND status = 'claimed' AND attempts = 2"), 5);
    for (int n = 0; n < 2; ++n) {
        if (got[n].empty()) continue;
        EXPECT_EQ(db.value("SELECT string_agg(DISTINCT claimed_by, ',') FROM lifecycle.actions "
                           "WHERE id IN " + in_list(got[n])), n == 0 ? "B" : "C");
    }
    Connection later("it_sender");
    for (const char* who : {"A", "B", "D"})
        EXPECT_TRUE(later.column(claim(who, "1 second")).empty()) << who << " claimed under a running lease";
    finish(db);
}

// Reports are idempotent per attempt and never move an action back: 'delivered' twice and
// then 'sent' leave it 'delivered', with one outcome row for each (attempt, outcome).
TEST(Actions, ReportingTwiceIsHarmless) {
    Connection db;
    start(db);
    const std::string id = insert_due(db, 1).front();
    {
        Connection s("it_sender");
        ASSERT_EQ(s.column(claim("S", "10 minutes")), std::vector<std::string>{id});
        const std::string report = "SELECT lifecycle.report_action(" + id + ", ";
        EXPECT_EQ(s.value(report + "'delivered', 'first', consumer => 'S')"), "delivered");
        EXPECT_EQ(s.value(report + "'delivered', 'again', consumer => 'S')"), "delivered");
        EXPECT_EQ(s.value(report + "'sent', consumer => 'S')"), "delivered");
    }
    EXPECT_EQ(db.value("SELECT status || ' ' || attempts FROM lifecycle.actions WHERE id = " + id),
              "delivered 1");
    // the repeat was ignored: the first report's detail stays
    EXPECT_EQ(db.value("SELECT string_agg(attempt || ':' || outcome || ':' || coalesce(detail, ''), ',' "
                       "ORDER BY outcome) FROM lifecycle.action_outcomes WHERE action_id = " + id),
              "1:delivered:first,1:sent:");
    finish(db);
}

// The worker makes the first step of a playbook due when customers become inactive and
// announces the new actions on lifecycle_actions: ids and counts, no customer.
TEST(Actions, WorkerAnnouncesNewActions) {
    Connection db;
    start(db);
    make_role(db, "it_listener", "");
    const std::string table = "it_actions_orders", playbook = "it_actions_playbook";
    const std::string saved_as_of = db.value("SELECT current_setting('lifecycle.as_of')");
    auto cleanup = [&] {
        db.exec("DELETE FROM lifecycle.playbooks WHERE name = '" + playbook + "'");  // steps cascade
        db.exec("SELECT lifecycle.untrack(source) FROM lifecycle.sources WHERE source = to_regclass('" +
                table + "')");  // its enrolments, actions, outcomes and consent go with it
        db.exec("DELETE FROM lifecycle.playbook_log WHERE enrollment_id IN "
                "(SELECT id FROM lifecycle.enrollments WHERE playbook = '" + playbook + "')");
        db.exec("DELETE FROM lifecycle.enrollments WHERE playbook = '" + playbook + "'");
        db.exec("DROP TABLE IF EXISTS " + table);
    };
    cleanup();
    const std::string d0 = "2036-03-01";
    db.exec("CREATE TABLE " + table + " (customer_id bigint, ordered_at date, amount numeric)");
    it::set_engine_date(db, d0);
    db.exec("SELECT lifecycle.track('" + table + "', 'customer_id', 'ordered_at', 'amount')");
    db.exec("INSERT INTO lifecycle.playbooks (name, trigger, to_stages, holdout_share) "
            "VALUES ('" + playbook + "', 'stage', '{inactive}', 0)");
    db.exec("INSERT INTO lifecycle.playbook_steps (playbook, step, delay, channel, message_key) "
            "VALUES ('" + playbook + "', 1, '0 days', 'email', 'k')");
    const std::vector<std::string> customers = {"987654321", "987654322", "987654323"};
    for (const auto& c : customers) {
        db.exec("SELECT lifecycle.opt_in('" + table + "', '" + c + "', 'email')");
        db.exec("INSERT INTO " + table + " VALUES (" + c + ", '" + d0 + "', 10)");
    }
    ASSERT_TRUE(it::wait_until([&] {
        return db.number("SELECT count(*) FROM lifecycle.customer_stage c JOIN lifecycle.sources s "
                         "ON s.id = c.source_id WHERE s.source = '" + table + "'::regclass") == 3;
    })) << "the worker did not take the purchases";
    {
        Connection listener("it_listener");  // anyone may LISTEN: the payload must not tell who
        listener.exec("LISTEN lifecycle_actions");
        // default policy: inactive 61 days after the last purchase (lapsed only after 91)
        it::set_engine_date(db, db.value("SELECT (date '" + d0 + "' + 70)::text"));
        static const std::regex fields(R"re("first_id" : (\d+), "last_id" : (\d+), "actions" : (\d+))re");
        std::vector<std::string> payloads;
        long announced = 0;
        EXPECT_TRUE(it::wait_until([&] {
            for (const auto& p : listener.notifications(std::chrono::milliseconds(0))) {
                payloads.push_back(p);
                std::smatch m;
                if (std::regex_search(p, m, fields)) announced += std::stol(m[3]);
            }
            return announced >= 3;
        }, std::chrono::seconds(10))) << "no NOTIFY of 3 actions";
        EXPECT_EQ(payloads.size(), 1u) << "one tick made them all";
        const std::string p = payloads.empty() ? "" : payloads.front();
        std::cout << "[          ] payload " << p << std::endl;
        std::smatch m;
        EXPECT_TRUE(std::regex_search(p, m, fields)) << p;
        EXPECT_EQ(m.size() > 3 ? std::string(m[3]) : "", "3") << p;
        for (const auto& c : customers) EXPECT_EQ(p.find(c), std::string::npos) << p;
        EXPECT_NE(p.find("\"email\" : 3"), std::string::npos) << p;
        EXPECT_THROW(listener.exec("SELECT * FROM lifecycle.actions"), std::runtime_error);
        const std::string range = m.empty() ? "FROM lifecycle.actions WHERE false"
                                            : "FROM lifecycle.actions WHERE id BETWEEN " +
                                                  std::string(m[1]) + " AND " + std::string(m[2]);
        EXPECT_EQ(db.value("SELECT string_agg(customer || ' ' || playbook || ' ' || step || ' ' || "
                           "channel || ' ' || message_key || ' ' || status, ',' ORDER BY customer) " + range),
                  "987654321 it_actions_playbook 1 email k due,987654322 it_actions_playbook 1 email k due,"
                  "987654323 it_actions_playbook 1 email k due");
    }
    cleanup();
    if (saved_as_of.empty()) {
        db.exec("ALTER SYSTEM RESET lifecycle.as_of");
        db.exec("SELECT pg_reload_conf()");
        it::wait_for_tick(db);
        it::wait_for_tick(db);
    } else {
        it::set_engine_date(db, saved_as_of);
    }
    db.exec("DROP ROLE IF EXISTS it_listener");
    finish(db);
}
