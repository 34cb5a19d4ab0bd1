// A small libpq harness for the integration tests: connections, LISTEN, waiting for a
// condition, and control of the server the tests run against (test/integration.sh
// starts it; IT_PGCTL holds the pg_ctl command line that stops and starts it).
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace it {

// One connection to the test database (PG* environment, database IT_DB), as `user`
// (empty: PGUSER).
class Connection {
public:
    explicit Connection(const std::string& user = "");
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Runs SQL; throws std::runtime_error with the server's message on an error.
    void exec(const std::string& sql);
    // The first column of the first row, as text ("" for NULL or no row).
    std::string value(const std::string& sql);
    long number(const std::string& sql) { return std::stol(value(sql)); }
    // The first column of every row.
    std::vector<std::string> column(const std::string& sql);
    // Notifications received so far (payloads), waiting up to `wait` for the first one.
    std::vector<std::string> notifications(std::chrono::milliseconds wait);

private:
    PGconn* conn_;
};

// Polls `condition` every 100 ms until it holds or `limit` passes; returns whether it held.
bool wait_until(const std::function<bool()>& condition,
                std::chrono::milliseconds limit = std::chrono::seconds(20));

// Sets lifecycle.as_of for the worker (ALTER SYSTEM + reload) and waits until the worker
// has finished a tick that started after the change.
void set_engine_date(Connection& db, const std::string& date);
// Waits until the worker has finished a tick that began after this call.
void wait_for_tick(Connection& db);
// Waits for a tick that began after `since` (a clock_timestamp() taken earlier, e.g.
// before a reload that wakes the worker: its tick may begin before wait_for_tick could
// look at the clock).
void wait_for_tick_since(Connection& db, const std::string& since);

// pg_ctl: "stop -m immediate", "start", ...; returns the exit status.
int pg_ctl(const std::string& arguments);

// A transition announced in a payload: the fields of one element of "transitions".
struct Announced {
    long id;
    std::string customer, from, to, cause, on;
};
std::vector<Announced> parse_payload(const std::string& payload);

// What a default ('summary') payload says: the source, the range of transition ids and
// how many; the per-stage counts stay in `text`.
struct Summary {
    std::string source;
    long first_id = 0, last_id = 0, transitions = 0;
    std::string text;
};
Summary parse_summary(const std::string& payload);

}  // namespace it
