#include "core/interrupt.hpp"

#include <atomic>

namespace lifecycle {
namespace {

std::atomic<InterruptCallback> registered{nullptr};

}  // namespace

InterruptCallback set_interrupt_callback(InterruptCallback callback) noexcept {
    return registered.exchange(callback);
}

void check_interrupts() {
    const InterruptCallback callback = registered.load(std::memory_order_relaxed);
    if (callback != nullptr && callback()) throw Interrupted();
}

}  // namespace lifecycle
