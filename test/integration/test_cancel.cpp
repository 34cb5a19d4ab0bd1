// Cancelling a long model fit: pg_cancel_backend reaches the C++ core through the
// interrupt callback (core/interrupt.hpp) and the query fails with SQLSTATE 57014 within a
// second, even while the fit is inside the optimizer in the aggregate's final function.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "harness.hpp"

using it::Connection;
using Clock = std::chrono::steady_clock;

namespace {

// A million customers with distinct (frequency, recency, T), so that merging identical
// customers saves nothing and every evaluation of the likelihood visits a million rows.
const char* kCustomers = R"sql(
CREATE UNLOGGED TABLE IF NOT EXISTS it_cancel_customers AS
SELECT frequency, CASE WHEN frequency = 0 THEN 0 ELSE t * (0.01 + 0.99 * u) END AS recency, t
FROM (SELECT floor(random() * 12)::float8 AS frequency, 5 + 95 * random() AS t, random() AS u
      FROM (SELECT setseed(0.42)) s, generate_series(1, 1000000)) g;
)sql";

const char* kFit =
    "SELECT (lifecycle.bgnbd_fit(frequency, recency, t)).converged FROM it_cancel_customers";

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A raw connection for the query that gets cancelled (the harness's Connection is
// synchronous and throws on errors).
class Session {
public:
    Session() {
        const char* db = std::getenv("IT_DB");
        conn_ = PQconnectdb((std::string("dbname=") + (db != nullptr ? db : "lifecycle_it")).c_str());
    }
    ~Session() { PQfinish(conn_); }
    bool ok() const { return PQstatus(conn_) == CONNECTION_OK; }
    int pid() const { return PQbackendPID(conn_); }
    void exec(const char* sql) { PQclear(PQexec(conn_, sql)); }
    bool send(const char* sql) { return PQsendQuery(conn_, sql) == 1; }

    // Waits for the query's outcome: the SQLSTATE of its error, or "" when it succeeded
    // (the first column of its row goes to `value`).
    std::string finish(std::string* value) {
        std::string sqlstate;
        while (PGresult* r = PQgetResult(conn_)) {
            if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
                const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
                sqlstate = s != nullptr ? s : "?????";
            } else if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && value != nullptr) {
                *value = PQgetvalue(r, 0, 0);
            }
            PQclear(r);
        }
        return sqlstate;
    }

private:
    PGconn* conn_;
};

}  // namespace

// The whole fit, uncancelled: it succeeds, and its duration places the cancel below.
// Then the same fit, cancelled at 60 % of that duration (deep in the final function's
// optimizer: reading the rows takes a small part of it), must fail with 57014 within 1 s.
TEST(Cancel, FitOverAMillionCustomersStopsWithinASecond) {
    Connection db;
    db.exec(kCustomers);
    ASSERT_EQ(db.number("SELECT count(DISTINCT (frequency, recency, t)) FROM it_cancel_customers"), 1000000);

    Session fit;
    ASSERT_TRUE(fit.ok());
    fit.exec("SET max_parallel_workers_per_gather = 0");  // one backend does all the work
    // The quicker of two uncancelled fits (the first reads the rows into the cache; on a
    // shared machine either may be slowed down), so that the cancel lands inside the next.
    std::string converged;
    double whole_ms = 1e12;
    for (int run = 0; run < 2; ++run) {
        const auto whole_start = Clock::now();
        ASSERT_TRUE(fit.send(kFit));
        ASSERT_EQ(fit.finish(&converged), "") << "the uncancelled fit failed";
        whole_ms = std::min(whole_ms, ms_since(whole_start));
        EXPECT_TRUE(converged == "t" || converged == "f");  // a model, converged or not
    }
    std::printf("[ cancel   ] the uncancelled fit of 1M customers took %.0f ms\n", whole_ms);
    ASSERT_GT(whole_ms, 1000) << "the fit is too quick for the cancel to land inside it";

    const auto start = Clock::now();
    ASSERT_TRUE(fit.send(kFit));
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long>(0.6 * whole_ms)));
    ASSERT_EQ(db.value("SELECT state FROM pg_stat_activity WHERE pid = " + std::to_string(fit.pid())),
              "active") << "the fit ended before the cancel";
    const auto cancel = Clock::now();
    ASSERT_EQ(db.value("SELECT pg_cancel_backend(" + std::to_string(fit.pid()) + ")"), "t");
    const std::string sqlstate = fit.finish(nullptr);
    const double cancel_ms = ms_since(cancel);
    std::printf("[ cancel   ] cancelled %.0f ms into the fit; error %s %.1f ms after the cancel\n",
                std::chrono::duration<double, std::milli>(cancel - start).count(), sqlstate.c_str(),
                cancel_ms);
    EXPECT_EQ(sqlstate, "57014");
    EXPECT_LT(cancel_ms, 1000.0);

    // The backend is usable afterwards, and a smaller fit on it succeeds.
    ASSERT_TRUE(fit.send("SELECT (lifecycle.bgnbd_fit(frequency, recency, t)).converged "
                         "FROM (SELECT * FROM it_cancel_customers LIMIT 20000) c"));
    EXPECT_EQ(fit.finish(&converged), "");
    EXPECT_TRUE(converged == "t" || converged == "f");
}
