#include "core/argument_checks.hpp"

#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.hpp"

namespace lifecycle {

void require_positive(double value, const char* name) {
    if (!(std::isfinite(value) && value > 0.0))
        throw_invalid(std::string("argument \"") + name + "\" must be a finite number > 0");
}

// Whole by a round trip through an integer (exact within the range checked first), which
// costs less than a call to floor: fits check every customer.
void require_purchase_count(double x) {
    if (!(std::isfinite(x) && x >= 0.0 && x <= kMaxModelValue &&
          x == static_cast<double>(static_cast<std::int64_t>(x))))
        throw_invalid("argument \"frequency\" must be a whole number between 0 and 1e9");
}

}  // namespace lifecycle
