// rfm_breakpoints(recency, frequency, monetary): an aggregate that captures a population
// as lifecycle.rfm_breakpoints (four cut values per measure), and
// rfm_score(recency, frequency, monetary, breakpoints): one customer scored against it.
// A member of the population gets exactly the score the window function gives it.
#include "core/rfm.hpp"
#include "pg/convert.hpp"
#include "pg/guard.hpp"
#include "pg/rfm_result.hpp"

using lifecycle::Breakpoints;
using lifecycle::Measure;

namespace {

constexpr int kMeasures = lifecycle::kMeasureCount;

// The aggregate's state: every non-NULL goodness value, by measure.
struct Population {
    int64 count[kMeasures];
    int64 capacity[kMeasures];
    double* values[kMeasures];
};

void append(Population* population, int d, double value, MemoryContext memory) {
    if (population->count[d] == population->capacity[d]) {
        const int64 grown = population->capacity[d] == 0 ? 1024 : population->capacity[d] * 2;
        const Size bytes = grown * sizeof(double);
        population->values[d] = static_cast<double*>(
            population->values[d] == nullptr ? MemoryContextAllocHuge(memory, bytes)
                                             : repalloc_huge(population->values[d], bytes));
        population->capacity[d] = grown;
    }
    population->values[d][population->count[d]++] = value;
}

// Cuts are stored in the measure's own units (days for recency), so they read naturally.
Datum cuts_array(Measure measure, const Breakpoints& breakpoints) {
    Datum cuts[lifecycle::kCutCount];
    for (int k = 0; k < lifecycle::kCutCount; ++k)
        cuts[k] = Float8GetDatum(lifecycle::goodness(measure, breakpoints.cut[k]));
    return PointerGetDatum(construct_array(cuts, lifecycle::kCutCount, FLOAT8OID, sizeof(float8),
                                           FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

// Reads one measure's cuts back from a lifecycle.rfm_breakpoints value.
bool read_cuts(HeapTupleHeader row, int attno, Measure measure, Breakpoints* breakpoints) {
    bool isnull = false;
    Datum value = GetAttributeByNum(row, static_cast<AttrNumber>(attno), &isnull);
    if (isnull) return false;
    ArrayType* array = DatumGetArrayTypeP(value);
    if (ARR_NDIM(array) != 1 || ARR_ELEMTYPE(array) != FLOAT8OID || ARR_HASNULL(array) ||
        ARR_DIMS(array)[0] != lifecycle::kCutCount)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"breakpoints\": %s must hold %d non-NULL cut values",
                               lifecycle::measure_name(measure), lifecycle::kCutCount)));
    const double* cuts = reinterpret_cast<const double*>(ARR_DATA_PTR(array));
    for (int k = 0; k < lifecycle::kCutCount; ++k)
        breakpoints->cut[k] = lifecycle::goodness(measure, lifecycle::pg::finite_arg(cuts[k], "breakpoints"));
    return true;
}

}  // namespace

LIFECYCLE_FUNCTION(lifecycle_rfm_breakpoints_transfn) {
    MemoryContext aggregate_memory;
    if (!AggCheckCallContext(fcinfo, &aggregate_memory))
        elog(ERROR, "rfm_breakpoints transition function called outside an aggregate");
    auto* population = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<Population*>(PG_GETARG_POINTER(0));
    if (population == nullptr)
        population = static_cast<Population*>(MemoryContextAllocZero(aggregate_memory, sizeof(Population)));
    for (int d = 0; d < kMeasures; ++d) {
        if (PG_ARGISNULL(d + 1)) continue;
        const Measure measure = static_cast<Measure>(d);
        const double raw = PG_GETARG_FLOAT8(d + 1);
        lifecycle::check_measure(measure, raw);
        append(population, d, lifecycle::goodness(measure, raw), aggregate_memory);
    }
    PG_RETURN_POINTER(population);
}

LIFECYCLE_FUNCTION(lifecycle_rfm_breakpoints_final) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    auto* population = reinterpret_cast<Population*>(PG_GETARG_POINTER(0));
    static const Oid columns[] = {INT8OID, FLOAT8ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID};
    TupleDesc desc = lifecycle::pg::result_descriptor(fcinfo, columns, 1 + kMeasures, "lifecycle.rfm_breakpoints");
    Datum values[1 + kMeasures];
    bool nulls[1 + kMeasures] = {false, true, true, true};
    int64 rows = 0;
    for (int d = 0; d < kMeasures; ++d) {
        const int64 n = population->count[d];
        if (n > rows) rows = n;
        if (n == 0) continue;
        lifecycle::sort_population(population->values[d], n);  // FINALFUNC_MODIFY = READ_WRITE
        values[d + 1] = cuts_array(static_cast<Measure>(d),
                                   lifecycle::breakpoints_from_sorted(population->values[d], n));
        nulls[d + 1] = false;
    }
    values[0] = Int64GetDatum(rows);
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

// rfm_score(recency, frequency, monetary, breakpoints) -> lifecycle.rfm
LIFECYCLE_FUNCTION(lifecycle_rfm_score_against) {
    if (PG_ARGISNULL(3)) PG_RETURN_NULL();
    lifecycle::pg::RfmCache* cache = lifecycle::pg::rfm_cache(fcinfo);
    HeapTupleHeader breakpoints_row = PG_GETARG_HEAPTUPLEHEADER(3);
    int score[kMeasures] = {0, 0, 0};
    for (int d = 0; d < kMeasures; ++d) {
        const Measure measure = static_cast<Measure>(d);
        Breakpoints breakpoints;
        if (PG_ARGISNULL(d) || !read_cuts(breakpoints_row, d + 2, measure, &breakpoints)) continue;
        const double raw = PG_GETARG_FLOAT8(d);
        lifecycle::check_measure(measure, raw);
        score[d] = lifecycle::score_against(breakpoints, lifecycle::goodness(measure, raw));
    }
    PG_RETURN_DATUM(lifecycle::pg::rfm_row(cache, score[0], score[1], score[2]));
}
