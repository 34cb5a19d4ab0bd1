// Probes for the error boundary's own tests: an exception thrown deep in the core, with
// C++ objects alive on every frame, must reach the client as a clean ERROR, and every
// one of those objects must have been destroyed on the way (live_probes() back to 0).
#pragma once
#include "core/no_postgres.hpp"

#include <string>

namespace lifecycle::selftest {

// An object that counts itself, to show destructors ran during unwinding.
class Probe {
public:
    Probe();
    Probe(const Probe&) = delete;
    Probe& operator=(const Probe&) = delete;
    ~Probe();
};

long live_probes();

// Recurses `depth` frames, each holding a Probe and a heap string, then throws:
// "invalid" (Error 22023), "date" (Error 22008), "bad_alloc", "runtime"
// (std::runtime_error) or "unknown" (an int). Any other kind throws invalid_parameter.
[[noreturn]] void throw_from_depth(const std::string& kind, int depth);

}  // namespace lifecycle::selftest
