// The shared library's identity.
#include "pg/postgres_headers.hpp"

extern "C" {
PG_MODULE_MAGIC;
}
