// Cancellation of long core loops without PostgreSQL headers. The PostgreSQL layer
// registers a callback that answers "is an interrupt (query cancel, backend exit)
// pending?"; long loops call check_interrupts() every few thousand iterations, which
// throws Interrupted when the callback says so. Without a callback nothing is ever
// interrupted. Interrupted is not an Error: it means "stop, the caller has given up",
// and the PostgreSQL layer turns it into PostgreSQL's own interrupt handling.
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>
#include <exception>

namespace lifecycle {

// Must be cheap and must not throw or longjmp: it is only asked, never told to act.
using InterruptCallback = bool (*)();

// Registers the callback (nullptr: never interrupt); returns the previous one.
InterruptCallback set_interrupt_callback(InterruptCallback callback) noexcept;

class Interrupted : public std::exception {
public:
    const char* what() const noexcept override { return "interrupted"; }
};

// Throws Interrupted when the registered callback reports a pending interrupt.
void check_interrupts();

// Loops check every kInterruptStride iterations: check_interrupts_every(i) at the top
// of iteration i costs one test and branch on the other iterations.
constexpr std::uint64_t kInterruptStride = 4096;
inline void check_interrupts_every(std::uint64_t iteration) {
    if (iteration % kInterruptStride == 0) check_interrupts();
}

}  // namespace lifecycle
