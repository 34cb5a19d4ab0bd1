#include "core/error.hpp"

namespace lifecycle {

void throw_invalid(const std::string& message) {
    throw Error(ErrorKind::invalid_parameter, message);
}

void throw_date_out_of_range(const std::string& message) {
    throw Error(ErrorKind::date_out_of_range, message);
}

}  // namespace lifecycle
