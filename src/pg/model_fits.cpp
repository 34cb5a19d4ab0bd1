// bgnbd_fit(frequency, recency, t [, penalizer]) and gamma_gamma_fit(frequency,
// monetary_value [, penalizer]): maximum-likelihood fits as aggregates. The state is a
// plain array of customers in the aggregate's memory; partial states (parallel workers,
// Citus shards) are concatenated by the combine function and travel as bytea. The final
// function hands the rows to the core fitter, which merges identical customers first, so
// a million customers cost what their distinct (x, t_x, T) cost.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/bgnbd.hpp"
#include "core/gamma_gamma.hpp"
#include "core/interrupt.hpp"
#include "pg/convert.hpp"
#include "pg/fit_state.hpp"
#include "pg/guard.hpp"
#include "pg/model_args.hpp"

namespace bgnbd = lifecycle::bgnbd;
namespace gamma_gamma = lifecycle::gamma_gamma;

namespace {

using lifecycle::pg::Customer3;
using lifecycle::pg::FitState;


FitState* state_in(FunctionCallInfo fcinfo, MemoryContext* memory) {
    if (!AggCheckCallContext(fcinfo, memory)) elog(ERROR, "a model fit called outside an aggregate");
    if (!PG_ARGISNULL(0)) return reinterpret_cast<FitState*>(PG_GETARG_POINTER(0));
    auto* state = static_cast<FitState*>(MemoryContextAllocZero(*memory, sizeof(FitState)));
    state->penalizer = -1;  // not given yet
    return state;
}

// Room for `more` rows after the state's: at least double the capacity when it grows.
void reserve(FitState* state, int64 more, MemoryContext memory) {
    if (state->capacity - state->count >= more) return;
    const int64 grown = std::max(state->count + more, state->capacity == 0 ? 1024 : state->capacity * 2);
    const Size bytes = grown * sizeof(Customer3);
    state->rows = static_cast<Customer3*>(state->rows == nullptr ? MemoryContextAllocHuge(memory, bytes)
                                                                 : repalloc_huge(state->rows, bytes));
    state->capacity = grown;
}

void append(FitState* state, const Customer3& row, MemoryContext memory) {
    reserve(state, 1, memory);
    state->rows[state->count++] = row;
}

// The penalizer argument (`arg`), the same for every row; 0 when the form has none.
void note_penalizer(FunctionCallInfo fcinfo, FitState* state, int arg) {
    double penalizer = 0;
    if (PG_NARGS() > arg && !PG_ARGISNULL(arg)) penalizer = PG_GETARG_FLOAT8(arg);
    penalizer = lifecycle::pg::finite_arg(penalizer, "penalizer");
    if (penalizer < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"penalizer\" must be >= 0, got %g", penalizer)));
    if (state->penalizer >= 0 && state->penalizer != penalizer)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"penalizer\" must be the same for every row")));
    state->penalizer = penalizer;
}

// Reads `n` float8 arguments from 1 on; false when one is NULL (the row is skipped).
bool read_row(FunctionCallInfo fcinfo, int n, const char* const* names, Customer3* row) {
    for (int i = 0; i < n; ++i) {
        if (PG_ARGISNULL(i + 1)) return false;
        row->v[i] = lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(i + 1), names[i]);
    }
    return true;
}

Datum combine(FunctionCallInfo fcinfo) {
    MemoryContext memory;
    if (!AggCheckCallContext(fcinfo, &memory)) elog(ERROR, "combine called outside an aggregate");
    if (PG_ARGISNULL(1)) PG_RETURN_DATUM(PG_GETARG_DATUM(0));
    auto* other = reinterpret_cast<FitState*>(PG_GETARG_POINTER(1));
    FitState* state = state_in(fcinfo, &memory);
    if (other->penalizer >= 0) {
        if (state->penalizer >= 0 && state->penalizer != other->penalizer)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("argument \"penalizer\" must be the same for every row")));
        state->penalizer = other->penalizer;
    }
    if (other->count > 0) {  // a parallel worker's rows, appended in one piece
        reserve(state, other->count, memory);
        memcpy(state->rows + state->count, other->rows, other->count * sizeof(Customer3));
        state->count += other->count;
    }
    PG_RETURN_POINTER(state);
}

Datum serialize(FunctionCallInfo fcinfo) {
    auto* state = reinterpret_cast<FitState*>(PG_GETARG_POINTER(0));
    const Size rows = state->count * sizeof(Customer3);
    const Size size = VARHDRSZ + sizeof(int64) + sizeof(double) + rows;
    bytea* out = static_cast<bytea*>(palloc_extended(size, MCXT_ALLOC_HUGE));
    SET_VARSIZE(out, size);
    char* p = VARDATA(out);
    memcpy(p, &state->count, sizeof(int64));
    memcpy(p + sizeof(int64), &state->penalizer, sizeof(double));
    if (rows > 0) memcpy(p + sizeof(int64) + sizeof(double), state->rows, rows);
    PG_RETURN_BYTEA_P(out);
}

Datum deserialize(FunctionCallInfo fcinfo) {
    MemoryContext memory;
    if (!AggCheckCallContext(fcinfo, &memory)) elog(ERROR, "deserialize called outside an aggregate");
    bytea* in = PG_GETARG_BYTEA_P(0);
    const char* p = VARDATA(in);
    const Size payload = VARSIZE(in) - VARHDRSZ;
    auto* state = static_cast<FitState*>(MemoryContextAllocZero(memory, sizeof(FitState)));
    if (payload < sizeof(int64) + sizeof(double)) elog(ERROR, "a model fit state is too short");
    memcpy(&state->count, p, sizeof(int64));
    memcpy(&state->penalizer, p + sizeof(int64), sizeof(double));
    if (state->count < 0 ||
        payload != sizeof(int64) + sizeof(double) + static_cast<Size>(state->count) * sizeof(Customer3))
        elog(ERROR, "a model fit state has the wrong size");
    state->capacity = state->count;
    if (state->count > 0) {
        state->rows = static_cast<Customer3*>(
            MemoryContextAllocHuge(memory, state->count * sizeof(Customer3)));
        memcpy(state->rows, p + sizeof(int64) + sizeof(double), state->count * sizeof(Customer3));
    }
    PG_RETURN_POINTER(state);
}

// The fits: plain results, the rows copied into core vectors only for the call. The
// repeat-buying models' rows go straight into the core's merger (pg/model_args.hpp): only
// the distinct customers are kept.
bgnbd::Fit fit_bgnbd(const FitState& state) {
    return bgnbd::fit_merged(lifecycle::pg::state_rows(state), lifecycle::pg::state_options(state));
}

gamma_gamma::Fit fit_gamma_gamma(const FitState& state, int64* repeat_buyers) {
    // In a fixed order, so that any split of the rows (parallel workers, shards) sums the
    // likelihood the same way and gives the same fit.
    std::vector<gamma_gamma::Row> rows;
    rows.reserve(static_cast<size_t>(state.count));
    *repeat_buyers = 0;
    for (int64 i = 0; i < state.count; ++i) {
        lifecycle::check_interrupts_every(static_cast<uint64>(i));
        const double* v = state.rows[i].v;
        if (v[0] >= 1) ++*repeat_buyers;
        rows.push_back({{v[0], v[1]}, 1.0});
    }
    std::sort(rows.begin(), rows.end(), [](const gamma_gamma::Row& l, const gamma_gamma::Row& r) {
        return l.customer.x != r.customer.x ? l.customer.x < r.customer.x : l.customer.zbar < r.customer.zbar;
    });
    return gamma_gamma::fit(rows, lifecycle::pg::state_options(state));
}

}  // namespace

LIFECYCLE_FUNCTION(lifecycle_bgnbd_fit_transfn) {
    MemoryContext memory;
    FitState* state = state_in(fcinfo, &memory);
    static const char* const names[] = {"frequency", "recency", "t"};
    Customer3 row;
    if (read_row(fcinfo, 3, names, &row)) {
        bgnbd::validate(bgnbd::Customer{row.v[0], row.v[1], row.v[2]});
        note_penalizer(fcinfo, state, 4);
        append(state, row, memory);
    }
    PG_RETURN_POINTER(state);
}

LIFECYCLE_FUNCTION(lifecycle_gamma_gamma_fit_transfn) {
    MemoryContext memory;
    FitState* state = state_in(fcinfo, &memory);
    static const char* const names[] = {"frequency", "monetary_value"};
    Customer3 row = {{0, 0, 0}};
    if (read_row(fcinfo, 2, names, &row)) {
        if (row.v[0] < 0 || row.v[0] != std::floor(row.v[0]))
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("argument \"frequency\" must be a whole number >= 0, got %g", row.v[0])));
        if (row.v[0] >= 1 && row.v[1] <= 0)
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("argument \"monetary_value\" must be > 0 for a repeat buyer, got %g",
                                   row.v[1])));
        note_penalizer(fcinfo, state, 3);
        append(state, row, memory);
    }
    PG_RETURN_POINTER(state);
}

LIFECYCLE_FUNCTION(lifecycle_model_fit_combine) { return combine(fcinfo); }
LIFECYCLE_FUNCTION(lifecycle_model_fit_serialize) { return serialize(fcinfo); }
LIFECYCLE_FUNCTION(lifecycle_model_fit_deserialize) { return deserialize(fcinfo); }

// -> lifecycle.bgnbd_model (r, alpha, a, b, log_likelihood, customers, evaluations, converged)
LIFECYCLE_FUNCTION(lifecycle_bgnbd_fit_final) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    const FitState* state = reinterpret_cast<FitState*>(PG_GETARG_POINTER(0));
    const bgnbd::Fit fit = fit_bgnbd(*state);
    const double params[4] = {fit.params.r, fit.params.alpha, fit.params.a, fit.params.b};
    PG_RETURN_DATUM(lifecycle::pg::four_parameter_fit(fcinfo, "lifecycle.bgnbd_model", params,
                                                      fit.log_likelihood, state->count,
                                                      fit.evaluations, fit.converged));
}

// -> lifecycle.gamma_gamma_model (p, q, gamma, log_likelihood, customers, evaluations, converged)
LIFECYCLE_FUNCTION(lifecycle_gamma_gamma_fit_final) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    const FitState* state = reinterpret_cast<FitState*>(PG_GETARG_POINTER(0));
    static const Oid columns[] = {FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
                                  INT8OID,   INT4OID,   BOOLOID};
    TupleDesc desc = lifecycle::pg::result_descriptor(fcinfo, columns, 7, "lifecycle.gamma_gamma_model");
    int64 repeat_buyers = 0;
    const gamma_gamma::Fit fit = fit_gamma_gamma(*state, &repeat_buyers);
    Datum values[7] = {Float8GetDatum(fit.params.p), Float8GetDatum(fit.params.q),
                       Float8GetDatum(fit.params.gamma), Float8GetDatum(fit.log_likelihood),
                       Int64GetDatum(repeat_buyers), Int32GetDatum(fit.evaluations),
                       BoolGetDatum(fit.converged)};
    bool nulls[7] = {false, false, false, false, false, false, false};
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
