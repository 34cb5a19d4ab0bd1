// What the RFM functions share: the lifecycle.rfm result row (r, f, m, code, segment)
// and the segment rules in force (lifecycle.rfm_segment_rules), cached per call site.
#pragma once

#include "core/segments.hpp"
#include "pg/postgres_headers.hpp"

namespace lifecycle::pg {

struct RfmCache {
    TupleDesc result;                          // lifecycle.rfm, blessed
    SegmentGrid grid;                          // cell -> rule
    Datum rule_name[kMaxSegmentRules];         // text datums in fn_mcxt
    Datum code[kSegmentCells];                 // "111" .. "555" as text datums
};

// Loads (once per call site) the result descriptor and the segment rules; 22023 if the
// rules are not total and non-overlapping.
RfmCache* rfm_cache(FunctionCallInfo fcinfo);

// The lifecycle.rfm row for scores 1..5, or 0 for a NULL score (code and segment are
// then NULL).
Datum rfm_row(const RfmCache* cache, int r, int f, int m);

}  // namespace lifecycle::pg
