// Errors the core raises. Each carries the kind of SQLSTATE the PostgreSQL layer maps
// it to, so bad input always reaches the client as a clean ERROR naming the argument.
#pragma once
#include "core/no_postgres.hpp"

#include <stdexcept>
#include <string>

namespace lifecycle {

enum class ErrorKind {
    invalid_parameter,  // SQLSTATE 22023
    date_out_of_range,  // SQLSTATE 22008
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message)
        : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const noexcept { return kind_; }

private:
    ErrorKind kind_;
};

[[noreturn]] void throw_invalid(const std::string& message);
[[noreturn]] void throw_date_out_of_range(const std::string& message);

}  // namespace lifecycle
