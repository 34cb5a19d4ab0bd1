// The core is pure C++: it must never see a PostgreSQL header. Every core header
// includes this one, so including postgres.h before any core header fails the build
// (the PostgreSQL layer includes the core first, then postgres.h).
#pragma once
#if defined(PG_VERSION_NUM) || defined(POSTGRES_H)
#error "src/core must not depend on PostgreSQL: include core headers before postgres.h"
#endif
