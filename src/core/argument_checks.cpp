#include "core/argument_checks.hpp"

#include <cmath>
#include <string>

#include "core/error.hpp"

namespace lifecycle {

void require_positive(double value, const char* name) {
    if (!(std::isfinite(value) && value > 0.0))
        throw_invalid(std::string("argument \"") + name + "\" must be a finite number > 0");
}

void require_purchase_count(double x) {
    if (!(std::isfinite(x) && x >= 0.0 && x <= kMaxModelValue && x == std::floor(x)))
        throw_invalid("argument \"frequency\" must be a whole number between 0 and 1e9");
}

}  // namespace lifecycle
