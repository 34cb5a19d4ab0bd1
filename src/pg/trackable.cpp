// The one check of a tracked table's shape (see trackable.hpp).
#include "pg/trackable.hpp"

#include "pg/guard.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

namespace {

// Whether pg_inherits has a row whose column `column` (inhparent or inhrelid) is `relid`,
// by the index on that column: a child, or a parent, exists now.
bool in_pg_inherits(Oid relid, AttrNumber column, Oid index) {
    Relation inherits = table_open(InheritsRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, column, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
    SysScanDesc scan = systable_beginscan(inherits, index, true, nullptr, 1, &key);
    const bool found = HeapTupleIsValid(systable_getnext(scan));
    systable_endscan(scan);
    table_close(inherits, AccessShareLock);
    return found;
}

}  // namespace

namespace lifecycle::pg {

const char* untrackable_reason(Oid relid) {
    HeapTuple row = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(row)) return "missing";
    const auto* c = reinterpret_cast<Form_pg_class>(GETSTRUCT(row));
    const char kind = c->relkind;
    const char persistence = c->relpersistence;
    const bool partition = c->relispartition;
    ReleaseSysCache(row);
    if (kind == RELKIND_PARTITIONED_TABLE) return "partitioned";
    if (kind != RELKIND_RELATION) return "not a table";
    // its drop at the end of its session fires no event trigger
    if (persistence == RELPERSISTENCE_TEMP) return "temporary";
    if (partition) return "partition";
    if (in_pg_inherits(relid, Anum_pg_inherits_inhparent, InheritsParentIndexId)) return "parent";
    if (in_pg_inherits(relid, Anum_pg_inherits_inhrelid, InheritsRelidSeqnoIndexId)) return "child";
    return nullptr;
}

}  // namespace lifecycle::pg

// lifecycle._untrackable(tab regclass): why `tab` cannot be tracked (the words of
// untrackable_reason), or NULL when it can.
LIFECYCLE_FUNCTION(lifecycle_untrackable) {
    const char* reason = lifecycle::pg::untrackable_reason(PG_GETARG_OID(0));
    if (reason == nullptr) PG_RETURN_NULL();
    PG_RETURN_TEXT_P(cstring_to_text(reason));
}
