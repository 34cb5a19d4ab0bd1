#include "core/selftest.hpp"

#include <atomic>
#include <new>
#include <stdexcept>
#include <vector>

#include "core/error.hpp"

namespace lifecycle::selftest {

namespace {
std::atomic<long> live{0};
}

Probe::Probe() { ++live; }
Probe::~Probe() { --live; }
long live_probes() { return live.load(); }

namespace {

[[noreturn]] void throw_now(const std::string& kind) {
    if (kind == "invalid") throw_invalid("selftest: invalid parameter thrown deep in the core");
    if (kind == "date") throw_date_out_of_range("selftest: date out of range thrown deep in the core");
    if (kind == "bad_alloc") throw std::bad_alloc();
    if (kind == "runtime") throw std::runtime_error("selftest: runtime error thrown deep in the core");
    if (kind == "unknown") throw 42;
    throw_invalid("argument \"kind\" must be one of invalid, date, bad_alloc, runtime, unknown");
}

}  // namespace

void throw_from_depth(const std::string& kind, int depth) {
    Probe probe;
    std::vector<std::string> frame_data(4, std::string(64, 'x'));
    if (depth <= 0) throw_now(kind);
    throw_from_depth(kind, depth - 1);
}

}  // namespace lifecycle::selftest
