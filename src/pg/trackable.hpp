// What makes a relation a table the engine can follow without gaps: one rule, read from
// the catalog, that track() (lifecycle._check_trackable), the DDL guard (lifecycle._on_ddl)
// and the source reader (source_reader.cpp) share, so that they never disagree.
#pragma once

#include "pg/postgres_headers.hpp"

namespace lifecycle::pg {

// Why relation `relid` cannot be tracked, or nullptr when it can: "missing",
// "partitioned", "not a table", "temporary", "partition", "parent" (it has inheritance
// children) or "child" (it inherits). Inheritance is read from pg_inherits, never from
// pg_class.relhassubclass, which stays true after the last child is gone until an
// ANALYZE or VACUUM of the parent. Plain C-style code: may longjmp.
const char* untrackable_reason(Oid relid);

}  // namespace lifecycle::pg
