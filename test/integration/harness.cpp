#include "harness.hpp"

#include <poll.h>

#include <cstdlib>
#include <regex>
#include <stdexcept>
#include <thread>

namespace it {

namespace {

std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v != nullptr ? v : fallback;
}

}  // namespace

Connection::Connection(const std::string& user) {
    const std::string info =
        "dbname=" + env_or("IT_DB", "lifecycle_it") + (user.empty() ? "" : " user=" + user);
    for (int attempt = 0; attempt < 100; ++attempt) {  // the server may be restarting
        conn_ = PQconnectdb(info.c_str());
        if (PQstatus(conn_) == CONNECTION_OK) return;
        PQfinish(conn_);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    throw std::runtime_error("cannot connect to " + info);
}

Connection::~Connection() { PQfinish(conn_); }

void Connection::exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const auto status = PQresultStatus(r);
    std::string error = PQresultErrorMessage(r);
    PQclear(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        throw std::runtime_error(error + " in: " + sql.substr(0, 200));
}

std::vector<std::string> Connection::column(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        std::string error = PQresultErrorMessage(r);
        PQclear(r);
        throw std::runtime_error(error + " in: " + sql.substr(0, 200));
    }
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r); ++i) out.emplace_back(PQgetvalue(r, i, 0));
    PQclear(r);
    return out;
}

std::string Connection::value(const std::string& sql) {
    auto rows = column(sql);
    return rows.empty() ? std::string() : rows.front();
}

std::vector<std::string> Connection::notifications(std::chrono::milliseconds wait) {
    std::vector<std::string> out;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        PQconsumeInput(conn_);
        while (PGnotify* n = PQnotifies(conn_)) {
            out.emplace_back(n->extra);
            PQfreemem(n);
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return out;
        pollfd fd{PQsocket(conn_), POLLIN, 0};
        poll(&fd, 1, static_cast<int>(std::min<long>(left.count(), 100)));
    }
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return condition();
}

void wait_for_tick(Connection& db) { wait_for_tick_since(db, db.value("SELECT clock_timestamp()")); }

void wait_for_tick_since(Connection& db, const std::string& since) {
    const bool ticked = wait_until([&] {
        return db.value("SELECT last_tick_at > '" + since + "' FROM lifecycle.worker_status") == "t";
    });
    if (!ticked) throw std::runtime_error("the worker did not tick");
}

void set_engine_date(Connection& db, const std::string& date) {
    db.exec("ALTER SYSTEM SET lifecycle.as_of = '" + date + "'");
    db.exec("SELECT pg_reload_conf()");
    // The worker rereads the file on SIGHUP before its next tick; two ticks make sure.
    wait_for_tick(db);
    wait_for_tick(db);
}

int pg_ctl(const std::string& arguments) {
    const std::string command = env_or("IT_PGCTL", "pg_ctl") + " " + arguments + " >/dev/null 2>&1";
    return std::system(command.c_str());
}

std::vector<Announced> parse_payload(const std::string& payload) {
    static const std::regex item(
        R"re(\{"id":(\d+),"customer":"([^"]*)","from":"(\w+)","to":"(\w+)","cause":"(\w+)","on":"([0-9-]+)"\})re");
    std::vector<Announced> out;
    for (auto it = std::sregex_iterator(payload.begin(), payload.end(), item);
         it != std::sregex_iterator(); ++it)
        out.push_back({std::stol((*it)[1]), (*it)[2], (*it)[3], (*it)[4], (*it)[5], (*it)[6]});
    return out;
}

Summary parse_summary(const std::string& payload) {
    static const std::regex fields(
        R"re(\{"source" : "([^"]*)", "first_id" : (\d+), "last_id" : (\d+), "transitions" : (\d+), "to" : \{.*\}\})re");
    std::smatch m;
    if (!std::regex_match(payload, m, fields)) throw std::runtime_error("not a summary: " + payload);
    return {m[1], std::stol(m[2]), std::stol(m[3]), std::stol(m[4]), payload};
}

}  // namespace it
