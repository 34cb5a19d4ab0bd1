// What differs between the PostgreSQL majors lifecycle builds against, in one place: each
// shim is named for what it does and calls the API of the major at hand. Nothing else in
// src/ tests PG_VERSION_NUM.
#pragma once

#include "pg/postgres_headers.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "utils/acl.h"
#include "utils/guc.h"
}

namespace lifecycle::pg {

// Whether `role` owns relation `relid`: is its owner, a member of the owning role, or a
// superuser. (PostgreSQL 16 replaced pg_class_ownercheck() by object_ownercheck().)
inline bool owns_relation(Oid relid, Oid role) {
#if PG_VERSION_NUM >= 160000
    return object_ownercheck(RelationRelationId, relid, role);
#else
    return pg_class_ownercheck(relid, role);
#endif
}

// search_path = pg_catalog, pg_temp until the caller's AtEOXact_GUC() at its nest level
// puts the session's back. PostgreSQL 17 has this as RestrictSearchPath(), the call its
// maintenance commands (VACUUM, ANALYZE, REFRESH MATERIALIZED VIEW...) make before they
// run a table owner's code; before 17 it is the same set_config_option() spelled out.
inline void restrict_search_path() {
#if PG_VERSION_NUM >= 170000
    RestrictSearchPath();
#else
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
#endif
}

}  // namespace lifecycle::pg
