#include "pg/model_args.hpp"

#include <cmath>

#include "pg/convert.hpp"

namespace lifecycle::pg {

double model_field(HeapTupleHeader model, int attno, const char* argument) {
    bool isnull = false;
    Datum value = GetAttributeByNum(model, static_cast<AttrNumber>(attno), &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"%s\" has a NULL parameter", argument)));
    return finite_arg(DatumGetFloat8(value), argument);
}

bgnbd::Customer customer_at(FunctionCallInfo fcinfo, int first) {
    bgnbd::Customer customer{finite_arg(PG_GETARG_FLOAT8(first), "frequency"),
                             finite_arg(PG_GETARG_FLOAT8(first + 1), "recency"),
                             finite_arg(PG_GETARG_FLOAT8(first + 2), "t")};
    bgnbd::validate(customer);
    return customer;
}

Datum finite_result(double value, const char* function) {
    if (!std::isfinite(value))
        ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
                        errmsg("%s: the result is not a finite number for these arguments", function)));
    return Float8GetDatum(value);
}

std::vector<bgnbd::Row> state_rows(const FitState& state) {
    bgnbd::Merger merger;  // checks for interrupts
    for (int64 i = 0; i < state.count; ++i) {
        const double* v = state.rows[i].v;
        merger.add({v[0], v[1], v[2]});
    }
    return merger.rows();
}

mle::FitOptions state_options(const FitState& state) {
    mle::FitOptions options;
    options.penalizer = state.penalizer > 0 ? state.penalizer : 0;
    return options;
}

Datum four_parameter_fit(FunctionCallInfo fcinfo, const char* type, const double params[4],
                         double log_likelihood, int64 customers, int evaluations, bool converged) {
    static const Oid columns[] = {FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
                                  INT8OID,   INT4OID,   BOOLOID};
    TupleDesc desc = result_descriptor(fcinfo, columns, 8, type);
    Datum values[8] = {Float8GetDatum(params[0]),       Float8GetDatum(params[1]),
                       Float8GetDatum(params[2]),       Float8GetDatum(params[3]),
                       Float8GetDatum(log_likelihood),  Int64GetDatum(customers),
                       Int32GetDatum(evaluations),      BoolGetDatum(converged)};
    bool nulls[8] = {false, false, false, false, false, false, false, false};
    return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

}  // namespace lifecycle::pg
