// logistic_fit(outcome, features [, penalizer]): a logistic regression fit as an aggregate,
// and logistic_score(model, features). The state holds the rows as one plain array of
// doubles in the aggregate's memory (per row: the outcome as 0/1, then the features);
// partial states (parallel workers) are concatenated by the combine function and travel as
// bytea. The core sorts and merges the rows before fitting, so any split gives the same fit.
#include <cmath>
#include <cstring>
#include <algorithm>

#include "core/logistic.hpp"
#include "pg/convert.hpp"
#include "pg/guard.hpp"

namespace logistic = lifecycle::logistic;

namespace {

// Far more than a calibration needs; keeps a wrong array from costing gigabytes per row.
constexpr int kMaxFeatures = 1000;

struct LogisticState {
    int64 count;      // rows
    int64 capacity;   // rows allocated
    int32 features;   // per row; -1 until the first row
    double penalizer; // < 0: not given yet
    double* values;   // count × (features + 1): outcome, then features
};

int64 row_width(const LogisticState* state) { return state->features + 1; }

LogisticState* new_state(MemoryContext memory) {
    auto* state = static_cast<LogisticState*>(MemoryContextAllocZero(memory, sizeof(LogisticState)));
    state->features = -1;
    state->penalizer = -1;
    return state;
}

LogisticState* state_in(FunctionCallInfo fcinfo, MemoryContext* memory) {
    if (!AggCheckCallContext(fcinfo, memory)) elog(ERROR, "logistic_fit called outside an aggregate");
    if (!PG_ARGISNULL(0)) return reinterpret_cast<LogisticState*>(PG_GETARG_POINTER(0));
    return new_state(*memory);
}

void same_width(LogisticState* state, int32 features) {
    if (state->features < 0) {
        state->features = features;
    } else if (state->features != features) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"features\" must have the same length in every row: "
                               "got %d, earlier rows have %d", features, state->features)));
    }
}

void same_penalizer(LogisticState* state, double penalizer) {
    if (state->penalizer >= 0 && state->penalizer != penalizer)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"penalizer\" must be the same for every row")));
    state->penalizer = penalizer;
}

// Room for `more` rows (the width is known).
void reserve(LogisticState* state, int64 more, MemoryContext memory) {
    const int64 needed = state->count + more;
    if (needed <= state->capacity) return;
    int64 grown = state->capacity == 0 ? 1024 : state->capacity * 2;
    if (grown < needed) grown = needed;
    const Size bytes = static_cast<Size>(grown) * row_width(state) * sizeof(double);
    state->values = static_cast<double*>(state->values == nullptr
                                             ? MemoryContextAllocHuge(memory, bytes)
                                             : repalloc_huge(state->values, bytes));
    state->capacity = grown;
}

// The features argument as a plain float8 array: one dimension (or empty), no NULLs,
// finite values. Returns the element pointer and sets *length.
const double* read_features(ArrayType* array, int* length) {
    if (ARR_ELEMTYPE(array) != FLOAT8OID)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"features\" must be a double precision array")));
    if (ARR_NDIM(array) > 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"features\" must be a one-dimensional array")));
    if (ARR_HASNULL(array))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"features\" must not contain NULL")));
    *length = ARR_NDIM(array) == 0 ? 0 : ARR_DIMS(array)[0];
    if (*length > kMaxFeatures)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"features\" has %d elements, at most %d are supported",
                               *length, kMaxFeatures)));
    const double* values = reinterpret_cast<const double*>(ARR_DATA_PTR(array));
    for (int j = 0; j < *length; ++j) lifecycle::pg::finite_arg(values[j], "features");
    return values;
}

Datum transition(FunctionCallInfo fcinfo) {
    MemoryContext memory;
    LogisticState* state = state_in(fcinfo, &memory);
    if (PG_ARGISNULL(1) || PG_ARGISNULL(2)) PG_RETURN_POINTER(state);  // skipped
    double penalizer = 0;
    if (PG_NARGS() > 3 && !PG_ARGISNULL(3)) penalizer = PG_GETARG_FLOAT8(3);
    penalizer = lifecycle::pg::finite_arg(penalizer, "penalizer");
    if (penalizer < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"penalizer\" must be >= 0, got %g", penalizer)));
    int length = 0;
    const double* features = read_features(PG_GETARG_ARRAYTYPE_P(2), &length);
    same_width(state, length);
    same_penalizer(state, penalizer);
    reserve(state, 1, memory);
    double* row = state->values + state->count * row_width(state);
    row[0] = PG_GETARG_BOOL(1) ? 1.0 : 0.0;
    if (length > 0) memcpy(row + 1, features, length * sizeof(double));
    ++state->count;
    PG_RETURN_POINTER(state);
}

Datum combine(FunctionCallInfo fcinfo) {
    MemoryContext memory;
    if (!AggCheckCallContext(fcinfo, &memory)) elog(ERROR, "combine called outside an aggregate");
    if (PG_ARGISNULL(1)) PG_RETURN_DATUM(PG_GETARG_DATUM(0));
    auto* other = reinterpret_cast<LogisticState*>(PG_GETARG_POINTER(1));
    LogisticState* state = state_in(fcinfo, &memory);
    if (other->penalizer >= 0) same_penalizer(state, other->penalizer);
    if (other->count == 0) PG_RETURN_POINTER(state);
    same_width(state, other->features);
    reserve(state, other->count, memory);
    memcpy(state->values + state->count * row_width(state), other->values,
           static_cast<Size>(other->count) * row_width(other) * sizeof(double));
    state->count += other->count;
    PG_RETURN_POINTER(state);
}

// bytea: count (int64), features (int64), penalizer (double), then the values.
constexpr Size kHeader = 2 * sizeof(int64) + sizeof(double);

Datum serialize(FunctionCallInfo fcinfo) {
    auto* state = reinterpret_cast<LogisticState*>(PG_GETARG_POINTER(0));
    const Size data = state->count > 0 ? static_cast<Size>(state->count) * row_width(state) * sizeof(double) : 0;
    const Size size = VARHDRSZ + kHeader + data;
    bytea* out = static_cast<bytea*>(palloc_extended(size, MCXT_ALLOC_HUGE));
    SET_VARSIZE(out, size);
    char* p = VARDATA(out);
    const int64 features = state->features;
    memcpy(p, &state->count, sizeof(int64));
    memcpy(p + sizeof(int64), &features, sizeof(int64));
    memcpy(p + 2 * sizeof(int64), &state->penalizer, sizeof(double));
    if (data > 0) memcpy(p + kHeader, state->values, data);
    PG_RETURN_BYTEA_P(out);
}

Datum deserialize(FunctionCallInfo fcinfo) {
    MemoryContext memory;
    if (!AggCheckCallContext(fcinfo, &memory)) elog(ERROR, "deserialize called outside an aggregate");
    bytea* in = PG_GETARG_BYTEA_P(0);
    const char* p = VARDATA(in);
    const Size payload = VARSIZE(in) - VARHDRSZ;
    if (payload < kHeader) elog(ERROR, "a logistic fit state is too short");
    LogisticState* state = new_state(memory);
    int64 count = 0;
    int64 features = 0;
    memcpy(&count, p, sizeof(int64));
    memcpy(&features, p + sizeof(int64), sizeof(int64));
    memcpy(&state->penalizer, p + 2 * sizeof(int64), sizeof(double));
    if (count < 0 || features < -1 || features > kMaxFeatures || (count > 0 && features < 0) ||
        payload != kHeader + static_cast<Size>(count) * static_cast<Size>(features + 1) * sizeof(double))
        elog(ERROR, "a logistic fit state has the wrong size");
    state->features = static_cast<int32>(features);
    if (count > 0) {
        reserve(state, count, memory);
        memcpy(state->values, p + kHeader, static_cast<Size>(count) * (features + 1) * sizeof(double));
        state->count = count;
    }
    PG_RETURN_POINTER(state);
}

// What the final function needs from the core fit, as plain data.
struct PlainFit {
    double* coefficients;  // features + 1, allocated by the caller
    double log_likelihood;
    int evaluations;
    bool converged;
};

// Core objects live only inside this call, which makes no PostgreSQL call (rule 2).
void run_fit(const LogisticState& state, PlainFit* out) {
    lifecycle::mle::FitOptions options;
    options.penalizer = state.penalizer > 0 ? state.penalizer : 0;
    // The state's rows are already the core's flat layout: outcome, then the features.
    const logistic::Table table{static_cast<size_t>(state.count), static_cast<size_t>(state.features),
                                state.values, nullptr};
    const logistic::Fit fit = logistic::fit(table, options);
    std::copy(fit.coefficients.begin(), fit.coefficients.end(), out->coefficients);
    out->log_likelihood = fit.log_likelihood;
    out->evaluations = fit.evaluations;
    out->converged = fit.converged;
}

// The model's coefficients (column 1) as a plain float8 array.
const double* model_coefficients(HeapTupleHeader model, int* count) {
    bool isnull = false;
    Datum value = GetAttributeByNum(model, 1, &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"model\" has NULL coefficients")));
    ArrayType* array = DatumGetArrayTypeP(value);
    if (ARR_ELEMTYPE(array) != FLOAT8OID || ARR_NDIM(array) != 1 || ARR_HASNULL(array))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"model\" must have a one-dimensional array of coefficients "
                               "without NULLs")));
    *count = ARR_DIMS(array)[0];
    return reinterpret_cast<const double*>(ARR_DATA_PTR(array));
}

}  // namespace

LIFECYCLE_FUNCTION(lifecycle_logistic_fit_transfn) { return transition(fcinfo); }
LIFECYCLE_FUNCTION(lifecycle_logistic_fit_combine) { return combine(fcinfo); }
LIFECYCLE_FUNCTION(lifecycle_logistic_fit_serialize) { return serialize(fcinfo); }
LIFECYCLE_FUNCTION(lifecycle_logistic_fit_deserialize) { return deserialize(fcinfo); }

// -> lifecycle.logistic_model (coefficients, log_likelihood, rows, evaluations, converged);
// NULL when no row had both an outcome and features.
LIFECYCLE_FUNCTION(lifecycle_logistic_fit_final) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    const auto* state = reinterpret_cast<LogisticState*>(PG_GETARG_POINTER(0));
    if (state->count == 0) PG_RETURN_NULL();
    static const Oid columns[] = {FLOAT8ARRAYOID, FLOAT8OID, INT8OID, INT4OID, BOOLOID};
    TupleDesc desc = lifecycle::pg::result_descriptor(fcinfo, columns, 5, "lifecycle.logistic_model");
    const int n = state->features + 1;
    PlainFit fit{static_cast<double*>(palloc(n * sizeof(double))), 0, 0, false};
    run_fit(*state, &fit);
    Datum* elements = static_cast<Datum*>(palloc(n * sizeof(Datum)));
    for (int j = 0; j < n; ++j) elements[j] = Float8GetDatum(fit.coefficients[j]);
    ArrayType* coefficients = construct_array(elements, n, FLOAT8OID, sizeof(double), FLOAT8PASSBYVAL,
                                              TYPALIGN_DOUBLE);
    Datum values[5] = {PointerGetDatum(coefficients), Float8GetDatum(fit.log_likelihood),
                       Int64GetDatum(state->count), Int32GetDatum(fit.evaluations),
                       BoolGetDatum(fit.converged)};
    bool nulls[5] = {false, false, false, false, false};
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

// P(outcome) for `features` under a fitted model.
LIFECYCLE_FUNCTION(lifecycle_logistic_score) {
    int coefficient_count = 0;
    const double* coefficients = model_coefficients(PG_GETARG_HEAPTUPLEHEADER(0), &coefficient_count);
    int feature_count = 0;
    const double* features = read_features(PG_GETARG_ARRAYTYPE_P(1), &feature_count);
    PG_RETURN_FLOAT8(logistic::score(coefficients, static_cast<size_t>(coefficient_count), features,
                                     static_cast<size_t>(feature_count)));
}
