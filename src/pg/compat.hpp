// What differs between the PostgreSQL majors lifecycle builds against, in one place: each
// shim is named for what it does and calls the API of the major at hand. Nothing else in
// src/ tests PG_VERSION_NUM.
#pragma once

#include "pg/postgres_headers.hpp"

extern "C" {
#include "catalog/pg_class.h"
#include "utils/acl.h"
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

}  // namespace lifecycle::pg
